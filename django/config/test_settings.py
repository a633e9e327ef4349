"""Settings for the test suite: the real PostgreSQL and Redis of the machine."""

import os

from config.common_settings import FAIL_FAST_PUBLISHING
from config.development_settings import *  # noqa: F403
from config.env import env_int, env_str

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env_str("DJANGO_DB_NAME", "mailape"),
        "USER": env_str("DJANGO_DB_USER", "postgres"),
        "PASSWORD": env_str("DJANGO_DB_PASSWORD", ""),
        "HOST": env_str("DJANGO_DB_HOST", "127.0.0.1"),
        "PORT": env_int("DJANGO_DB_PORT", 5432),
        # Per run, so that test runs on one machine never share a database.
        "TEST": {"NAME": f"test_mailape_{os.getpid()}"},
    }
}

REDIS_URL = env_str("MAIL_APE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {**FAIL_FAST_PUBLISHING, "visibility_timeout": 3600}
# Worker processes started by a test are handed this queue name, so runs never share tasks.
CELERY_TASK_DEFAULT_QUEUE = env_str("MAIL_APE_CELERY_QUEUE", f"mailape-test-{os.getpid()}")
CELERY_TASK_ALWAYS_EAGER = env_str("MAIL_APE_CELERY_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("MAIL_APE_CACHE_PREFIX", "mailape-test"),
    }
}

EMAIL_BACKEND = env_str("MAIL_APE_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILING_LIST_LINK_DOMAIN = env_str("MAILING_LIST_LINK_DOMAIN", "http://testserver")
