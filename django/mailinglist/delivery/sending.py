"""The loop a delivery task runs: claim a batch, send it, record what happened, carry on."""

import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.db.models import Min
from django.utils import timezone

from mailinglist import emails
from mailinglist.delivery import outcomes
from mailinglist.delivery.claims import claim_batch
from mailinglist.delivery.journal import AcceptedCopies
from mailinglist.delivery.leases import LeaseKeeper
from mailinglist.delivery.outcomes import SmtpFailure
from mailinglist.delivery.smtp import send_each
from mailinglist.delivery.states import DeliveryState, MessageState
from mailinglist.models import Message, Subscriber, SubscriberMessage
from mailinglist.ratelimit import SharedSendRateLimiter, send_rate_limiter

logger = logging.getLogger(__name__)

# A task waiting for its countdown sits unacknowledged in the broker; it must
# start well before the broker's visibility timeout hands it out a second time.
LONGEST_COUNTDOWN_SECONDS = 600
# What the server accepted is journaled at once (see journal); the database
# learns of it in batches this far apart.
RECORD_INTERVAL_SECONDS = 0.25


def send_for_a_while(message_id: uuid.UUID | str, countdowns_work: bool = True) -> None:
    """Deliver the message for up to MAIL_APE_DELIVERY_TASK_SECONDS, then hand on.

    Another task is queued at once if time ran out, or for when the next retry
    falls due or lease runs out; without working countdowns (Celery's eager mode)
    waiting would spin, so those are left to the sweep.
    """
    message = Message.objects.select_related("mailing_list").filter(pk=message_id).first()
    if message is None:
        return
    carry_on_in = deliver(message, time.monotonic() + settings.MAIL_APE_DELIVERY_TASK_SECONDS)
    if carry_on_in == 0 or (carry_on_in is not None and countdowns_work):
        message.queue_delivery(countdown=carry_on_in)


def deliver(message: Message, deadline: float) -> float | None:
    """Claim and send batches until none is due, the owner pauses or cancels, or
    time.monotonic() passes deadline.

    Returns in how many seconds another task should carry on: 0 when the
    deadline cut this one short, the wait for the next retry when only retries
    are left, None when nothing is.
    """
    lease = settings.MAIL_APE_DELIVERY_LEASE_SECONDS
    rate_limiter = send_rate_limiter()
    mailer = None
    connection = emails.smtp_connection()
    journal = AcceptedCopies.for_message(message.pk)
    try:
        with LeaseKeeper(message.pk, lease) as keeper:
            while True:
                if time.monotonic() >= deadline:
                    return 0
                rows = claim_batch(message, settings.MAIL_APE_BATCH_SIZE, lease, journal)
                if not rows:
                    break
                keeper.hold(rows)
                mailer = mailer or emails.ListMessageMailer(message)
                _send_batch(
                    mailer,
                    rows,
                    connection,
                    lambda: keeper.holds() and time.monotonic() < deadline,
                    rate_limiter,
                    journal,
                )
                keeper.let_go()
    finally:
        connection.close()
        if journal is not None:
            journal.close()
    if message.finish_if_done():
        logger.info("Message %s finished", message.pk)
        return None
    if message.status != MessageState.SENDING:
        return None
    return seconds_until_next_due(message)


def seconds_until_next_due(message: Message) -> float | None:
    """How long until a retry falls due; None if no copy waits for one.

    Copies other workers hold are theirs to finish: their leases are renewed while
    those workers live, and the sweep hands the rows of one that died to a new task.
    """
    next_due = SubscriberMessage.objects.filter(
        message=message, status=DeliveryState.PENDING
    ).aggregate(next_due=Min("available_at"))["next_due"]
    if next_due is None:
        return None
    wait = (next_due - timezone.now()).total_seconds()
    return min(max(wait, 0), LONGEST_COUNTDOWN_SECONDS)


def _send_batch(
    mailer: emails.ListMessageMailer,
    rows: list[SubscriberMessage],
    connection: BaseEmailBackend,
    may_send: Callable[[], bool],
    rate_limiter: SharedSendRateLimiter | None,
    journal: AcceptedCopies | None,
) -> None:
    load_merge_values(mailer, rows)
    sent: list[SubscriberMessage] = []
    failures: list[tuple[SubscriberMessage, SmtpFailure]] = []
    attempted = set()
    last_recorded = time.monotonic()

    def record() -> None:
        outcomes.record_outcomes(sent, failures)
        if journal is not None:
            journal.forget(row.pk for row in sent)

    try:
        for row, failure in send_each(mailer, rows, connection, may_send, rate_limiter):
            attempted.add(row.pk)
            if failure is None:
                if journal is not None:
                    journal.note(row.pk)
                sent.append(row)
            else:
                failures.append((row, failure))
            if time.monotonic() - last_recorded >= RECORD_INTERVAL_SECONDS:
                record()
                sent, failures = [], []
                last_recorded = time.monotonic()
    finally:
        # Whatever stopped the batch, what the server accepted is written down.
        record()
    outcomes.release(row for row in rows if row.pk not in attempted)


def load_merge_values(mailer: emails.ListMessageMailer, rows: list[SubscriberMessage]) -> None:
    """Give a batch's subscribers the names and fields a message's merge tags show, in one
    query: claims load only what every copy needs."""
    if mailer.template.is_plain:
        return
    values = {
        pk: (name, fields)
        for pk, name, fields in Subscriber.objects.filter(
            pk__in=[row.subscriber_id for row in rows]
        ).values_list("pk", "name", "fields")
    }
    for row in rows:
        row.subscriber.name, row.subscriber.fields = values.get(row.subscriber_id, ("", {}))
