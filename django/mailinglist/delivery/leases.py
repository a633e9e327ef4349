"""The heartbeat that keeps a live worker's claims from running out.

Leases are short (MAIL_APE_DELIVERY_LEASE_SECONDS), so that the rows of a worker
that died are due again within seconds. A worker that lives renews its rows'
lease several times a lease, from a thread of its own, so a slow SMTP reply or
a rate limit's wait never lets them lapse. The renewal also notes the message's
delivery activity, which is how the sweep tells a stalled message from a busy one.
"""

import logging
import threading
import time
import uuid
from datetime import timedelta
from types import TracebackType

from django.db import DatabaseError, connection
from django.utils import timezone

from mailinglist.delivery.states import DeliveryState
from mailinglist.models import Message, SubscriberMessage

logger = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 4
# Sending stops this share of a lease before the last renewal's lease runs out, so
# that workers' clocks a little apart never both hold a row.
SAFETY_SHARE = 0.2


class LeaseKeeper:
    """Renews the lease of the rows held, for as long as the context is open."""

    def __init__(self, message_id: uuid.UUID, lease_seconds: float) -> None:
        self.message_id = message_id
        self.lease_seconds = lease_seconds
        self._held: frozenset[uuid.UUID] = frozenset()
        self._held_until = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._renew_until_stopped, name=f"lease-keeper-{message_id}", daemon=True
        )

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()

    def hold(self, rows: list[SubscriberMessage]) -> None:
        """Keep the lease of claimed rows, whose available_at says when it runs out."""
        ends = [row.available_at for row in rows if row.available_at is not None]
        lease_left = min(ends) - timezone.now()
        self._held = frozenset(row.pk for row in rows)
        self._held_until = (
            time.monotonic() + lease_left.total_seconds() - self.lease_seconds * SAFETY_SHARE
        )

    def let_go(self) -> None:
        self._held = frozenset()

    def holds(self) -> bool:
        """Whether the rows held are still surely this worker's to send."""
        return time.monotonic() < self._held_until

    def _renew_until_stopped(self) -> None:
        try:
            while not self._stopped.wait(self.lease_seconds / RENEWALS_PER_LEASE):
                held = self._held
                if held:
                    self._renew(held)
        finally:
            connection.close()

    def _renew(self, held: frozenset[uuid.UUID]) -> None:
        started = time.monotonic()
        now = timezone.now()
        try:
            SubscriberMessage.objects.filter(pk__in=held, status=DeliveryState.SENDING).update(
                available_at=now + timedelta(seconds=self.lease_seconds)
            )
            Message.objects.filter(pk=self.message_id).update(delivery_activity=now)
        except DatabaseError as error:
            # The rows are given up when their lease runs out; sending stops before then.
            logger.warning("Message %s: leases not renewed: %r", self.message_id, error)
            connection.close()
            return
        if self._held is held:
            self._held_until = started + self.lease_seconds * (1 - SAFETY_SHARE)
