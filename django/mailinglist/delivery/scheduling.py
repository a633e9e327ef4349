"""Scheduled messages go out when their time comes, or as soon after as a worker runs."""

import logging
from datetime import datetime

from django.utils import timezone

from mailinglist.delivery.states import MessageState
from mailinglist.models import Message

logger = logging.getLogger(__name__)


def start_due_messages(now: datetime | None = None) -> int:
    """Hand every scheduled message whose time has come to delivery; returns how many."""
    now = now or timezone.now()
    started = 0
    for message in Message.objects.filter(status=MessageState.SCHEDULED, send_at__lte=now):
        if message.start_if_due(now):
            started += 1
            logger.info(
                "Scheduled message %s started %.0f s after its time",
                message.pk,
                (now - message.send_at).total_seconds(),
            )
    return started
