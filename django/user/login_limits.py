"""Slow password guessing: after repeated failures for one username, refuse logins for a while.

Counted per username rather than per address, because behind the load balancer
every visitor arrives from the balancer's address.
"""

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver

LOCKOUT_SECONDS = 15 * 60


def _key(username):
    return f"failed-logins:{(username or '').strip().lower()}"


def is_locked_out(username):
    return cache.get(_key(username), 0) >= settings.MAIL_APE_LOGIN_MAX_FAILURES


@receiver(user_login_failed)
def count_failed_login(sender, credentials, **kwargs):
    key = _key(credentials.get("username"))
    if cache.add(key, 1, LOCKOUT_SECONDS):
        return
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, LOCKOUT_SECONDS)
