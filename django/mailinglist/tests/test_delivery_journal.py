"""The journal of accepted copies in the real Redis, and the heartbeat that keeps a live
worker's leases: a worker that dies leaves its rows due within a lease, and the copies
the server had already accepted are recorded as sent instead of going out again."""

import time
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from mailinglist.delivery.claims import claim_batch
from mailinglist.delivery.journal import AcceptedCopies
from mailinglist.delivery.leases import LeaseKeeper
from mailinglist.delivery.sending import deliver
from mailinglist.models import Message, SubscriberMessage
from mailinglist.tests.factories import (
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
    pending_deliveries_for,
)
from mailinglist.tests.harness import free_port


def message_to(readers):
    mailing_list = MailingListFactory(name="Journaled bananas")
    for n in range(readers):
        SubscriberFactory(mailing_list=mailing_list, email=f"reader{n}@example.com")
    message = MessageFactory(mailing_list=mailing_list, subject="Ripe", body="Bananas.")
    pending_deliveries_for(message)
    return Message.objects.select_related("mailing_list").get(pk=message.pk)


def lease_runs_out(rows):
    SubscriberMessage.objects.filter(pk__in=[row.pk for row in rows]).update(
        available_at=timezone.now() - timedelta(seconds=1)
    )


@pytest.fixture
def journal_of(settings):
    journals = []

    def journal_of(message):
        journal = AcceptedCopies(settings.REDIS_URL, message.pk)
        journals.append(journal)
        return journal

    yield journal_of
    for journal in journals:
        redis.Redis.from_url(settings.REDIS_URL).delete(journal.key)
        journal.close()


@pytest.mark.django_db
def test_copies_in_the_journal_are_recorded_as_sent_when_their_worker_is_gone(journal_of):
    message = message_to(3)
    rows = claim_batch(message, 3, lease_seconds=60)
    journal = journal_of(message)
    noted_at = timezone.now()
    journal.note(rows[0].pk)
    journal.note(rows[1].pk)
    lease_runs_out(rows)

    claimed_again = claim_batch(message, 3, lease_seconds=60, journal=journal)

    assert [row.pk for row in claimed_again] == [rows[2].pk]
    for row in rows[:2]:
        row.refresh_from_db()
        assert (row.status, row.attempts, row.available_at) == ("sent", 1, None)
        assert abs(row.sent - noted_at) < timedelta(seconds=5)
    assert journal.accepted([row.pk for row in rows]) == {}


@pytest.mark.django_db
def test_a_delivery_leaves_nothing_in_the_journal_once_recorded(settings, journal_of):
    message = message_to(4)
    settings.MAIL_APE_DELIVERY_JOURNAL_REDIS_URL = settings.REDIS_URL

    deliver(message, time.monotonic() + 30)

    assert set(message.subscribermessage_set.values_list("status", flat=True)) == {"sent"}
    assert not redis.Redis.from_url(settings.REDIS_URL).exists(journal_of(message).key)


@pytest.mark.django_db
def test_a_journal_whose_redis_is_unreachable_stays_out_of_the_way(journal_of):
    message = message_to(1)
    [row] = claim_batch(message, 1, lease_seconds=60)
    journal = AcceptedCopies(f"redis://127.0.0.1:{free_port()}/0", message.pk)

    journal.note(row.pk)
    journal.forget([row.pk])
    lease_runs_out([row])

    assert journal.accepted([row.pk]) == {}
    assert [again.pk for again in claim_batch(message, 1, 60, journal=journal)] == [row.pk]
    journal.close()


@pytest.mark.django_db(transaction=True)
def test_a_live_worker_keeps_its_rows_past_the_lease_and_a_gone_one_loses_them_within_one(
    monkeypatch,
):
    # No delivery task runs: the test plays the worker.
    monkeypatch.setattr(Message, "queue_delivery", lambda *args, **kwargs: None)
    message = message_to(3)
    lease = 1
    rows = claim_batch(message, 3, lease_seconds=lease)
    assert len(rows) == 3

    with LeaseKeeper(message.pk, lease) as keeper:
        keeper.hold(rows)
        time.sleep(2.5 * lease)
        assert keeper.holds()
        assert claim_batch(message, 3, lease_seconds=lease) == []
    time.sleep(1.2 * lease)

    assert sorted(row.pk for row in claim_batch(message, 3, lease)) == sorted(r.pk for r in rows)


@pytest.mark.django_db
def test_a_worker_stops_sending_before_a_lease_it_did_not_renew_runs_out():
    message = message_to(1)
    rows = claim_batch(message, 1, lease_seconds=1)
    keeper = LeaseKeeper(message.pk, 1)

    keeper.hold(rows)
    assert keeper.holds()
    time.sleep(0.9)

    assert not keeper.holds()
