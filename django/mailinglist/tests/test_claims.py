"""The delivery rules a claim and an outcome follow, on PostgreSQL and (in a run of its own,
`pytest --ds=config.test_sqlite_settings -m also_on_sqlite`) on SQLite."""

import logging
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from mailinglist.delivery import outcomes, sweep
from mailinglist.delivery.claims import claim_batch
from mailinglist.delivery.sending import seconds_until_next_due
from mailinglist.delivery.states import DeliveryState, DeliveryTransition
from mailinglist.models import Message, SubscriberMessage
from mailinglist.tests.factories import (
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
    pending_deliveries_for,
)

pytestmark = [pytest.mark.django_db, pytest.mark.also_on_sqlite]


@pytest.fixture
def message():
    mailing_list = MailingListFactory()
    for n in range(5):
        SubscriberFactory(mailing_list=mailing_list, email=f"reader{n}@example.com")
    message = MessageFactory(mailing_list=mailing_list)
    pending_deliveries_for(message)
    return message


def subscribers_with_ids(mailing_list, *ids):
    return [SubscriberFactory(id=uuid.UUID(int=n), mailing_list=mailing_list).pk for n in ids]


def statuses(message):
    return sorted(message.subscribermessage_set.values_list("status", flat=True))


def test_the_first_claim_starts_the_message_and_claims_make_rows_a_slice_at_a_time(settings):
    settings.MAIL_APE_BATCH_SIZE = 2
    mailing_list = MailingListFactory()
    low_half = subscribers_with_ids(mailing_list, 1)
    high_half = subscribers_with_ids(mailing_list, 2**127, 2**127 + 1, 2**128 - 1)
    SubscriberFactory(mailing_list=mailing_list, confirmed=False)
    message = MessageFactory(mailing_list=mailing_list)
    SubscriberFactory(mailing_list=mailing_list, email="joined-after-the-message@example.com")

    first = claim_batch(message, 2, lease_seconds=60)
    message.refresh_from_db()
    assert message.started is not None
    second = claim_batch(message, 2, lease_seconds=60)

    assert [row.subscriber_id for row in first] == low_half
    assert sorted(row.subscriber_id for row in second) == high_half
    assert message.subscribermessage_set.filter(status="sending", attempts=1).count() == 4
    message.refresh_from_db()
    assert message.fanned_out is not None
    assert claim_batch(message, 2, lease_seconds=60) == []
    assert message.subscribermessage_set.count() == 4


def test_a_claim_passes_over_a_slice_with_no_recipients(settings):
    settings.MAIL_APE_BATCH_SIZE = 1
    mailing_list = MailingListFactory()
    last = subscribers_with_ids(mailing_list, 2**128 - 2, 2**128 - 1)
    message = MessageFactory(mailing_list=mailing_list)

    claimed = claim_batch(message, 1, lease_seconds=60)

    assert sorted(row.subscriber_id for row in claimed) == last


def test_a_message_finishes_only_once_every_recipient_has_a_row(settings):
    settings.MAIL_APE_BATCH_SIZE = 1
    mailing_list = MailingListFactory()
    subscribers_with_ids(mailing_list, 1, 2**128 - 1)
    message = MessageFactory(mailing_list=mailing_list)
    outcomes.mark_sent(claim_batch(message, 1, 60))

    assert message.delivery_counts()["pending"] == 1
    assert message.finish_if_done() is False

    outcomes.mark_sent(claim_batch(message, 1, 60))
    assert message.finish_if_done() is True


def test_claims_never_overlap_and_an_expired_lease_is_claimed_again(message, caplog):
    first = claim_batch(message, 3, lease_seconds=60)
    second = claim_batch(message, 3, lease_seconds=60)

    assert len(first) == 3
    assert len(second) == 2
    assert not {row.pk for row in first} & {row.pk for row in second}
    assert claim_batch(message, 3, lease_seconds=60) == []

    SubscriberMessage.objects.filter(pk=first[0].pk).update(
        available_at=timezone.now() - timedelta(seconds=1)
    )
    with caplog.at_level(logging.WARNING, logger="mailinglist.delivery.claims"):
        [again] = claim_batch(message, 3, lease_seconds=60)
    assert again.pk == first[0].pk
    assert again.attempts == 2
    assert "1 copies claimed again after their worker's lease ran out" in caplog.text


