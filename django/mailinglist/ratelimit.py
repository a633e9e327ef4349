"""One send rate for every worker of a deployment, kept in Redis.

Providers cap how fast an account may send (Amazon SES: e-mails per second), and
the cap is the deployment's, not a worker's: a token bucket in Redis, updated by a
Lua script so that taking a token is atomic across processes and machines, lets
all workers together send MAIL_APE_SEND_RATE e-mails per second.
"""

import time

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# The bucket holds at most a tenth of a second of sending, so an idle spell
# allows no more than a small burst; times come from the Redis server, so
# workers' clocks need not agree.
BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(bucket[1]) or capacity
local stamp = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
    tokens = tokens - 1
else
    wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


class SharedSendRateLimiter:
    """A token bucket of rate tokens a second, shared through the Redis at redis_url."""

    def __init__(self, rate, redis_url, key):
        if rate <= 0:
            raise ValueError("A rate limiter needs a rate above zero.")
        self.rate = rate
        self.capacity = max(1, rate / 10)
        self.key = key
        self.client = redis.Redis.from_url(redis_url)
        self.take_token = self.client.register_script(BUCKET_LUA)

    def acquire(self):
        """Block until this process may send one e-mail."""
        while True:
            wait = float(self.take_token(keys=[self.key], args=[self.rate, self.capacity]))
            if wait <= 0:
                return
            time.sleep(wait)


def shared_redis_url(explicit_url: str) -> str:
    """The Redis a setting names, or else the Celery broker when that is a Redis; "" if none."""
    if explicit_url:
        return explicit_url
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return settings.CELERY_BROKER_URL
    return ""


def send_rate_limiter():
    """The deployment's limiter, or None when MAIL_APE_SEND_RATE is 0 (no limit)."""
    rate = settings.MAIL_APE_SEND_RATE
    if rate <= 0:
        return None
    redis_url = shared_redis_url(settings.MAIL_APE_RATE_LIMIT_REDIS_URL)
    if not redis_url:
        raise ImproperlyConfigured(
            "MAIL_APE_SEND_RATE needs MAIL_APE_RATE_LIMIT_REDIS_URL (or a Redis Celery broker)."
        )
    # Workers of one deployment share a queue name, and so a bucket.
    return SharedSendRateLimiter(
        rate, redis_url, key=f"mailape:send-rate:{settings.CELERY_TASK_DEFAULT_QUEUE}"
    )
