"""The import job: what the file holds, read for a preview, then written a batch at a time.

Each batch's subscribers, rejected rows, counts and position in the file are
committed together, and the position moves only from where this runner found
it (a guarded UPDATE), so a job whose worker died carries on from its last batch
with nothing lost or counted twice, and two runners never both write a batch.
"""

import csv
import io
import itertools
import json
import logging
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from mailinglist import queueing
from mailinglist.imports.reading import CsvReader, ImportRow, UnreadableFile, open_csv
from mailinglist.imports.states import ImportState, ImportTransition
from mailinglist.imports.storage import StoredFile, store_file
from mailinglist.models import (
    EXACT_COUNT_LIMIT,
    MailingList,
    Subscriber,
    SubscriberImport,
    SubscriberImportRejection,
)

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 10
# The per-row columns first, then those every row of a batch shares; PostgreSQL gives
# each its id (migration 0013).
SUBSCRIBER_COPY_COLUMNS = (
    "email",
    "name",
    "fields",
    "confirmed",
    "mailing_list_id",
    "created",
    "imported_by",
)


def receive(
    mailing_list: MailingList, upload: UploadedFile, subscriber_status: str, preview: bool
) -> SubscriberImport:
    """Store an uploaded file as a new import of mailing_list, and have it read for a
    preview (the web's first step) or imported straight away (the API's)."""
    with transaction.atomic():
        subscriber_import = SubscriberImport.objects.create(
            mailing_list=mailing_list,
            subscriber_status=subscriber_status,
            status=ImportState.ANALYSING if preview else ImportState.QUEUED,
            file_name=(upload.name or "")[:255],
            activity=timezone.now(),
        )
        subscriber_import.file_size = store_file(subscriber_import, upload.chunks())
        subscriber_import.save(update_fields=["file_size"])
        queueing.after_commit(
            queueing.ANALYSE_SUBSCRIBER_IMPORT if preview else queueing.RUN_SUBSCRIBER_IMPORT,
            str(subscriber_import.pk),
        )
    return subscriber_import


def start(subscriber_import: SubscriberImport) -> bool:
    """Import a file whose preview the owner has seen; False if it was started already."""
    with transaction.atomic():
        started = subscriber_import.apply(ImportTransition.START, activity=timezone.now())
        if started:
            queueing.after_commit(queueing.RUN_SUBSCRIBER_IMPORT, str(subscriber_import.pk))
    return started


def _open(subscriber_import: SubscriberImport) -> CsvReader:
    return open_csv(io.BufferedReader(StoredFile(subscriber_import)))


def describe(reader: CsvReader) -> dict:
    return {
        "encoding": reader.encoding,
        "delimiter": reader.delimiter,
        "headers": reader.columns.headers,
        "columns": reader.columns.describe(),
    }


def analyse(import_id: uuid.UUID | str) -> None:
    """Read the whole file once for the preview: its columns, its first rows as they
    will be stored, and how many rows cannot be; nothing is written but the job."""
    subscriber_import = SubscriberImport.objects.filter(
        pk=import_id, status=ImportState.ANALYSING
    ).first()
    if subscriber_import is None:
        return
    try:
        reader = _open(subscriber_import)
        rows = invalid = 0
        first_rows: list[dict] = []
        for row in reader.rows():
            rows += 1
            invalid += bool(row.error)
            if len(first_rows) < PREVIEW_ROWS:
                first_rows.append(_as_stored(row))
    except UnreadableFile as error:
        subscriber_import.apply(ImportTransition.FAIL, error=str(error), finished=timezone.now())
        return
    subscriber_import.apply(
        ImportTransition.ANALYSED,
        analysis={**describe(reader), "rows": rows, "invalid": invalid, "first_rows": first_rows},
    )


def _as_stored(row: ImportRow) -> dict:
    return {
        "line": row.line,
        "email": row.email,
        "name": row.name,
        "fields": row.fields,
        "error": row.error,
    }


