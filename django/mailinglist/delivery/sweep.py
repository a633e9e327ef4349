"""The safety net Celery beat runs: the database knows what is owed, whatever the broker lost."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from mailinglist.delivery.states import MessageState
from mailinglist.models import Message, SubscriberMessage

logger = logging.getLogger(__name__)


def stalled_messages(now: datetime | None = None) -> QuerySet[Message]:
    """Messages still sending that no task has touched for a whole lease.

    A live delivery task claims a batch at least once per lease, so that much
    silence means its task was lost or its worker died.
    """
    lease = timedelta(seconds=settings.MAIL_APE_DELIVERY_LEASE_SECONDS)
    quiet_since = (now or timezone.now()) - lease
    return Message.objects.filter(status=MessageState.SENDING).filter(
        Q(delivery_activity__lt=quiet_since)
        | Q(delivery_activity__isnull=True, created__lt=quiet_since)
    )


def requeue_stalled_deliveries() -> None:
    for message in stalled_messages():
        restart(message)


def restart(message: Message) -> None:
    """Queue delivery again if a copy is owed, or finish the message if none is."""
    if (
        message.fanned_out is None
        or SubscriberMessage.objects.due().filter(message=message).exists()
    ):
        logger.warning("Message %s had stalled: delivery queued again", message.pk)
        message.queue_delivery(workers=settings.MAIL_APE_DELIVERY_PARALLELISM)
    elif message.finish_if_done():
        logger.info("Message %s finished by the sweep", message.pk)
