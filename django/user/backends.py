from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from user.login_limits import is_locked_out


class LockoutModelBackend(ModelBackend):
    """Django's backend, refusing a locked-out username on every path that logs in:
    the login page, the admin and HTTP Basic in the API all call authenticate()."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if is_locked_out(username, request):
            # Stops authenticate() here; it reports the attempt as failed.
            raise PermissionDenied
        return super().authenticate(request, username=username, password=password, **kwargs)