def run(import_id: uuid.UUID | str) -> None:
    """Import the rows not yet done, then, for an unconfirmed import, have the new
    subscribers asked to confirm."""
    now = timezone.now()
    subscriber_import = (
        SubscriberImport.objects.select_related("mailing_list").filter(pk=import_id).first()
    )
    if subscriber_import is None or not subscriber_import.apply(
        ImportTransition.RUN, started=Coalesce(F("started"), now), activity=now
    ):
        return
    try:
        reader = _open(subscriber_import)
        if not subscriber_import.analysis:
            SubscriberImport.objects.filter(pk=subscriber_import.pk).update(
                analysis=describe(reader)
            )
        rows = itertools.islice(reader.rows(), subscriber_import.rows_done, None)
        for batch in _batches(rows, settings.MAIL_APE_IMPORT_BATCH_ROWS):
            if not write_batch(subscriber_import, batch):
                logger.info("Import %s is being run by another worker", subscriber_import.pk)
                return
    except UnreadableFile as error:
        subscriber_import.apply(ImportTransition.FAIL, error=str(error), finished=timezone.now())
        return
    with transaction.atomic():
        if not subscriber_import.apply(ImportTransition.FINISH, finished=timezone.now()):
            return
        if subscriber_import.subscriber_status == SubscriberImport.SubscriberStatus.UNCONFIRMED:
            queueing.after_commit(queueing.SEND_IMPORT_CONFIRMATIONS, str(subscriber_import.pk))
    if connection.vendor == "postgresql" and subscriber_import.added > EXACT_COUNT_LIMIT:
        # Owner pages count big lists from the planner's statistics: bring them up to date.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Subscriber._meta.db_table}")
    logger.info("Import %s finished: %s", subscriber_import.pk, subscriber_import.counts())


def _batches(rows: Iterator[ImportRow], size: int) -> Iterator[list[ImportRow]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


class NewSubscriber(NamedTuple):
    email: str
    name: str
    fields: dict[str, str]


class Batch:
    """One batch's rows sorted into what becomes of each, and the counts that go with it."""

    def __init__(self, subscriber_import: SubscriberImport, rows: Sequence[ImportRow]) -> None:
        self.subscriber_import = subscriber_import
        self.mailing_list = subscriber_import.mailing_list
        self.confirmed = (
            subscriber_import.subscriber_status == SubscriberImport.SubscriberStatus.CONFIRMED
        )
        self.counts: Counter[str] = Counter()
        self.rejections: list[SubscriberImportRejection] = []
        self.new: list[NewSubscriber] = []
        self.changed: list[Subscriber] = []
        self.sort(rows)

    def reject(self, row: ImportRow, count: str, reason: str) -> None:
        self.counts[count] += 1
        self.rejections.append(
            SubscriberImportRejection(
                subscriber_import=self.subscriber_import,
                line=row.line,
                email=row.email,
                reason=reason,
                values=row.values,
            )
        )

    def sort(self, rows: Sequence[ImportRow]) -> None:
        valid: dict[str, ImportRow] = {}
        for row in rows:
            if row.error:
                self.reject(row, "invalid", row.error)
            elif (address := row.email.lower()) in valid:
                self.reject(row, "duplicates", f"the same address as line {valid[address].line}")
            else:
                valid[address] = row
        existing = {
            subscriber.address: subscriber
            for subscriber in self.mailing_list.subscribers_with_addresses(sorted(valid))
        }
        refused = self.mailing_list.refused_addresses(valid, existing.values())
        for address, row in valid.items():
            subscriber = existing.get(address)
            if address in refused:
                self.reject(row, "suppressed", refused[address])
            elif subscriber is None:
                self.counts["added"] += 1
                self.new.append(NewSubscriber(row.email, row.name, row.fields))
            elif subscriber.imported_by == self.subscriber_import.pk:
                self.reject(row, "duplicates", "the same address as an earlier line")
            else:
                self.counts["updated"] += 1
                subscriber.name = row.name or subscriber.name
                subscriber.fields = {**subscriber.fields, **row.fields}
                subscriber.confirmed = subscriber.confirmed or self.confirmed
                subscriber.imported_by = self.subscriber_import.pk
                self.changed.append(subscriber)

    def insert_new(self) -> None:
        """Add the new subscribers; on PostgreSQL with COPY, the fastest way in."""
        if not self.new:
            return
        if connection.vendor == "postgresql":
            try:
                with transaction.atomic():
                    self._copy_in()
                return
            except IntegrityError:
                # Someone subscribed one of these addresses since the batch was sorted.
                pass
        now = timezone.now()
        Subscriber.objects.bulk_create(
            (
                Subscriber(
                    email=new.email,
                    name=new.name,
                    fields=new.fields,
                    confirmed=self.confirmed,
                    mailing_list=self.mailing_list,
                    created=now,
                    imported_by=self.subscriber_import.pk,
                )
                for new in self.new
            ),
            batch_size=1000,
            ignore_conflicts=True,
        )

    def _copy_in(self) -> None:
        data = io.StringIO()
        # Every cell is quoted: in COPY's CSV an unquoted empty cell is NULL.
        fixed = '","'.join(
            [
                "t" if self.confirmed else "f",
                str(self.mailing_list.pk),
                timezone.now().isoformat(),
                str(self.subscriber_import.pk),
            ]
        )
        writer = csv.writer(data, quoting=csv.QUOTE_ALL, lineterminator=f',"{fixed}"\n')
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        writer.writerows((new.email, new.name, dumps(new.fields)) for new in self.new)
        data.seek(0)
        with connection.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {Subscriber._meta.db_table} ({', '.join(SUBSCRIBER_COPY_COLUMNS)}) "
                "FROM STDIN WITH (FORMAT csv)",
                data,
            )


