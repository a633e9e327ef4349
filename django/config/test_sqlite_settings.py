"""The test settings on SQLite, as `make run` uses it, for the tests marked also_on_sqlite."""

from config.development_settings import SQLITE_OPTIONS
from config.test_settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        "OPTIONS": SQLITE_OPTIONS,
    }
}
