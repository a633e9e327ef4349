"""An import whose worker is killed mid-way finishes after a restart: no row lost or doubled."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mailinglist.imports import running
from mailinglist.models import SubscriberImport
from mailinglist.tests.factories import MailingListFactory
from mailinglist.tests.harness import wait_until

pytestmark = pytest.mark.slow

ROWS = 50_000
FAST_RECOVERY = {
    "MAIL_APE_IMPORT_BATCH_ROWS": 1000,
    "MAIL_APE_IMPORT_STALL_SECONDS": 2,
    "MAIL_APE_SWEEP_SECONDS": 1,
}


def rows_done(subscriber_import):
    return SubscriberImport.objects.get(pk=subscriber_import.pk).rows_done


def test_an_import_killed_mid_way_finishes_after_a_restart(smtp_sink, start_celery_worker):
    worker = start_celery_worker(smtp_sink.port, beat=True, **FAST_RECOVERY)
    mailing_list = MailingListFactory()
    # Every hundredth address comes back in capitals further down: a duplicate.
    lines = [f"reader{n}@example.com,Reader {n},{n % 7}" for n in range(ROWS)]
    lines += [f"READER{n}@EXAMPLE.COM,Again,0" for n in range(0, ROWS, 100)]
    data = ("email,name,shelf\n" + "\n".join(lines) + "\n").encode()
    subscriber_import = running.receive(
        mailing_list,
        SimpleUploadedFile("readers.csv", data),
        SubscriberImport.SubscriberStatus.CONFIRMED,
        preview=False,
    )

    wait_until(
        lambda: rows_done(subscriber_import) > 0, timeout=60, interval=0.02, message="a batch"
    )
    worker.kill()
    killed_at = rows_done(subscriber_import)
    assert killed_at < len(lines), "the import ended before the kill"
    time.sleep(0.5)
    start_celery_worker(smtp_sink.port, beat=True, **FAST_RECOVERY)

    wait_until(
        lambda: SubscriberImport.objects.get(pk=subscriber_import.pk).is_final,
        timeout=120,
        message="the import to finish",
    )
    subscriber_import.refresh_from_db()
    assert subscriber_import.status == SubscriberImport.Status.FINISHED
    assert mailing_list.subscriber_set.count() == ROWS
    assert subscriber_import.counts() == {
        "rows": len(lines),
        "added": ROWS,
        "updated": 0,
        "duplicates": ROWS // 100,
        "invalid": 0,
        "suppressed": 0,
    }
    assert subscriber_import.rejections.count() == ROWS // 100
    print(f"killed after {killed_at} of {len(lines)} rows; finished with none lost or doubled")
