from django.utils import timezone, translation


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


class UserLanguageMiddleware:
    """Pages speak the logged-in owner's chosen language; visitors keep the one their
    browser negotiates (LocaleMiddleware).

    The language is active only while the page is made, so that work the same thread
    does next (another visitor's page, an e-mail to a subscriber) is not in it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated:
            return self.get_response(request)
        with translation.override(request.user.language):
            request.LANGUAGE_CODE = translation.get_language()
            response = self.get_response(request)
        # LocaleMiddleware keeps a Content-Language already set.
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response