def write_batch(subscriber_import: SubscriberImport, rows: Sequence[ImportRow]) -> bool:
    """Write one batch and move the job past it; False if another runner moved it first."""
    done_before = subscriber_import.rows_done
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The batch's commit need not wait for the disk: the job's position commits
            # with its rows, so a commit that a crash loses takes both, and the job
            # writes that batch again. Waiting took some 6 % of the import's time.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        batch = Batch(subscriber_import, rows)
        batch.insert_new()
        Subscriber.objects.bulk_update(
            batch.changed, ["name", "fields", "confirmed", "imported_by"], batch_size=1000
        )
        SubscriberImportRejection.objects.bulk_create(batch.rejections, batch_size=1000)
        moved = SubscriberImport.objects.filter(
            pk=subscriber_import.pk, status=ImportState.RUNNING, rows_done=done_before
        ).update(
            rows_done=F("rows_done") + len(rows),
            activity=timezone.now(),
            **{name: F(name) + number for name, number in batch.counts.items()},
        )
        if not moved:
            transaction.set_rollback(True)
            return False
    subscriber_import.rows_done = done_before + len(rows)
    return True


def stalled_imports(now=None) -> QuerySet[SubscriberImport]:
    """Jobs a worker should be on that nothing has happened to for a while."""
    quiet_since = (now or timezone.now()) - timedelta(
        seconds=settings.MAIL_APE_IMPORT_STALL_SECONDS
    )
    return SubscriberImport.objects.filter(
        status__in=ImportTransition.RUN.sources, activity__lt=quiet_since
    )


def resume_stalled_imports() -> None:
    for subscriber_import in stalled_imports():
        logger.warning("Import %s had stalled: queued again", subscriber_import.pk)
        SubscriberImport.objects.filter(pk=subscriber_import.pk).update(activity=timezone.now())
        queueing.after_commit(queueing.RUN_SUBSCRIBER_IMPORT, str(subscriber_import.pk))
