"""Bounces, complaints and the suppression list: what a report about a copy does.

Every path that learns of one calls record(): the SMTP server's reply while the
copy is sent, a provider's webhook, a mailed report read by `manage.py
process_bounce`. The rules live here: a hard bounce marks the subscriber bounced
and suppresses the address, soft bounces on enough distinct messages do the same,
a complaint unsubscribes and suppresses, and a message whose bounces or complaints
run high is paused.
"""

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailinglist.delivery.states import (
    ATTEMPTED,
    DeliveryState,
    DeliveryTransition,
    MessageState,
)
from mailinglist.models import (
    EXACT_COUNT_LIMIT,
    DeliveryEvent,
    DeliveryEventKind,
    Message,
    Subscriber,
    SubscriberMessage,
    Suppression,
    SuppressionReason,
)

logger = logging.getLogger(__name__)

Kind = DeliveryEventKind
# RFC 3463: class 5, subject 1 (the address) or 5.2.1 (the mailbox is disabled)
# says the address itself will never take mail; other permanent refusals (a full
# mailbox, a message too big, a policy block) do not.
_ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS_GONE_WITHOUT_STATUS = {550, 551, 553}
# A message of more recipients than this has its guardrails checked at most every
# GUARDRAIL_CHECK_SECONDS: counting its copies then costs real time.
GUARDRAIL_CHECK_SECONDS = 5
LONGEST_DESCRIPTION = 1000
LONGEST_SOURCE = 300


def enhanced_status(text: str) -> str:
    """The first RFC 3463 status code in text ("5.1.1"), or ""."""
    found = _ENHANCED_STATUS.search(text)
    return found.group() if found else ""


def is_address_gone(status: str) -> bool:
    return status.startswith("5.1.") or status == "5.2.1"


def kind_of_smtp_reply(code: int, text: str) -> DeliveryEventKind | None:
    """What an SMTP server's refusal of a recipient counts as: a hard bounce, a soft
    bounce, or nothing (the reply is no SMTP code at all)."""
    if not 400 <= code < 600:
        return None
    if code >= 500:
        status = enhanced_status(text)
        if is_address_gone(status) or (not status and code in _ADDRESS_GONE_WITHOUT_STATUS):
            return Kind.HARD_BOUNCE
    return Kind.SOFT_BOUNCE


def kind_of_reported_failure(status: str, permanent: bool) -> DeliveryEventKind:
    """What a failure in a bounce report counts as, by its status code, or by whether
    the report called it permanent when it gave none."""
    if status:
        return Kind.HARD_BOUNCE if is_address_gone(status) else Kind.SOFT_BOUNCE
    return Kind.HARD_BOUNCE if permanent else Kind.SOFT_BOUNCE


@dataclass(frozen=True)
class Report:
    kind: DeliveryEventKind
    # smtp, process_bounce, or the provider whose webhook said it.
    source: str
    description: str = ""
    # The same report twice has the same key; None for one that cannot repeat.
    key: str | None = None


def find_delivery(delivery_id: str | uuid.UUID | None, address: str | None):
    """The copy a report is about: the row delivery_id names (if address, when given,
    is its subscriber's), else the most recent copy sent to address; None if neither."""
    rows = SubscriberMessage.objects.select_related("subscriber__mailing_list", "message")
    if delivery_id:
        try:
            row = rows.filter(pk=uuid.UUID(str(delivery_id))).first()
        except ValueError:
            row = None
        if row is not None and (address is None or row.subscriber.email.lower() == address.lower()):
            return row
    if not address:
        return None
    subscribers = Subscriber.objects.annotate(address=Lower("email")).filter(
        address=address.lower()
    )
    return (
        rows.filter(subscriber__in=subscribers, last_attempt__isnull=False)
        .order_by("-last_attempt")
        .first()
    )


def record(delivery: SubscriberMessage, report: Report) -> bool:
    """Act on report about delivery; False if the same report was acted on before."""
    description = report.description[:LONGEST_DESCRIPTION]
    subscriber = delivery.subscriber
    with transaction.atomic():
        try:
            with transaction.atomic():
                DeliveryEvent.objects.create(
                    delivery_id=delivery.pk,
                    message_id=delivery.message_id,
                    subscriber_id=delivery.subscriber_id,
                    kind=report.kind,
                    source=report.source,
                    description=description,
                    key=report.key,
                )
        except IntegrityError:
            logger.info("Report %s counted before; ignored", report.key)
            return False
        owner_id = Subscriber.objects.filter(pk=subscriber.pk).values_list(
            "mailing_list__owner_id", flat=True
        )[0]
        source = f"{report.source}: {description}"[:LONGEST_SOURCE]
        if report.kind == Kind.HARD_BOUNCE:
            SubscriberMessage.objects.filter(pk=delivery.pk).apply(
                DeliveryTransition.BOUNCE, available_at=None, last_error=description
            )
            subscriber.mark_bounced()
            Suppression.suppress(owner_id, subscriber.email, SuppressionReason.HARD_BOUNCE, source)
        elif report.kind == Kind.SOFT_BOUNCE:
            if _soft_bounced_messages(subscriber) >= settings.MAIL_APE_SOFT_BOUNCE_LIMIT:
                subscriber.mark_bounced()
                Suppression.suppress(
                    owner_id, subscriber.email, SuppressionReason.SOFT_BOUNCES, source
                )
        elif report.kind == Kind.COMPLAINT:
            subscriber.unsubscribe()
            Suppression.suppress(owner_id, subscriber.email, SuppressionReason.COMPLAINT, source)
        else:
            subscriber.unsubscribe()
    logger.info(
        "%s for copy %s (%s): %s", report.kind.label, delivery.pk, report.source, description
    )
    if report.kind in (Kind.HARD_BOUNCE, Kind.COMPLAINT):
        apply_guardrails(delivery.message_id)
    return True


