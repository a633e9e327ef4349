"""Copies the SMTP server accepted, noted in Redis the moment it said so.

The database learns of accepted copies in batches, a fraction of a second late;
a worker killed in between would leave those copies to be sent again once their
lease runs out. So each acceptance is also written to a Redis hash (row id to
time) as soon as the server's reply is read: the command is written to the
socket without waiting for Redis to answer, and bytes a process has written
reach Redis even if it dies the next instant. Once the database has the outcome,
the entries are deleted. A claim that takes over rows whose lease ran out asks
the journal first and records as sent the ones it lists, instead of sending them
again; only a copy whose reply had not been read yet may go twice.

Redis keeps the journal only as long as it runs: a Redis restart together with
a worker's death brings back the old, lease-long window of copies sent twice.
"""

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import redis
from django.conf import settings
from redis.connection import ConnectionInterface

from mailinglist.ratelimit import shared_redis_url

logger = logging.getLogger(__name__)

# Entries are deleted once recorded; a journal left by a message nobody finishes goes too.
KEPT_SECONDS = 7 * 24 * 3600
# Replies are read back now and then, so that Redis never buffers many for this client.
MOST_UNREAD_REPLIES = 1000
# A Redis that stops answering must not hold up sending for longer than this.
REDIS_TIMEOUT_SECONDS = 2


class AcceptedCopies:
    """The journal of one message's accepted copies, on one Redis connection of its own.

    If Redis fails, the journal says so in the log and is left out from then on:
    delivery goes on as it would without one.
    """

    def __init__(self, redis_url: str, message_id: uuid.UUID) -> None:
        self.key = f"mailape:accepted:{message_id}"
        self._pool = redis.ConnectionPool.from_url(
            redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._connection: ConnectionInterface | None = None
        self._unread = 0
        self._expiry_set = False
        self._failed = False

    @classmethod
    def for_message(cls, message_id: uuid.UUID) -> "AcceptedCopies | None":
        """The deployment's journal for the message, or None when it has no Redis."""
        redis_url = shared_redis_url(settings.MAIL_APE_DELIVERY_JOURNAL_REDIS_URL)
        return cls(redis_url, message_id) if redis_url else None

    def note(self, row_id: uuid.UUID) -> None:
        """Write down, without waiting for Redis, that the server accepted row's copy."""
        stamp = datetime.now(UTC).timestamp()
        self._send("HSET", self.key, str(row_id), repr(stamp))
        if not self._expiry_set:
            self._send("EXPIRE", self.key, KEPT_SECONDS)
            self._expiry_set = True

    def forget(self, row_ids: Iterable[uuid.UUID]) -> None:
        """Drop entries the database now holds, without waiting for Redis."""
        ids = [str(row_id) for row_id in row_ids]
        if ids:
            self._send("HDEL", self.key, *ids)

    def accepted(self, row_ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
        """Which of the rows the server accepted, and when (none, if Redis failed)."""
        if not row_ids:
            return {}
        self._send("HMGET", self.key, *[str(row_id) for row_id in row_ids])
        replies = self._read_replies()
        if not replies:
            return {}
        stamps = replies[-1]
        assert isinstance(stamps, list)
        return {
            row_id: datetime.fromtimestamp(float(stamp), UTC)
            for row_id, stamp in zip(row_ids, stamps, strict=True)
            if stamp is not None
        }

    def close(self) -> None:
        """Read what Redis still owes, so that every note written is known to have landed."""
        try:
            if self._connection is not None:
                self._read_replies()
        finally:
            self._pool.disconnect()
            self._connection = None

    def _send(self, *command: str | int) -> None:
        if self._failed:
            return
        try:
            if self._connection is None:
                self._connection = self._pool.make_connection()
            self._connection.send_command(*command)
        except redis.RedisError as error:
            self._fail(error)
            return
        self._unread += 1
        if self._unread >= MOST_UNREAD_REPLIES:
            self._read_replies()

    def _read_replies(self) -> list[object]:
        if self._failed or self._connection is None:
            return []
        try:
            replies = [self._connection.read_response() for _ in range(self._unread)]
        except redis.RedisError as error:
            self._fail(error)
            return []
        self._unread = 0
        return replies

    def _fail(self, error: redis.RedisError) -> None:
        logger.warning("Journal of accepted copies left out, Redis failed: %r", error)
        self._failed = True
        self._pool.disconnect()
        self._connection = None
