"""The delivery rules on the real database: claims, outcomes, unsubscribes, the shared
copy behind every e-mail, and the send rate limit on the real Redis."""

import threading
import time
import uuid
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.message import sanitize_address
from django.db import connection
from django.utils import timezone

from mailinglist import emails, ratelimit
from mailinglist.models import Message, SubscriberMessage
from mailinglist.tests.factories import (
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
    pending_deliveries_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def message():
    mailing_list = MailingListFactory(name='Banana "Facts"')
    for n in range(5):
        SubscriberFactory(mailing_list=mailing_list, email=f"reader{n}@example.com")
    message = MessageFactory(
        mailing_list=mailing_list, subject="Ripe — today", body="Bananas are **yellow** & ripe."
    )
    pending_deliveries_for(message)
    return Message.objects.select_related("mailing_list").get(pk=message.pk)


def parsed(email_message):
    return BytesParser(policy=policy.default).parsebytes(
        email_message.message().as_bytes(linesep="\r\n")
    )


def subscribers_with_ids(mailing_list, *ids):
    return [SubscriberFactory(id=uuid.UUID(int=n), mailing_list=mailing_list).pk for n in ids]


def test_claims_make_rows_a_slice_of_the_list_at_a_time_until_fanned_out(settings):
    settings.MAIL_APE_BATCH_SIZE = 2
    mailing_list = MailingListFactory()
    low_half = subscribers_with_ids(mailing_list, 1)
    high_half = subscribers_with_ids(mailing_list, 2**127, 2**127 + 1, 2**128 - 1)
    SubscriberFactory(mailing_list=mailing_list, confirmed=False)
    message = MessageFactory(mailing_list=mailing_list)
    SubscriberFactory(mailing_list=mailing_list, email="joined-after-the-message@example.com")
    message.start_delivery()

    first = SubscriberMessage.objects.claim_batch(message, 2, lease_seconds=60)
    second = SubscriberMessage.objects.claim_batch(message, 2, lease_seconds=60)

    assert [row.subscriber_id for row in first] == low_half
    assert sorted(row.subscriber_id for row in second) == high_half
    assert message.subscribermessage_set.filter(status="sending", attempts=1).count() == 4
    message.refresh_from_db()
    assert message.fanned_out is not None
    assert SubscriberMessage.objects.claim_batch(message, 2, lease_seconds=60) == []
    assert message.subscribermessage_set.count() == 4


def test_a_claim_passes_over_a_slice_with_no_recipients(settings):
    settings.MAIL_APE_BATCH_SIZE = 1
    mailing_list = MailingListFactory()
    last = subscribers_with_ids(mailing_list, 2**128 - 2, 2**128 - 1)
    message = MessageFactory(mailing_list=mailing_list)
    message.start_delivery()

    claimed = SubscriberMessage.objects.claim_batch(message, 1, lease_seconds=60)

    assert sorted(row.subscriber_id for row in claimed) == last


def test_a_message_finishes_only_once_every_recipient_has_a_row(settings):
    settings.MAIL_APE_BATCH_SIZE = 1
    mailing_list = MailingListFactory()
    subscribers_with_ids(mailing_list, 1, 2**128 - 1)
    message = MessageFactory(mailing_list=mailing_list)
    message.start_delivery()
    SubscriberMessage.objects.record_sent(SubscriberMessage.objects.claim_batch(message, 1, 60))

    assert message.delivery_counts()["pending"] == 1
    assert message.finish_if_done() is False

    SubscriberMessage.objects.record_sent(SubscriberMessage.objects.claim_batch(message, 1, 60))
    assert message.finish_if_done() is True


def test_each_copy_patched_from_the_shared_one_matches_a_copy_rendered_alone(message):
    mailer = emails.ListMessageMailer(message)
    rendered_alone = emails.ListMessageMailer(message)
    rendered_alone.shared_copy = None
    assert mailer.shared_copy is not None

    for row in message.subscribermessage_set.select_related("subscriber"):
        fast, slow = parsed(mailer.build(row)), parsed(rendered_alone.build(row))
        for header in ["Subject", "From", "To", "Message-ID", "List-Id", "List-Unsubscribe"]:
            assert str(fast[header]).strip() == str(slow[header]).strip()
        assert fast["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert fast["Date"]
        for part in ["plain", "html"]:
            assert (
                fast.get_body(preferencelist=(part,)).get_content()
                == slow.get_body(preferencelist=(part,)).get_content()
            )
        assert str(row.pk) in fast["Message-ID"]
        assert emails.unsubscribe_link(row.subscriber) in fast["List-Unsubscribe"]


def test_a_template_that_greets_the_subscriber_is_rendered_per_recipient(message, settings):
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "OPTIONS": {
                **settings.TEMPLATES[0]["OPTIONS"],
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {
                            "mailinglist/email/message-body.txt": "Hi {{ subscriber.email }}",
                            "mailinglist/email/message-body.html": "<p>Hi</p>",
                        },
                    ),
                    "django.template.loaders.app_directories.Loader",
                ],
            },
            "APP_DIRS": False,
        }
    ]
    row = message.subscribermessage_set.select_related("subscriber").first()

    mailer = emails.ListMessageMailer(message)

    assert mailer.shared_copy is None
    assert mailer.build(row).body == f"Hi {row.subscriber.email}"


