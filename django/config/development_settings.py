"""Laptop defaults: SQLite, a file-system Celery transport and a local SMTP sink.

Every value can be overridden with the same environment variables production
reads; setting DJANGO_DB_NAME switches to PostgreSQL.
"""

from pathlib import Path

from config.common_settings import *  # noqa: F403
from config.common_settings import BASE_DIR, FAIL_FAST_PUBLISHING
from config.env import env_int, env_list, env_str

DEBUG = True
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "development-only-secret-key-not-for-production")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# Everything the run command writes: database, broker, cache and captured mail.
VAR_DIR = Path(env_str("MAIL_APE_VAR_DIR", str(BASE_DIR / "var")))

# One writer at a time, waiting for the lock rather than failing; WAL lets pages
# read while a worker writes.
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}

if env_str("DJANGO_DB_NAME", ""):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": env_str("DJANGO_DB_NAME"),
            "USER": env_str("DJANGO_DB_USER", "postgres"),
            "PASSWORD": env_str("DJANGO_DB_PASSWORD", ""),
            "HOST": env_str("DJANGO_DB_HOST", "127.0.0.1"),
            "PORT": env_int("DJANGO_DB_PORT", 5432),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "mailape.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
        }
    }

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **FAIL_FAST_PUBLISHING,
    "data_folder_in": str(VAR_DIR / "broker"),
    "data_folder_out": str(VAR_DIR / "broker"),
    "processed_folder": str(VAR_DIR / "broker-processed"),
    "control_folder": str(VAR_DIR / "broker-control"),
    "store_processed": False,
    "visibility_timeout": 3600,
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The file-system transport cannot publish into folders that do not exist yet,
# whichever process (web server, worker, shell) starts first.
for broker_folder in ("broker", "broker-processed", "broker-control"):
    (VAR_DIR / broker_folder).mkdir(parents=True, exist_ok=True)

# Throttle counters must be shared by the web server and every worker.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": VAR_DIR / "cache",
    }
}

# Read the captured e-mails at /dev/mailbox/ while the run command is up.
MAIL_APE_DEV_MAILBOX = VAR_DIR / "mailbox"
