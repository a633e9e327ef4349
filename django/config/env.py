"""Strict readers for settings that come from the environment.

A value that is present but malformed is a deployment mistake, so it raises
instead of silently falling back to a default; so does a missing value that
has no default.
"""

import os

from django.core.exceptions import ImproperlyConfigured

_REQUIRED = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _read(name, default, parse):
    value = os.environ.get(name)
    if value is not None:
        return parse(value)
    if default is _REQUIRED:
        raise ImproperlyConfigured(f"Set the {name} environment variable.")
    return default


def env_str(name, default=_REQUIRED):
    return _read(name, default, str)


def env_bool(name, default=_REQUIRED):
    def parse(value):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")

    return _read(name, default, parse)


def env_int(name, default=_REQUIRED):
    def parse(value):
        try:
            return int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}.") from None

    return _read(name, default, parse)


def env_float(name, default=_REQUIRED):
    def parse(value):
        try:
            return float(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.") from None

    return _read(name, default, parse)


def env_list(name, default=_REQUIRED):
    def parse(value):
        return [item.strip() for item in value.split(",") if item.strip()]

    value = _read(name, default, parse)
    return None if value is None else list(value)
