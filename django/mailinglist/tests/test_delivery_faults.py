"""Faults during a send: dead workers, a restarted broker, dropped database connections
and a refusing SMTP server. No recipient may be lost, and a copy sent twice must carry
the same Message-ID both times. A worker killed outright sends at most the one copy it
had in flight twice, and its rows go out again within seconds, with the deployment's
own lease and sweep settings.

MAIL_APE_FAULT_SIZE sets the number of recipients (CI uses the default).
"""

import os
import random
import time
from collections import defaultdict

import pytest
from django.db import connection

from mailinglist.models import Message, Subscriber, SubscriberMessage
from mailinglist.tests.factories import MailingListFactory
from mailinglist.tests.harness import SmtpSink, wait_until

pytestmark = pytest.mark.slow

FAULT_SIZE = int(os.environ.get("MAIL_APE_FAULT_SIZE", "400"))
# Short leases and sweeps so recovery takes seconds; a rate limit stretches the send
# over several seconds, so that the faults land while copies are going out.
FAST_RECOVERY = {
    "MAIL_APE_DELIVERY_LEASE_SECONDS": 3,
    "MAIL_APE_SWEEP_SECONDS": 1,
    "MAIL_APE_RETRY_BASE_SECONDS": 1,
    "MAIL_APE_DELIVERY_TASK_SECONDS": 5,
    "MAIL_APE_BATCH_SIZE": 25,
    "MAIL_APE_SEND_RATE": max(50, FAULT_SIZE // 8),
}
# The kill drill keeps the deployment's lease and sweep: their bound is what it checks.
KILL_DRILL = {
    name: value
    for name, value in FAST_RECOVERY.items()
    if name not in {"MAIL_APE_DELIVERY_LEASE_SECONDS", "MAIL_APE_SWEEP_SECONDS"}
}
KILLS = 5
WORKER_PROCESSES = 2
FINISHED_WITHIN_SECONDS_OF_THE_LAST_KILL = 30


def send_to_new_list(size, extra_addresses=()):
    mailing_list = MailingListFactory(name="Fault drill")
    addresses = [f"reader{n}@example.com" for n in range(size)] + list(extra_addresses)
    Subscriber.objects.bulk_create(
        Subscriber(mailing_list=mailing_list, email=address, confirmed=True)
        for address in addresses
    )
    message = Message.objects.create(
        mailing_list=mailing_list, subject="Drill", body="Bananas are **yellow**."
    )
    return message, addresses


def copies_by_recipient(sink, message):
    copies = defaultdict(list)
    for recipient, email in sink.received():
        if email["Subject"] == message.subject:
            copies[recipient].append(email["Message-ID"])
    return copies


def all_rows_terminal(message):
    return not SubscriberMessage.objects.filter(message=message).undelivered().exists()


def wait_for_progress(sink, timeout=60):
    """Return once the sink has taken at least one more copy."""
    before = len(sink.received())
    wait_until(lambda: len(sink.received()) > before, timeout=timeout, message="a copy")


def assert_nobody_lost_and_duplicates_share_their_message_id(sink, message, addresses):
    wait_until(lambda: all_rows_terminal(message), timeout=60, message="every row to be done")
    wait_until(
        lambda: Message.objects.get(pk=message.pk).status == Message.Status.FINISHED,
        timeout=30,
        message="the message to finish",
    )
    copies = copies_by_recipient(sink, message)
    rows = {
        row.subscriber.email: row
        for row in SubscriberMessage.objects.filter(message=message).select_related("subscriber")
    }
    assert [address for address in addresses if not copies[address]] == []
    assert {row.status for row in rows.values()} == {SubscriberMessage.Status.SENT}
    for address, message_ids in copies.items():
        assert set(message_ids) == {f"<{rows[address].pk}@testserver>"}
    return sum(len(message_ids) - 1 for message_ids in copies.values())


def test_killing_every_worker_process_again_and_again_loses_no_recipient(
    smtp_sink, start_celery_worker
):
    worker = start_celery_worker(
        smtp_sink.port, beat=True, concurrency=WORKER_PROCESSES, **KILL_DRILL
    )
    message, addresses = send_to_new_list(FAULT_SIZE)

    for _ in range(KILLS):
        wait_for_progress(smtp_sink)
        time.sleep(random.uniform(0, 0.5))
        assert not all_rows_terminal(message), "the send ended before the last kill"
        worker.kill()
        last_kill = time.monotonic()
        worker = start_celery_worker(
            smtp_sink.port, beat=True, concurrency=WORKER_PROCESSES, **KILL_DRILL
        )

    duplicates = assert_nobody_lost_and_duplicates_share_their_message_id(
        smtp_sink, message, addresses
    )
    finished_after = time.monotonic() - last_kill
    print(
        f"{len(addresses)} recipients, {KILLS} kills of {WORKER_PROCESSES} processes: "
        f"{duplicates} duplicate copies, finished {finished_after:.1f} s after the last kill"
    )
    assert duplicates <= KILLS * WORKER_PROCESSES
    assert finished_after < FINISHED_WITHIN_SECONDS_OF_THE_LAST_KILL


def test_a_broker_restart_mid_send_loses_no_recipient(
    smtp_sink, start_celery_worker, private_redis, celery_app_on_broker
):
    celery_app_on_broker(private_redis.url)
    start_celery_worker(
        smtp_sink.port, beat=True, CELERY_BROKER_URL=private_redis.url, **FAST_RECOVERY
    )
    message, addresses = send_to_new_list(FAULT_SIZE)

    wait_until(
        lambda: len(smtp_sink.received()) >= FAULT_SIZE // 5, timeout=60, message="a fifth sent"
    )
    private_redis.kill()
    time.sleep(2)
    private_redis.start()

    assert not all_rows_terminal(message), "the send ended before the broker restart"
    duplicates = assert_nobody_lost_and_duplicates_share_their_message_id(
        smtp_sink, message, addresses
    )
    print(f"{len(addresses)} recipients, broker restarted, {duplicates} duplicate copies")


def drop_other_database_connections():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
            """
        )
        return len(cursor.fetchall())


def test_dropped_database_connections_mid_send_lose_no_recipient(smtp_sink, start_celery_worker):
    start_celery_worker(smtp_sink.port, beat=True, **FAST_RECOVERY)
    message, addresses = send_to_new_list(FAULT_SIZE)

    for _ in range(3):
        wait_for_progress(smtp_sink)
        time.sleep(random.uniform(0.1, 0.4))
        wait_until(drop_other_database_connections, message="a worker connection to drop")

    assert not all_rows_terminal(message), "the send ended before the connections dropped"
    duplicates = assert_nobody_lost_and_duplicates_share_their_message_id(
        smtp_sink, message, addresses
    )
    print(f"{len(addresses)} recipients, 3 connection drops, {duplicates} duplicate copies")


def test_a_4xx_is_retried_until_delivered_and_a_5xx_bounces_only_that_recipient(
    start_celery_worker,
):
    later = {f"later{n}@example.com" for n in range(10)}
    unknown = {f"unknown{n}@example.com" for n in range(10)}
    refused_once = set()

    def reply_for_recipient(address):
        if address in unknown:
            return "550 5.1.1 No such user"
        if address in later and address not in refused_once:
            refused_once.add(address)
            return "451 4.3.0 Try again later"
        return None

    with SmtpSink(reply_for_recipient) as sink:
        start_celery_worker(sink.port, beat=True, **FAST_RECOVERY)
        message, addresses = send_to_new_list(FAULT_SIZE, sorted(later | unknown))

        wait_until(
            lambda: Message.objects.get(pk=message.pk).status == Message.Status.FINISHED,
            timeout=60,
            message="the message to finish",
        )

        copies = copies_by_recipient(sink, message)
        rows = {
            row.subscriber.email: row
            for row in SubscriberMessage.objects.filter(message=message).select_related(
                "subscriber"
            )
        }
        for address in later:
            assert len(copies[address]) == 1
            assert (rows[address].status, rows[address].attempts) == ("sent", 2)
        for address in unknown:
            assert copies[address] == []
            assert (rows[address].status, rows[address].attempts) == ("bounced", 1)
            assert rows[address].last_error.startswith("550")
            assert rows[address].subscriber.status == "bounced"
        assert sorted(address for address, _ in sink.refusals if address in unknown) == sorted(
            unknown
        )
        for address in set(addresses) - later - unknown:
            assert len(copies[address]) == 1
            assert (rows[address].status, rows[address].attempts) == ("sent", 1)
