from django.utils import timezone


class UserTimeZoneMiddleware:
    """Pages show times, and forms read them, in the logged-in owner's time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            timezone.activate(request.user.zone)
        else:
            timezone.deactivate()
        return self.get_response(request)
