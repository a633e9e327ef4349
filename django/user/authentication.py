from drf_spectacular.authentication import BasicScheme, TokenScheme
from rest_framework.authentication import BasicAuthentication, TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

from user.login_limits import (
    LOCKOUT_SECONDS,
    api_failures_exceeded,
    count_api_failure,
    is_locked_out,
)


class FailureLimitedAuthentication:
    """Counts failed attempts per client address, and answers 429 once there are too many."""

    def authenticate(self, request):
        if api_failures_exceeded(request):
            raise Throttled(
                wait=LOCKOUT_SECONDS,
                detail="Too many failed attempts to authenticate from your address; try later.",
            )
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            count_api_failure(request)
            raise


class LockoutBasicAuthentication(FailureLimitedAuthentication, BasicAuthentication):
    """HTTP Basic that answers 429 instead of checking yet another guessed password."""

    def authenticate_credentials(self, userid, password, request=None):
        if "\x00" in userid or "\x00" in password:
            raise AuthenticationFailed("Invalid username/password.")
        if is_locked_out(userid, request):
            raise Throttled(wait=LOCKOUT_SECONDS, detail="Too many failed logins; try again later.")
        return super().authenticate_credentials(userid, password, request)


class LimitedTokenAuthentication(FailureLimitedAuthentication, TokenAuthentication):
    def authenticate_credentials(self, key):
        if "\x00" in key:
            raise AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)


class LockoutBasicScheme(BasicScheme):
    """Documents LockoutBasicAuthentication as plain HTTP Basic in the OpenAPI schema."""

    target_class = "user.authentication.LockoutBasicAuthentication"


class LimitedTokenScheme(TokenScheme):
    """Documents LimitedTokenAuthentication as DRF's token authentication."""

    target_class = "user.authentication.LimitedTokenAuthentication"
