"""Subscribers as a CSV file, streamed: a million rows cost no more memory than ten.

Spreadsheets run a cell that starts with =, +, - or @ (and some with a tab or a
carriage return) as a formula, so such a cell is written with a leading
apostrophe: a subscriber cannot plant a formula in the owner's spreadsheet.
Every cell is quoted. On PostgreSQL the database writes each line itself, which
is many times faster than formatting the rows in Python; elsewhere Python does,
and the two write the same bytes.
"""

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

EXPORT_COLUMNS = ["email", "name", "status", "created", "confirmed", "unsubscribed"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 5000
LINE_END = "\r\n"
# The same text as TIME_FORMAT_SQL writes.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"
TIME_FORMAT_SQL = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'


class Echo:
    """A file-like object whose write() returns what it was given, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime(TIME_FORMAT) if value is not None else ""


def _status(confirmed: bool, unsubscribed: datetime | None, bounced: datetime | None) -> str:
    if confirmed:
        return "confirmed"
    if unsubscribed:
        return "unsubscribed"
    return "bounced" if bounced else "unconfirmed"


def field_keys(subscribers: QuerySet) -> list[str]:
    """Every custom field key used by subscribers, sorted."""
    with_fields = subscribers.exclude(fields={}).order_by()
    if connection.vendor == "postgresql":
        keys = (
            with_fields.annotate(key=RawSQL("jsonb_object_keys(fields)", []))  # noqa: S611
            .values_list("key", flat=True)
            .distinct()
        )
        with transaction.atomic(), connection.cursor() as cursor:
            # The planner guesses a hundred keys a row, and compiles this one pass over a
            # big list, which takes longer than the pass itself.
            cursor.execute("SET LOCAL jit = off")
            return sorted(keys)
    found: set[str] = set()
    for fields in with_fields.values_list("fields", flat=True).iterator(ROWS_PER_CHUNK):
        found.update(fields)
    return sorted(found)


def subscriber_csv_lines(subscribers: QuerySet) -> Iterator[str]:
    """The CSV's header, then its lines a chunk at a time, by address."""
    keys = field_keys(subscribers)
    writer = csv.writer(Echo(), quoting=csv.QUOTE_ALL, lineterminator=LINE_END)
    yield writer.writerow([*EXPORT_COLUMNS, *map(safe_cell, keys)])
    ordered = subscribers.order_by("email", "pk")
    if connection.vendor == "postgresql":
        yield from _lines_written_by_postgresql(ordered, keys)
    else:
        yield from _lines_written_in_python(ordered, keys, writer)


def _lines_written_in_python(subscribers: QuerySet, keys: list[str], writer: Any) -> Iterator[str]:
    chunk = []
    rows = subscribers.values_list(
        "email", "name", "confirmed", "unsubscribed", "bounced", "created", "fields"
    ).iterator(ROWS_PER_CHUNK)
    for email, name, confirmed, unsubscribed, bounced, created, fields in rows:
        chunk.append(
            writer.writerow(
                [
                    safe_cell(email),
                    safe_cell(name),
                    _status(confirmed, unsubscribed, bounced),
                    _time(created),
                    "true" if confirmed else "false",
                    _time(unsubscribed),
                    *(safe_cell(fields.get(key, "")) for key in keys),
                ]
            )
        )
        if len(chunk) == ROWS_PER_CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def _quoted_sql(text_sql: str) -> str:
    """SQL for one quoted CSV cell of the text text_sql, escaped as safe_cell does."""
    escaped = (
        f"CASE WHEN left({text_sql}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) "
        f"THEN '''' || {text_sql} ELSE {text_sql} END"
    )
    return f"""'"' || replace({escaped}, '"', '""') || '"'"""


def _time_sql(column: str) -> str:
    return f"""coalesce(to_char({column} AT TIME ZONE 'UTC', '{TIME_FORMAT_SQL}'), '')"""


def _lines_written_by_postgresql(subscribers: QuerySet, keys: list[str]) -> Iterator[str]:
    cells = [
        _quoted_sql("email::text"),
        _quoted_sql("name::text"),
        """'"' || CASE WHEN confirmed THEN 'confirmed' WHEN unsubscribed IS NOT NULL """
        """THEN 'unsubscribed' WHEN bounced IS NOT NULL THEN 'bounced' ELSE 'unconfirmed' END """
        """|| '"'""",
        """'"' || """ + _time_sql("created") + """ || '"'""",
        """'"' || CASE WHEN confirmed THEN 'true' ELSE 'false' END || '"'""",
        """'"' || """ + _time_sql("unsubscribed") + """ || '"'""",
        *(_quoted_sql("coalesce(fields ->> %s, '')") for _ in keys),
    ]
    # The SQL is made of the constants above; each key, a parameter, appears three
    # times in its cell's SQL.
    params = [key for key in keys for _ in range(3)]
    line = RawSQL(" || ',' || ".join(cells), params)  # noqa: S611
    query, query_params = (
        subscribers.annotate(csv_line=line).values_list("csv_line").query.sql_with_params()
    )
    # Outside a transaction, the server would write out every line before sending the
    # first; inside one, it makes them as they are read, beside this process.
    with transaction.atomic(), connection.chunked_cursor() as rows:
        rows.execute(query, query_params)
        while chunk := rows.fetchmany(ROWS_PER_CHUNK):
            yield LINE_END.join([text for (text,) in chunk]) + LINE_END