def _soft_bounced_messages(subscriber: Subscriber) -> int:
    since = timezone.now() - timedelta(days=settings.MAIL_APE_SOFT_BOUNCE_WINDOW_DAYS)
    return (
        DeliveryEvent.objects.filter(
            subscriber=subscriber, kind=Kind.SOFT_BOUNCE, created__gte=since
        )
        .values("message_id")
        .distinct()
        .count()
    )


def message_figures(message_id: uuid.UUID) -> dict[str, int]:
    """A message's attempted copies, and of them how many were delivered, bounced (hard
    and soft), drew a complaint, or were followed by their recipient unsubscribing;
    and how many were not sent because the address was suppressed."""
    return _figures(
        SubscriberMessage.objects.filter(message_id=message_id),
        DeliveryEvent.objects.filter(message_id=message_id),
    )


def list_figures(mailing_list_id: uuid.UUID) -> dict[str, int]:
    """message_figures over every message of the list."""
    return _figures(
        SubscriberMessage.objects.filter(message__mailing_list_id=mailing_list_id),
        DeliveryEvent.objects.filter(message__mailing_list_id=mailing_list_id),
    )


def _figures(copies, events) -> dict[str, int]:
    figures = copies.order_by().aggregate(
        attempted=Count("pk", filter=Q(status__in=ATTEMPTED)),
        delivered=Count("pk", filter=Q(status=DeliveryState.SENT)),
        hard_bounced=Count("pk", filter=Q(status=DeliveryState.BOUNCED)),
        suppressed=Count("pk", filter=Q(status=DeliveryState.SUPPRESSED)),
        unsubscribed=Count(
            "pk",
            filter=Q(status=DeliveryState.SENT, subscriber__unsubscribed__gte=F("sent")),
        ),
    )
    figures |= events.order_by().aggregate(
        soft_bounced=Count("delivery", filter=Q(kind=Kind.SOFT_BOUNCE), distinct=True),
        complained=Count("delivery", filter=Q(kind=Kind.COMPLAINT), distinct=True),
    )
    return figures


FIGURE_LABELS = {
    "delivered": _("Delivered"),
    "hard_bounced": _("Hard bounces"),
    "soft_bounced": _("Soft bounces"),
    "complained": _("Spam complaints"),
    "unsubscribed": _("Unsubscribed since"),
}


def with_rates(figures: dict[str, int]) -> list[dict[str, object]]:
    """Each figure with its share of the attempted copies, for a page to show."""
    attempted = figures["attempted"]
    return [
        {
            "name": name,
            "label": label,
            "count": figures[name],
            "rate": figures[name] / attempted if attempted else None,
            "percent": f"{figures[name] / attempted:.2%}" if attempted else "",
        }
        for name, label in FIGURE_LABELS.items()
    ]


def apply_guardrails(message_id: uuid.UUID) -> bool:
    """Pause a message going out whose hard bounces or complaints passed their limits;
    returns whether it was paused."""
    message = (
        Message.objects.filter(
            pk=message_id, status=MessageState.SENDING, guardrails_overridden=False
        )
        .only("pk", "status", "fan_out_slices")
        .first()
    )
    if message is None:
        return False
    is_big = (message.fan_out_slices or 1) * settings.MAIL_APE_BATCH_SIZE > EXACT_COUNT_LIMIT
    if is_big and not cache.add(f"guardrails-checked:{message_id}", True, GUARDRAIL_CHECK_SECONDS):
        return False
    figures = message_figures(message_id)
    reason = guardrail_reason(figures)
    if not reason:
        return False
    paused = message.pause(reason)
    if paused:
        logger.warning("Message %s paused by the guardrails: %s", message_id, reason)
    return paused


def guardrail_reason(figures: dict[str, int]) -> str:
    attempted = figures["attempted"]
    if attempted < settings.MAIL_APE_PAUSE_MIN_ATTEMPTS:
        return ""
    bounce_rate = figures["hard_bounced"] / attempted
    if bounce_rate > settings.MAIL_APE_PAUSE_BOUNCE_RATE:
        return (
            f"Paused automatically: {figures['hard_bounced']} of {attempted} copies "
            f"({bounce_rate:.1%}) bounced, above the limit of "
            f"{settings.MAIL_APE_PAUSE_BOUNCE_RATE:.1%}. Check the list before resuming."
        )
    complaint_rate = figures["complained"] / attempted
    if complaint_rate > settings.MAIL_APE_PAUSE_COMPLAINT_RATE:
        return (
            f"Paused automatically: {figures['complained']} of {attempted} copies "
            f"({complaint_rate:.2%}) drew a spam complaint, above the limit of "
            f"{settings.MAIL_APE_PAUSE_COMPLAINT_RATE:.2%}. Check the list before resuming."
        )
    return ""
