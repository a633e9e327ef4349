"""Confirmation e-mails for an unconfirmed import's new subscribers, in batches.

An import can bring thousands of new addresses at once; they are asked to
confirm over one SMTP connection per batch, at the deployment's shared send
rate, never with one task per address. The import remembers the last subscriber
dealt with, so a task that dies or runs out of time is carried on from there.
"""

import logging
import smtplib
import time
import uuid

from django.conf import settings
from django.db.models import QuerySet

from mailinglist import emails, queueing
from mailinglist.delivery.smtp import describe_refusal
from mailinglist.models import Subscriber, SubscriberImport
from mailinglist.ratelimit import send_rate_limiter

logger = logging.getLogger(__name__)


def send_import_confirmations(import_id: uuid.UUID | str, deadline: float) -> None:
    """Send confirmations until every new subscriber of the import has been dealt with
    or time.monotonic() passes deadline; then queue the rest."""
    subscriber_import = SubscriberImport.objects.filter(pk=import_id).first()
    if subscriber_import is None:
        return
    rate_limiter = send_rate_limiter()
    connection = emails.smtp_connection()
    try:
        while batch := list(_waiting(subscriber_import)[: settings.MAIL_APE_BATCH_SIZE]):
            if time.monotonic() >= deadline:
                queueing.after_commit(queueing.SEND_IMPORT_CONFIRMATIONS, str(import_id))
                return
            for subscriber in batch:
                if not subscriber.claim_confirmation():
                    continue
                if rate_limiter is not None:
                    rate_limiter.acquire()
                try:
                    emails.send_copy(connection, emails.confirmation_email(subscriber))
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
                    logger.warning(
                        "Confirmation to subscriber %s refused: %s",
                        subscriber.pk,
                        describe_refusal(error).description,
                    )
            SubscriberImport.objects.filter(pk=subscriber_import.pk).update(
                confirmations_through=batch[-1].pk
            )
            subscriber_import.confirmations_through = batch[-1].pk
    finally:
        connection.close()


def _waiting(subscriber_import: SubscriberImport) -> QuerySet[Subscriber]:
    """The import's new subscribers still unconfirmed, after the last one dealt with."""
    waiting = Subscriber.objects.select_related("mailing_list").filter(
        mailing_list_id=subscriber_import.mailing_list_id,
        imported_by=subscriber_import.pk,
        created__gte=subscriber_import.started,
        confirmed=False,
        unsubscribed__isnull=True,
    )
    if subscriber_import.confirmations_through is not None:
        waiting = waiting.filter(pk__gt=subscriber_import.confirmations_through)
    return waiting.order_by("pk")
