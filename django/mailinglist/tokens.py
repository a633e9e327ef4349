"""Opaque, signed tokens for the links in subscriber e-mails.

A token names its subscriber, the time it was made and an HMAC over both and
over the subscriber state it may change, so that it cannot be forged, stops
working after its maximum age and, for confirmation, once it has been used:
confirming, and unsubscribing after that, each change the signed state.
Like Django's password reset tokens, they never query the database: the view
looks the subscriber up by subscriber_id() and then asks check() (or check_token()).
"""

import enum
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, Protocol

from django.conf import settings
from django.core.signing import BadSignature, Signer
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import (
    base36_to_int,
    int_to_base36,
    urlsafe_base64_decode,
    urlsafe_base64_encode,
)


class TokenSubject(Protocol):
    pk: uuid.UUID
    confirmed: bool
    unsubscribed: datetime | None
    mailing_list_id: uuid.UUID


def _state_text(confirmed: bool, unsubscribed: datetime | None) -> str:
    return f"{confirmed}:{unsubscribed.isoformat() if unsubscribed else ''}"


def _subscription_state(subscriber: TokenSubject) -> str:
    return _state_text(subscriber.confirmed, subscriber.unsubscribed)


# What most confirmation links are made for: a subscriber who has neither
# confirmed nor unsubscribed.
_AWAITING_CONFIRMATION = _state_text(False, None)


class TokenCheck(enum.Enum):
    """What a token says about its subscriber."""

    VALID = "valid"
    # Made for the subscriber in its present state, but longer ago than the maximum age.
    EXPIRED = "expired"
    # A confirmation link whose subscriber has confirmed since.
    USED = "used"
    INVALID = "invalid"


class TokenParts(NamedTuple):
    subscriber_id: uuid.UUID
    stamp: str
    signature: str


def _parse(token: str) -> TokenParts | None:
    try:
        ident, stamp, signature = token.split(".")
        base36_to_int(stamp)
        return TokenParts(uuid.UUID(bytes=urlsafe_base64_decode(ident)), stamp, signature)
    except ValueError:
        return None


class SubscriberTokenGenerator:
    key_salt = "mailinglist.tokens.SubscriberTokenGenerator"

    def __init__(
        self,
        purpose: str,
        state: Callable[[TokenSubject], object],
        max_age_setting: str | None = None,
    ) -> None:
        self.purpose = purpose
        self.state = state
        self.max_age_setting = max_age_setting

    def make_token(self, subscriber: TokenSubject, now: float | None = None) -> str:
        stamp = int_to_base36(int(now if now is not None else time.time()))
        ident = urlsafe_base64_encode(subscriber.pk.bytes)
        signature = self._signature(
            subscriber.pk, self.state(subscriber), stamp, settings.SECRET_KEY
        )
        return f"{ident}.{stamp}.{signature}"

    def subscriber_id(self, token: str) -> uuid.UUID | None:
        """The id of the subscriber the token names, if it is well formed; not a proof."""
        parts = _parse(token)
        return parts.subscriber_id if parts else None

    def check_token(self, subscriber: TokenSubject, token: str, now: float | None = None) -> bool:
        """Whether token was made for subscriber in its present state and has not expired."""
        return self.check(subscriber, token, now) is TokenCheck.VALID

    def check(self, subscriber: TokenSubject, token: str, now: float | None = None) -> TokenCheck:
        parts = _parse(token)
        if parts is None or not self._signed_for(subscriber, self.state(subscriber), parts):
            return TokenCheck.INVALID
        max_age = getattr(settings, self.max_age_setting) if self.max_age_setting else None
        age = (now if now is not None else time.time()) - base36_to_int(parts.stamp)
        return TokenCheck.VALID if max_age is None or 0 <= age <= max_age else TokenCheck.EXPIRED

    def _signed_for(self, subscriber: TokenSubject, state: object, parts: TokenParts) -> bool:
        """Whether parts carry a signature over subscriber in state, with any secret in use."""
        if parts.subscriber_id != subscriber.pk:
            return False
        secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        return any(
            constant_time_compare(
                parts.signature, self._signature(subscriber.pk, state, parts.stamp, secret)
            )
            for secret in secrets
        )

    def _signature(self, subscriber_id: uuid.UUID, state: object, stamp: str, secret: str) -> str:
        value = f"{self.purpose}:{subscriber_id}:{state}:{stamp}"
        return salted_hmac(self.key_salt, value, secret=secret, algorithm="sha256").hexdigest()[::2]


class ConfirmationTokenGenerator(SubscriberTokenGenerator):
    """Confirmation tokens, which also tell a link used already from a forged one."""

    def check(self, subscriber: TokenSubject, token: str, now: float | None = None) -> TokenCheck:
        """As for any token; and USED for one made before the subscriber confirmed, of
        whatever age, so that a second click can be told it is done already. (A link
        made after an earlier unsubscribe signed that time, which confirming erased:
        it stays INVALID.)"""
        checked = super().check(subscriber, token, now)
        if checked is not TokenCheck.INVALID or not subscriber.confirmed:
            return checked
        parts = _parse(token)
        if parts is not None and self._signed_for(subscriber, _AWAITING_CONFIRMATION, parts):
            return TokenCheck.USED
        return TokenCheck.INVALID


confirmation_token_generator = ConfirmationTokenGenerator(
    "confirm",
    state=_subscription_state,
    max_age_setting="MAIL_APE_CONFIRMATION_MAX_AGE",
)
# Unsubscribing twice is harmless, and old e-mails must keep their links working.
unsubscribe_token_generator = SubscriberTokenGenerator(
    "unsubscribe", state=lambda subscriber: subscriber.mailing_list_id
)


# A "view in your browser" link names its message and proves it came from an e-mail.
_message_view_signer = Signer(salt="mailinglist.tokens.message-view")


def make_message_view_token(message_id: uuid.UUID) -> str:
    return _message_view_signer.sign(message_id.hex)


def message_id_for_view_token(token: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(hex=_message_view_signer.unsign(token))
    except (BadSignature, ValueError):
        return None


# A copy's envelope sender (VERP) names its delivery row, so that a bounce report
# mailed back to it says which copy failed. Lower-case hex survives mail servers
# that change the case of local parts.
_BOUNCE_SALT = "mailinglist.tokens.bounce-address"
_BOUNCE_SIGNATURE_LENGTH = 16


def _bounce_signature(delivery_hex: str) -> str:
    digest = salted_hmac(_BOUNCE_SALT, delivery_hex, algorithm="sha256").hexdigest()
    return digest[:_BOUNCE_SIGNATURE_LENGTH]


def make_bounce_address(delivery_id: uuid.UUID, bounce_address: str) -> str:
    """bounce_address with a signed token for delivery_id after a "+" in its local part."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{delivery_id.hex}-{_bounce_signature(delivery_id.hex)}@{domain}"


def delivery_id_for_bounce_address(address: str) -> uuid.UUID | None:
    """The delivery row a VERP address made by make_bounce_address names, or None if it
    is not one or its signature is wrong."""
    local = address.strip().strip("<>").rpartition("@")[0]
    token = local.rpartition("+")[2].lower()
    delivery_hex, _, signature = token.partition("-")
    if len(delivery_hex) != 32 or not constant_time_compare(
        signature, _bounce_signature(delivery_hex)
    ):
        return None
    try:
        return uuid.UUID(hex=delivery_hex)
    except ValueError:
        return None
