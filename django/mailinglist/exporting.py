"""Subscribers as a CSV file, streamed: a million rows cost no more memory than ten.

Spreadsheets run a cell that starts with =, +, - or @ (and some with a tab or a
carriage return) as a formula, so such a cell is written with a leading
apostrophe: a subscriber cannot plant a formula in the owner's spreadsheet.
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.db.models import QuerySet

EXPORT_COLUMNS = ["email", "name", "status", "created", "confirmed", "unsubscribed"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_FETCH = 5000


class Echo:
    """A file-like object whose write() returns what it was given, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _time(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def field_keys(subscribers: QuerySet) -> list[str]:
    """Every custom field key used by subscribers, sorted."""
    keys: set[str] = set()
    for fields in (
        subscribers.exclude(fields={})
        .values_list("fields", flat=True)
        .iterator(chunk_size=ROWS_PER_FETCH)
    ):
        keys.update(fields)
    return sorted(keys)


def subscriber_csv_lines(subscribers: QuerySet) -> Iterator[str]:
    """The CSV's lines: the header, then a line per subscriber by address."""
    keys = field_keys(subscribers)
    writer = csv.writer(Echo())
    yield writer.writerow(EXPORT_COLUMNS + keys)
    rows: Iterable[tuple] = (
        subscribers.order_by("email", "pk")
        .values_list("email", "name", "confirmed", "unsubscribed", "created", "fields")
        .iterator(chunk_size=ROWS_PER_FETCH)
    )
    for email, name, confirmed, unsubscribed, created, fields in rows:
        status = "confirmed" if confirmed else "unsubscribed" if unsubscribed else "unconfirmed"
        yield writer.writerow(
            [
                safe_cell(email),
                safe_cell(name),
                status,
                _time(created),
                "true" if confirmed else "false",
                _time(unsubscribed),
                *(safe_cell(fields.get(key, "")) for key in keys),
            ]
        )
