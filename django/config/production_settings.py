"""Production on AWS: PostgreSQL on RDS, SQS as the Celery broker, TLS ended at the load balancer.

Every secret and host comes from the environment (written to /etc/mailape/ at boot
from SSM Parameter Store); a missing one stops the process instead of starting a
half-configured site.
"""

from config.common_settings import *  # noqa: F403
from config.common_settings import (
    CELERY_TASK_DEFAULT_QUEUE,
    CELERY_TASK_TIME_LIMIT,
    FAIL_FAST_PUBLISHING,
    LOGGING,
    REST_FRAMEWORK,
)
from config.env import env_bool, env_int, env_list, env_str

DEBUG = False
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
# Every request comes through the Application Load Balancer, which appends the
# client's address to X-Forwarded-For.
MAIL_APE_TRUSTED_PROXY_HOPS = env_int("MAIL_APE_TRUSTED_PROXY_HOPS", 1)
REST_FRAMEWORK = {**REST_FRAMEWORK, "NUM_PROXIES": MAIL_APE_TRUSTED_PROXY_HOPS}

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env_str("DJANGO_DB_NAME"),
        "USER": env_str("DJANGO_DB_USER"),
        "PASSWORD": env_str("DJANGO_DB_PASSWORD"),
        "HOST": env_str("DJANGO_DB_HOST"),
        "PORT": env_int("DJANGO_DB_PORT", 5432),
        "CONN_MAX_AGE": env_int("DJANGO_DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"sslmode": env_str("DJANGO_DB_SSLMODE", "prefer")},
    }
}

# API throttle counters must be seen by every Apache process and every instance, and
# the AWS design has no Redis: the RDS database is the one store they all share.
# The table is made by `manage.py createcachetable` in the deploy.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "mailape_cache",
        # Throttle and lockout counters expire by themselves; past MAX_ENTRIES Django
        # deletes a third of all entries, live counters too, so the ceiling is far above
        # what an hour of traffic leaves (the default, 300, is not).
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
}

MAIL_APE_FROM_EMAIL = env_str("MAIL_APE_FROM_EMAIL")
DEFAULT_FROM_EMAIL = MAIL_APE_FROM_EMAIL
SERVER_EMAIL = MAIL_APE_FROM_EMAIL
MAILING_LIST_LINK_DOMAIN = env_str("MAILING_LIST_LINK_DOMAIN")

EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_HOST_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_HOST_TLS", True)

# The load balancer ends TLS and forwards plain HTTP with X-Forwarded-Proto; Apache
# only listens behind it (see the security groups), so the header can be trusted.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
# The load balancer's health check speaks plain HTTP to the instance.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Joining the browsers' preload list binds the whole registrable domain for months and
# only its owner can decide that; DJANGO_SECURE_HSTS_PRELOAD turns it on.
SILENCED_SYSTEM_CHECKS = ["security.W021"]


LOGGING = {
    **LOGGING,
    "handlers": {
        **LOGGING["handlers"],
        # Watched so that logrotate can move the file under running processes.
        "file": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": env_str("DJANGO_LOG_FILE"),
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["file"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "sqs://")
_SQS_QUEUE_NAME_PREFIX = "mailape-"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **FAIL_FAST_PUBLISHING,
    "region": env_str("AWS_DEFAULT_REGION"),
    "queue_name_prefix": _SQS_QUEUE_NAME_PREFIX,
    # SQS hands a message to another worker once this runs out; it must outlast the
    # longest task (its hard limit) so acks_late never runs a task twice at once.
    "visibility_timeout": max(3600, CELERY_TASK_TIME_LIMIT * 2),
    "wait_time_seconds": 20,
    # The queue is made by CloudFormation, so the instance role needs no right to list
    # or create queues.
    "predefined_queues": {
        _SQS_QUEUE_NAME_PREFIX + CELERY_TASK_DEFAULT_QUEUE: {
            "url": env_str("MAIL_APE_SQS_QUEUE_URL"),
        },
    },
}