@pytest.mark.parametrize(
    "address",
    [
        "plain@example.com",
        "o'hara+tag@Example.COM",
        "a..b@example.com",
        '"quoted local"@example.com',
        "josé@example.com",
        "user@bücher.example",
    ],
)
def test_addresses_are_written_as_django_writes_them(address, settings):
    assert emails._header_address(address) == sanitize_address(address, settings.DEFAULT_CHARSET)


def test_an_address_no_email_can_be_made_for_fails_that_recipient_only(message):
    rows = SubscriberMessage.objects.claim_batch(message, 2, lease_seconds=60)
    rows[0].subscriber.email = "broken\r\nBcc: victim@example.com"

    outcomes = list(
        emails.send_each(emails.ListMessageMailer(message), rows, emails.smtp_connection())
    )

    assert outcomes[0][1].permanent
    assert outcomes[1] == (rows[1], None)


def test_claims_never_overlap_and_an_expired_lease_is_claimed_again(message):
    first = SubscriberMessage.objects.claim_batch(message, 3, lease_seconds=60)
    second = SubscriberMessage.objects.claim_batch(message, 3, lease_seconds=60)

    assert len(first) == 3
    assert len(second) == 2
    assert not {row.pk for row in first} & {row.pk for row in second}
    assert SubscriberMessage.objects.claim_batch(message, 3, lease_seconds=60) == []

    SubscriberMessage.objects.filter(pk=first[0].pk).update(
        available_at=timezone.now() - timedelta(seconds=1)
    )
    [again] = SubscriberMessage.objects.claim_batch(message, 3, lease_seconds=60)
    assert again.pk == first[0].pk
    assert again.attempts == 2


