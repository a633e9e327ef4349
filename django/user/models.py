from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(value):
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "%(value)s is not a time zone.", code="time_zone", params={"value": value}
        ) from None


class User(AbstractUser):
    # An IANA name; pages show times, and read the times the owner types, in it.
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])

    @property
    def zone(self):
        return ZoneInfo(self.time_zone)
