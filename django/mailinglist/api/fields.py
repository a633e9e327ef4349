"""Serializer fields that take JSON values only of their own type.

DRF's fields coerce (42 becomes "42", "yes" becomes true); an integrator's
script that sends the wrong type has a bug it should hear about.
"""

from django.core.validators import RegexValidator
from rest_framework import serializers

from mailinglist.validators import validate_single_line


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class SingleLineValidator(RegexValidator):
    """Runs the model's validate_single_line; the pattern only describes it in the schema.

    The pattern allows the surrounding whitespace that the field trims before validating.
    """

    regex = r"^\s*[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?\s*$"

    def __call__(self, value):
        validate_single_line(value)
