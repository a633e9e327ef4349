from drf_spectacular.authentication import BasicScheme
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import Throttled

from user.login_limits import LOCKOUT_SECONDS, is_locked_out


class LockoutBasicAuthentication(BasicAuthentication):
    """HTTP Basic that answers 429 instead of checking yet another guessed password."""

    def authenticate_credentials(self, userid, password, request=None):
        if is_locked_out(userid):
            raise Throttled(wait=LOCKOUT_SECONDS, detail="Too many failed logins; try again later.")
        return super().authenticate_credentials(userid, password, request)


class LockoutBasicScheme(BasicScheme):
    """Documents LockoutBasicAuthentication as plain HTTP Basic in the OpenAPI schema."""

    target_class = "user.authentication.LockoutBasicAuthentication"