def test_rows_left_by_an_interrupted_claim_are_claimed_not_made_twice(message):
    newcomer = SubscriberFactory(mailing_list=message.mailing_list, created=message.created)
    # As a run interrupted before its slice was counted done leaves it.
    Message.objects.filter(pk=message.pk).update(fanned_out=None, fan_out_slices_done=0)

    claimed = claim_batch(message, 10, lease_seconds=60)

    assert len(claimed) == 6
    assert newcomer.pk in {row.subscriber_id for row in claimed}
    assert {row.attempts for row in claimed} == {1}
    assert message.subscribermessage_set.count() == 6
    assert claim_batch(message, 10, lease_seconds=60) == []
    message.refresh_from_db()
    assert message.fanned_out is not None


def test_a_paused_or_cancelled_message_hands_out_nothing(message):
    message.pause()
    assert claim_batch(message, 10, lease_seconds=60) == []

    message.cancel()
    assert claim_batch(message, 10, lease_seconds=60) == []
    assert statuses(message) == ["cancelled"] * 5


def test_a_subscriber_no_longer_confirmed_is_skipped_not_sent(message):
    row = message.subscribermessage_set.select_related("subscriber").first()
    row.subscriber.confirmed = False
    row.subscriber.save()

    claimed = claim_batch(message, 10, lease_seconds=60)

    assert row.pk not in {claimed_row.pk for claimed_row in claimed}
    assert len(claimed) == 4
    row.refresh_from_db()
    assert row.status == DeliveryState.SKIPPED


def test_unsubscribing_during_a_send_stops_further_copies(message):
    row = message.subscribermessage_set.select_related("subscriber").first()

    row.subscriber.unsubscribe()

    claimed = claim_batch(message, 10, lease_seconds=60)
    assert len(claimed) == 4
    row.refresh_from_db()
    assert row.status == DeliveryState.SKIPPED


def test_temporary_failures_back_off_then_fail_and_permanent_ones_fail_at_once(message, settings):
    settings.MAIL_APE_RETRY_BASE_SECONDS = 10
    settings.MAIL_APE_MAX_ATTEMPTS = 2
    later, unknown = claim_batch(message, 2, lease_seconds=60)

    outcomes.record_failure(later, "451 later", permanent=False)
    outcomes.record_failure(unknown, "550 unknown", permanent=True)

    later.refresh_from_db()
    unknown.refresh_from_db()
    assert (later.status, later.last_error) == ("pending", "451 later")
    assert later.available_at > timezone.now() + timedelta(seconds=8)
    assert (unknown.status, unknown.attempts, unknown.available_at) == ("failed", 1, None)

    SubscriberMessage.objects.filter(pk=later.pk).update(available_at=timezone.now())
    [later] = [row for row in claim_batch(message, 5, 60) if row.pk == later.pk]
    outcomes.record_failure(later, "451 still later", permanent=False)
    later.refresh_from_db()
    assert (later.status, later.attempts) == ("failed", 2)


def test_rows_never_tried_go_back_without_an_attempt(message):
    rows = claim_batch(message, 2, lease_seconds=60)

    outcomes.release(rows)

    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("pending", 0)
    assert seconds_until_next_due(message) == 0


def test_a_copy_the_server_took_counts_as_sent_even_if_cancelled_meanwhile(message):
    rows = claim_batch(message, 2, lease_seconds=60)
    message.cancel()

    outcomes.mark_sent(rows[:1])
    outcomes.record_failure(rows[1], "451 later", permanent=False)

    assert statuses(message) == ["cancelled"] * 4 + ["sent"]


@pytest.mark.parametrize(
    "transition",
    [value for name, value in vars(DeliveryTransition).items() if not name.startswith("_")],
    ids=lambda transition: transition.name,
)
def test_a_row_moves_only_from_the_states_its_transition_allows(message, transition):
    rows = list(message.subscribermessage_set.all()[:1])
    for state in DeliveryState:
        SubscriberMessage.objects.filter(pk=rows[0].pk).update(status=state)

        moved = SubscriberMessage.objects.filter(pk=rows[0].pk).apply(transition)

        rows[0].refresh_from_db()
        assert moved == transition.allowed_from(state)
        assert rows[0].status == (transition.target if moved else state)


def test_the_sweep_queues_a_stalled_message_again_and_says_so(
    message, settings, caplog, django_capture_on_commit_callbacks
):
    settings.MAIL_APE_DELIVERY_LEASE_SECONDS = 60
    Message.objects.filter(pk=message.pk).update(
        delivery_activity=timezone.now() - timedelta(seconds=61)
    )

    with (
        caplog.at_level(logging.WARNING, logger="mailinglist.delivery.sweep"),
        django_capture_on_commit_callbacks() as queued,
    ):
        sweep.requeue_stalled_deliveries()

    assert len(queued) == settings.MAIL_APE_DELIVERY_PARALLELISM
    assert f"Message {message.pk} had stalled" in caplog.text
    assert list(sweep.stalled_messages()) == []