def test_the_orm_claim_for_sqlite_follows_the_same_rules(message, monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    newcomer = SubscriberFactory(mailing_list=message.mailing_list, created=message.created)
    # As a run interrupted before its slice was counted done leaves it.
    Message.objects.filter(pk=message.pk).update(fanned_out=None, fan_out_slices_done=0)
    unconfirmed = message.subscribermessage_set.select_related("subscriber").first().subscriber
    unconfirmed.confirmed = False
    unconfirmed.save()

    claimed = SubscriberMessage.objects.claim_batch(message, 10, lease_seconds=60)

    assert len(claimed) == 5
    assert newcomer.pk in {row.subscriber_id for row in claimed}
    assert {row.attempts for row in claimed} == {1}
    assert message.subscribermessage_set.get(subscriber=unconfirmed).status == "skipped"
    assert SubscriberMessage.objects.claim_batch(message, 10, lease_seconds=60) == []
    message.refresh_from_db()
    assert message.fanned_out is not None
    SubscriberMessage.objects.release(claimed)
    message.pause()
    assert SubscriberMessage.objects.claim_batch(message, 10, lease_seconds=60) == []


def test_a_subscriber_no_longer_confirmed_is_skipped_not_sent(message):
    row = message.subscribermessage_set.select_related("subscriber").first()
    row.subscriber.confirmed = False
    row.subscriber.save()

    claimed = SubscriberMessage.objects.claim_batch(message, 10, lease_seconds=60)

    assert row.pk not in {claimed_row.pk for claimed_row in claimed}
    row.refresh_from_db()
    assert row.status == SubscriberMessage.Status.SKIPPED


def test_unsubscribing_during_a_send_stops_further_copies(message):
    row = message.subscribermessage_set.select_related("subscriber").first()

    row.subscriber.unsubscribe()

    claimed = SubscriberMessage.objects.claim_batch(message, 10, lease_seconds=60)
    assert len(claimed) == 4
    row.refresh_from_db()
    assert row.status == SubscriberMessage.Status.SKIPPED


def test_temporary_failures_back_off_then_fail_and_permanent_ones_fail_at_once(message, settings):
    settings.MAIL_APE_RETRY_BASE_SECONDS = 10
    settings.MAIL_APE_MAX_ATTEMPTS = 2
    later, unknown = SubscriberMessage.objects.claim_batch(message, 2, lease_seconds=60)

    SubscriberMessage.objects.record_failure(later, "451 later", permanent=False)
    SubscriberMessage.objects.record_failure(unknown, "550 unknown", permanent=True)

    later.refresh_from_db()
    unknown.refresh_from_db()
    assert (later.status, later.last_error) == ("pending", "451 later")
    assert later.available_at > timezone.now() + timedelta(seconds=8)
    assert (unknown.status, unknown.attempts, unknown.available_at) == ("failed", 1, None)

    SubscriberMessage.objects.filter(pk=later.pk).update(available_at=timezone.now())
    [later] = [r for r in SubscriberMessage.objects.claim_batch(message, 5, 60) if r.pk == later.pk]
    SubscriberMessage.objects.record_failure(later, "451 still later", permanent=False)
    later.refresh_from_db()
    assert (later.status, later.attempts) == ("failed", 2)


def test_rows_never_tried_go_back_without_an_attempt(message):
    rows = SubscriberMessage.objects.claim_batch(message, 2, lease_seconds=60)

    SubscriberMessage.objects.release(rows)

    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("pending", 0)
    assert message.seconds_until_next_due() == 0


def test_send_each_stops_at_its_deadline_and_leaves_the_rest(message):
    rows = SubscriberMessage.objects.claim_batch(message, 5, lease_seconds=60)
    mailer = emails.ListMessageMailer(message)

    outcomes = list(emails.send_each(mailer, rows, emails.smtp_connection(), time.monotonic()))

    assert outcomes == []


@pytest.fixture
def limiter_key():
    return f"mailape-test-rate-{uuid.uuid4().hex}"


def test_the_rate_limit_is_shared_by_every_limiter_on_the_same_redis(settings, limiter_key):
    rate = 40
    limiters = [
        ratelimit.SharedSendRateLimiter(rate, settings.REDIS_URL, key=limiter_key) for _ in range(2)
    ]
    started = time.monotonic()

    threads = [
        threading.Thread(target=lambda limiter=limiter: [limiter.acquire() for _ in range(20)])
        for limiter in limiters
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    elapsed = time.monotonic() - started
    # 40 tokens at 40 a second, less the small burst the bucket starts with.
    assert 0.8 <= elapsed < 2.5


def test_the_rate_limit_is_off_by_default_and_needs_redis_when_on(settings):
    assert ratelimit.send_rate_limiter() is None

    settings.MAIL_APE_SEND_RATE = 14
    settings.MAIL_APE_RATE_LIMIT_REDIS_URL = ""
    settings.CELERY_BROKER_URL = "sqs://"
    with pytest.raises(ImproperlyConfigured):
        ratelimit.send_rate_limiter()

    settings.MAIL_APE_RATE_LIMIT_REDIS_URL = settings.REDIS_URL
    assert ratelimit.send_rate_limiter().rate == 14
