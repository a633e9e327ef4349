"""Opaque, signed tokens for the links in subscriber e-mails.

A token names its subscriber, the time it was made and an HMAC over both and
over the subscriber state it may change, so that it cannot be forged, stops
working after its maximum age and, for confirmation, once it has been used.
"""

import time
import uuid

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import (
    base36_to_int,
    int_to_base36,
    urlsafe_base64_decode,
    urlsafe_base64_encode,
)


class SubscriberTokenGenerator:
    key_salt = "mailinglist.tokens.SubscriberTokenGenerator"

    def __init__(self, purpose, state, max_age_setting=None):
        self.purpose = purpose
        self.state = state
        self.max_age_setting = max_age_setting

    def make_token(self, subscriber, now=None):
        stamp = int_to_base36(int(now if now is not None else time.time()))
        ident = urlsafe_base64_encode(subscriber.pk.bytes)
        return f"{ident}.{stamp}.{self._signature(subscriber, stamp, settings.SECRET_KEY)}"

    def subscriber_for_token(self, token, now=None):
        """The subscriber the token was made for, or None if it is not valid."""
        from mailinglist.models import Subscriber

        try:
            ident, stamp, signature = token.split(".")
            subscriber_id = uuid.UUID(bytes=urlsafe_base64_decode(ident))
            made_at = base36_to_int(stamp)
        except ValueError:
            return None
        subscriber = (
            Subscriber.objects.select_related("mailing_list").filter(pk=subscriber_id).first()
        )
        if subscriber is None:
            return None
        secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        if not any(
            constant_time_compare(signature, self._signature(subscriber, stamp, secret))
            for secret in secrets
        ):
            return None
        max_age = getattr(settings, self.max_age_setting) if self.max_age_setting else None
        age = (now if now is not None else time.time()) - made_at
        if max_age is not None and not 0 <= age <= max_age:
            return None
        return subscriber

    def _signature(self, subscriber, stamp, secret):
        value = f"{self.purpose}:{subscriber.pk}:{self.state(subscriber)}:{stamp}"
        return salted_hmac(self.key_salt, value, secret=secret, algorithm="sha256").hexdigest()[::2]


confirmation_token_generator = SubscriberTokenGenerator(
    "confirm",
    state=lambda subscriber: subscriber.confirmed,
    max_age_setting="MAIL_APE_CONFIRMATION_MAX_AGE",
)
# Unsubscribing twice is harmless, and old e-mails must keep their links working.
unsubscribe_token_generator = SubscriberTokenGenerator(
    "unsubscribe", state=lambda subscriber: subscriber.mailing_list_id
)
