"""What the SMTP server said about each copy, written to its delivery row."""

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import F
from django.utils import timezone

from mailinglist import reputation
from mailinglist.delivery.states import DeliveryTransition
from mailinglist.models import DeliveryEventKind, SubscriberMessage

logger = logging.getLogger(__name__)

LONGEST_ERROR = 1000


class SmtpFailure(NamedTuple):
    description: str
    permanent: bool
    # The server's reply code; None when no server replied (or no e-mail could be made).
    smtp_code: int | None = None

    @property
    def bounce(self) -> DeliveryEventKind | None:
        """Whether the reply was a hard or a soft bounce of the recipient."""
        if self.smtp_code is None:
            return None
        return reputation.kind_of_smtp_reply(self.smtp_code, self.description)


def record_outcomes(
    sent: list[SubscriberMessage], failures: list[tuple[SubscriberMessage, SmtpFailure]]
) -> None:
    """Record the rows the server accepted and the (row, SmtpFailure) pairs it refused.

    A dropped database connection is reopened once: each copy recorded here is
    one that will not be sent again after its lease runs out.
    """
    try:
        _record(sent, failures)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        connection.close()
        _record(sent, failures)


def _record(
    sent: list[SubscriberMessage], failures: list[tuple[SubscriberMessage, SmtpFailure]]
) -> None:
    mark_sent(sent)
    for row, failure in failures:
        bounce = failure.bounce
        if bounce != DeliveryEventKind.HARD_BOUNCE:
            record_failure(row, failure.description, failure.permanent)
        if bounce is not None:
            key = f"smtp:{row.pk}:{row.attempts}"
            reputation.record(row, reputation.Report(bounce, "smtp", failure.description, key))


def mark_sent(rows: Iterable[SubscriberMessage]) -> None:
    ids = [row.pk for row in rows]
    if ids:
        SubscriberMessage.objects.filter(pk__in=ids).apply(
            DeliveryTransition.MARK_SENT, sent=timezone.now(), available_at=None, last_error=""
        )


def record_failure(row: SubscriberMessage, error: str, permanent: bool) -> None:
    """Retry a temporary failure later with exponential backoff, up to the attempt limit."""
    error = error[:LONGEST_ERROR]
    if permanent or row.attempts >= settings.MAIL_APE_MAX_ATTEMPTS:
        SubscriberMessage.objects.filter(pk=row.pk).apply(
            DeliveryTransition.FAIL, available_at=None, last_error=error
        )
        logger.warning(
            "Message %s: copy %s failed after %d attempts: %s",
            row.message_id,
            row.pk,
            row.attempts,
            error,
        )
        return
    delay = settings.MAIL_APE_RETRY_BASE_SECONDS * 2 ** (row.attempts - 1)
    SubscriberMessage.objects.filter(pk=row.pk).apply(
        DeliveryTransition.RETRY_LATER,
        available_at=timezone.now() + timedelta(seconds=delay),
        last_error=error,
    )
    logger.info(
        "Message %s: copy %s to be tried again in %d s (attempt %d): %s",
        row.message_id,
        row.pk,
        delay,
        row.attempts,
        error,
    )


def release(rows: Iterable[SubscriberMessage]) -> None:
    """Hand back claimed rows that were never tried, due at once and with no attempt counted."""
    ids = [row.pk for row in rows]
    if ids:
        SubscriberMessage.objects.filter(pk__in=ids).apply(
            DeliveryTransition.RELEASE, available_at=timezone.now(), attempts=F("attempts") - 1
        )
