import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail.message import sanitize_address
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

# Big enough for any newsletter, small enough that rendering it stays quick.
MAX_MESSAGE_BODY_BYTES = 512 * 1024
MAX_TEST_ADDRESSES = 10
MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_FIELD_LENGTH = 1000
# What a merge tag can name after "fields.": lower-case letters, digits and underscores.
CUSTOM_FIELD_KEY = re.compile(r"[a-z][a-z0-9_]{0,62}")


def validate_single_line(value):
    """Reject characters that would split an e-mail header or a page title."""
    if _has_control_characters(value):
        raise ValidationError(
            _("Use a single line without control characters."), code="single_line"
        )


def _has_control_characters(value):
    return any(ord(char) < 32 or ord(char) == 127 for char in value)


def validate_sendable_address(value):
    """Refuse an address that e-mail would carry changed: with control characters, which
    would break or add header lines, or with a local part Django's mail API rewrites
    (one in another script than ASCII, or needlessly quoted)."""
    error = ValidationError(
        _("Mail Ape cannot send to this address as it is written."), code="unsendable"
    )
    if _has_control_characters(value):
        raise error
    try:
        sent = sanitize_address(value, settings.DEFAULT_CHARSET)
    except ValueError:
        raise error from None
    if sent.rpartition("@")[0] != value.rpartition("@")[0]:
        raise error


def validate_from_address(value):
    """A list's from address must be sendable, and on a domain the operator allows."""
    validate_sendable_address(value)
    allowed = {domain.lower() for domain in settings.MAIL_APE_ALLOWED_FROM_DOMAINS}
    domain = value.rpartition("@")[2].lower()
    if allowed and domain not in allowed:
        raise ValidationError(
            _("Mail Ape may send only from addresses at %(domains)s."),
            code="from_domain",
            params={"domains": ", ".join(sorted(allowed))},
        )


def validate_message_body(value):
    size = len(value.encode())
    if size > MAX_MESSAGE_BODY_BYTES:
        raise ValidationError(
            _("The message is %(size)s; it can be at most %(limit)s."),
            code="too_big",
            params={
                "size": filesizeformat(size),
                "limit": filesizeformat(MAX_MESSAGE_BODY_BYTES),
            },
        )


def validate_subscriber_fields(value):
    """A subscriber's custom fields: at most MAX_CUSTOM_FIELDS text values under keys a
    merge tag can name."""
    if not isinstance(value, dict):
        raise ValidationError(_("Custom fields are an object of names and texts."), code="type")
    if len(value) > MAX_CUSTOM_FIELDS:
        raise ValidationError(
            _("A subscriber has at most %(limit)s custom fields."),
            code="too_many",
            params={"limit": MAX_CUSTOM_FIELDS},
        )
    for key, text in value.items():
        if not isinstance(key, str) or not CUSTOM_FIELD_KEY.fullmatch(key):
            raise ValidationError(
                _(
                    "A custom field's name is lower-case letters, digits and underscores, "
                    "starting with a letter: %(key)s is not."
                ),
                code="key",
                params={"key": key},
            )
        # PostgreSQL's JSON cannot hold a NUL character.
        if not isinstance(text, str) or len(text) > MAX_CUSTOM_FIELD_LENGTH or "\0" in text:
            raise ValidationError(
                _(
                    "The custom field %(key)s must be a text of at most %(limit)s characters, "
                    "without NUL characters."
                ),
                code="value",
                params={"key": key, "limit": MAX_CUSTOM_FIELD_LENGTH},
            )
