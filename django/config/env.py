"""Strict readers for settings that come from the environment.

A value that is present but malformed is a deployment mistake, so it raises
instead of silently falling back to a default.
"""

import os

from django.core.exceptions import ImproperlyConfigured

_REQUIRED = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name, default=_REQUIRED):
    value = os.environ.get(name)
    if value is None:
        if default is _REQUIRED:
            raise ImproperlyConfigured(f"Set the {name} environment variable.")
        return default
    return value


def env_bool(name, default=_REQUIRED):
    value = env_str(name, None)
    if value is None:
        if default is _REQUIRED:
            raise ImproperlyConfigured(f"Set the {name} environment variable.")
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_int(name, default=_REQUIRED):
    value = env_str(name, None)
    if value is None:
        if default is _REQUIRED:
            raise ImproperlyConfigured(f"Set the {name} environment variable.")
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}.") from None


def env_list(name, default=_REQUIRED):
    value = env_str(name, None)
    if value is None:
        if default is _REQUIRED:
            raise ImproperlyConfigured(f"Set the {name} environment variable.")
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]
