"""The test settings with DEBUG off, as in production: no query log, no debug cursor."""

from config.test_settings import *  # noqa: F403

DEBUG = False
