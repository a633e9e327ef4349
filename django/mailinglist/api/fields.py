"""Serializer fields that take JSON values only of their own type.

DRF's fields coerce (42 becomes "42", "yes" becomes true); an integrator's
script that sends the wrong type has a bug it should hear about.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator, validate_email
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from mailinglist.validators import (
    MAX_CUSTOM_FIELD_LENGTH,
    MAX_CUSTOM_FIELDS,
    validate_sendable_address,
    validate_single_line,
)


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


class StateField(serializers.ChoiceField):
    """A state: written as one of choices, read as any of states."""

    def __init__(self, states, **kwargs):
        self.states = list(states)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value


class StateFieldSchema(OpenApiSerializerFieldExtension):
    target_class = StateField

    def map_serializer_field(self, auto_schema, direction):
        values = self.target.choices if direction == "request" else self.target.states
        return {"type": "string", "enum": list(values)}


class AddressListField(serializers.Field):
    """A list of addresses Mail Ape can send to; its errors are a flat list of sentences."""

    default_error_messages = {
        "not_a_list": _("Give a list of addresses."),
        "length": _("Give from 1 to {max_length} addresses."),
        "invalid": _("Mail Ape cannot send to {address}."),
    }

    def __init__(self, max_length, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            self.fail("not_a_list")
        if not 1 <= len(data) <= self.max_length:
            self.fail("length", max_length=self.max_length)
        for address in data:
            try:
                validate_email(address)
                validate_sendable_address(address)
            except DjangoValidationError:
                self.fail("invalid", address=address)
        return data

    def to_representation(self, value):
        return value


class AddressListFieldSchema(OpenApiSerializerFieldExtension):
    target_class = AddressListField

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "array",
            "items": {"type": "string", "format": "email"},
            "minItems": 1,
            "maxItems": self.target.max_length,
        }


class CustomFieldsField(serializers.JSONField):
    """A subscriber's custom fields: an object of texts under lower-case names."""


class CustomFieldsFieldSchema(OpenApiSerializerFieldExtension):
    target_class = CustomFieldsField

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": MAX_CUSTOM_FIELD_LENGTH},
            "maxProperties": MAX_CUSTOM_FIELDS,
            "description": (
                "Names are lower-case letters, digits and underscores, starting with a letter."
            ),
        }
