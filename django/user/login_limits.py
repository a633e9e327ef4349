"""Slow password guessing on every login path (site, admin, API), without letting a
stranger lock a real user out from elsewhere.

Failed logins are counted per username and client address: MAIL_APE_LOGIN_MAX_FAILURES
of them lock that pair out for 15 minutes, so a stranger's guesses do not lock out
the owner at their own address. Each username also has a ceiling over all
addresses (MAIL_APE_LOGIN_MAX_FAILURES_PER_USERNAME), so that guessing spread over
many addresses is stopped as well. Failed API authentication (passwords or tokens)
is also counted per address alone. The client address is the one DRF's throttles
use: REMOTE_ADDR, or the X-Forwarded-For entry MAIL_APE_TRUSTED_PROXY_HOPS from the end.
"""

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from rest_framework.throttling import BaseThrottle

LOCKOUT_SECONDS = 15 * 60


def client_address(request):
    return BaseThrottle().get_ident(request) if request is not None else ""


def _username(username):
    return (username or "").strip().lower()


def _count(key):
    if cache.add(key, 1, LOCKOUT_SECONDS):
        return
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, LOCKOUT_SECONDS)


def _reached(key, limit):
    return cache.get(key, 0) >= limit


def is_locked_out(username, request):
    name = _username(username)
    return _reached(
        f"failed-logins:{name}:{client_address(request)}", settings.MAIL_APE_LOGIN_MAX_FAILURES
    ) or _reached(f"failed-logins:{name}", settings.MAIL_APE_LOGIN_MAX_FAILURES_PER_USERNAME)


@receiver(user_login_failed)
def count_failed_login(sender, credentials, request=None, **kwargs):
    name = _username(credentials.get("username"))
    _count(f"failed-logins:{name}:{client_address(request)}")
    _count(f"failed-logins:{name}")


def api_failures_exceeded(request):
    return _reached(
        f"failed-api-auth:{client_address(request)}",
        settings.MAIL_APE_API_AUTH_MAX_FAILURES_PER_ADDRESS,
    )


def count_api_failure(request):
    _count(f"failed-api-auth:{client_address(request)}")
