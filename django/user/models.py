from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _

from mailinglist.models import MailingList

EMAIL_CHANGE_SALT = "user.email-change"
# How long the link that confirms a new e-mail address works.
EMAIL_CHANGE_MAX_AGE = timedelta(days=3)


def validate_time_zone(value):
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(value)s is not a time zone."), code="time_zone", params={"value": value}
        ) from None


class InvalidEmailChange(Exception):
    """The link is forged, expired, already used, or its address was taken meanwhile."""


class User(AbstractUser):
    # An IANA name; pages show times, and read the times the owner types, in it.
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="en"
    )

    @property
    def zone(self):
        return ZoneInfo(self.time_zone)

    def email_is_used_by_another(self, address):
        return User.objects.filter(email__iexact=address).exclude(pk=self.pk).exists()

    def email_change_token(self, new_email):
        """A signed link token naming this user and the new address. It carries the
        current address too: once the change is made it no longer matches, so the
        link works once."""
        return signing.dumps(
            {"user": self.pk, "old": self.email, "new": new_email}, salt=EMAIL_CHANGE_SALT
        )

    @classmethod
    def pending_email_change(cls, token):
        """The user and new address that token asks for; raises InvalidEmailChange."""
        try:
            change = signing.loads(token, salt=EMAIL_CHANGE_SALT, max_age=EMAIL_CHANGE_MAX_AGE)
            user = cls.objects.get(pk=change["user"], email=change["old"])
            new_email = change["new"]
        except (signing.BadSignature, KeyError, TypeError, cls.DoesNotExist):
            raise InvalidEmailChange from None
        if user.email_is_used_by_another(new_email):
            raise InvalidEmailChange
        return user, new_email

    @classmethod
    def confirm_email_change(cls, token):
        """Make the change token asks for, once; returns the user."""
        with transaction.atomic():
            user, new_email = cls.pending_email_change(token)
            # A second click racing the first finds the address changed and is refused.
            if not cls.objects.filter(pk=user.pk, email=user.email).update(email=new_email):
                raise InvalidEmailChange
        user.email = new_email
        return user

    def erase(self):
        """Delete the account and everything it owns, in one transaction: its lists with
        their subscribers, messages, deliveries, events and imports (emptied in bulk),
        then, through cascading foreign keys, its suppression list and API token."""
        with transaction.atomic():
            MailingList.objects.filter(owner=self).erase()
            self.delete()
