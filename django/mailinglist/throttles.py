"""Limits on what anyone may ask of the public pages, counted with DRF's throttles in the
cache that every web process shares, and read from settings when they are checked."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class SettingRateThrottle(SimpleRateThrottle):
    """A throttle whose rate ("20/hour") is the setting named rate_setting."""

    rate_setting: str

    def get_rate(self):
        return getattr(settings, self.rate_setting)

    def cache_key_for(self, ident):
        return self.cache_format % {"scope": self.rate_setting.lower(), "ident": ident}


class SubscriptionsPerClientThrottle(SettingRateThrottle):
    """Subscriptions one client address asks for, on any list."""

    rate_setting = "MAIL_APE_SUBSCRIBE_RATE_PER_CLIENT"

    def get_cache_key(self, request, view):
        return self.cache_key_for(self.get_ident(request))


class SubscriptionsPerListThrottle(SettingRateThrottle):
    """Subscriptions to one list, from anyone."""

    rate_setting = "MAIL_APE_SUBSCRIBE_RATE_PER_LIST"

    def get_cache_key(self, request, view):
        return self.cache_key_for(view.mailing_list.pk)


class TestSendsPerOwnerThrottle(SettingRateThrottle):
    """Test copies an owner asks for, on the web and through the API together."""

    rate_setting = "MAIL_APE_TEST_SENDS_PER_OWNER"

    def get_cache_key(self, request, view):
        return self.cache_key_for(request.user.pk)


class ConfirmationsPerAddressThrottle(SettingRateThrottle):
    """Confirmation e-mails to one address over every list, however they were asked for."""

    rate_setting = "MAIL_APE_CONFIRMATIONS_PER_ADDRESS"

    def __init__(self, address):
        super().__init__()
        self.address = address.lower()

    def get_cache_key(self, request, view):
        return self.cache_key_for(self.address)


class PasswordResetsPerClientThrottle(SettingRateThrottle):
    """Password reset requests from one client address, for any account."""

    rate_setting = "MAIL_APE_PASSWORD_RESETS_PER_CLIENT"

    def get_cache_key(self, request, view):
        return self.cache_key_for(self.get_ident(request))


class PasswordResetsPerAddressThrottle(SettingRateThrottle):
    """Password reset e-mails to one address, from any client."""

    rate_setting = "MAIL_APE_PASSWORD_RESETS_PER_ADDRESS"

    def __init__(self, address):
        super().__init__()
        self.address = address.lower()

    def get_cache_key(self, request, view):
        return self.cache_key_for(self.address)
