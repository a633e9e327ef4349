"""An uploaded file kept in the database in chunks, and read back one chunk at a time.

Web servers and workers are different machines in production, so the file goes
where all of them can reach it; chunks keep a worker's memory flat however big
the file is.
"""

import io
from collections.abc import Iterable
from typing import Any

from mailinglist.models import SubscriberImport, SubscriberImportChunk

CHUNK_BYTES = 1024 * 1024


def store_file(subscriber_import: SubscriberImport, pieces: Iterable[bytes]) -> int:
    """Save the file's bytes, given in pieces of any size, as the import's chunks;
    returns the file's size."""
    size = 0
    number = 0
    pending = bytearray()
    for piece in pieces:
        pending += piece
        size += len(piece)
        while len(pending) >= CHUNK_BYTES:
            _save_chunk(subscriber_import, number, bytes(pending[:CHUNK_BYTES]))
            del pending[:CHUNK_BYTES]
            number += 1
    if pending or number == 0:
        _save_chunk(subscriber_import, number, bytes(pending))
    return size


def _save_chunk(subscriber_import: SubscriberImport, number: int, data: bytes) -> None:
    SubscriberImportChunk.objects.create(
        subscriber_import=subscriber_import, number=number, data=data
    )


class StoredFile(io.RawIOBase):
    """The stored file as a forward-only binary stream."""

    def __init__(self, subscriber_import: SubscriberImport) -> None:
        super().__init__()
        self.import_id = subscriber_import.pk
        self.next_number = 0
        self.buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self.buffer:
            data = (
                SubscriberImportChunk.objects.filter(
                    subscriber_import_id=self.import_id, number=self.next_number
                )
                .values_list("data", flat=True)
                .first()
            )
            if data is None:
                return 0
            self.buffer = memoryview(bytes(data))
            self.next_number += 1
        size = min(len(target), len(self.buffer))
        target[:size] = self.buffer[:size]
        self.buffer = self.buffer[size:]
        return size
