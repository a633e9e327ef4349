"""The shared copy behind every e-mail, the SMTP loop, and the send rate limit on the real
Redis (the claim and outcome rules are in test_claims.py)."""

import json
import threading
import time
import uuid
from email import policy
from email.parser import BytesParser
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.message import sanitize_address

from mailinglist import emails, ratelimit
from mailinglist.delivery.claims import claim_batch
from mailinglist.delivery.smtp import send_each
from mailinglist.models import Message
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


def test_each_copy_patched_from_the_shared_one_matches_a_copy_rendered_alone(message, monkeypatch):
    # Both copies' unsubscribe tokens are stamped in the same second.
    monkeypatch.setattr("mailinglist.tokens.time", SimpleNamespace(time=lambda: 1_800_000_000))
    mailer = emails.ListMessageMailer(message)
    rendered_alone = emails.ListMessageMailer(message)
    rendered_alone.shared_copy = None
    assert mailer.shared_copy is not None

    for row in message.subscribermessage_set.select_related("subscriber"):
        fast, slow = parsed(mailer.build(row)), parsed(rendered_alone.build(row))
        for header in [
            "Subject",
            "From",
            "To",
            "Message-ID",
            "List-Id",
            "List-Unsubscribe",
            "X-Mail-Ape-Delivery",
            "X-PM-Metadata-mailape",
            "X-SMTPAPI",
            "X-Mailgun-Variables",
        ]:
            assert str(fast[header]).strip() == str(slow[header]).strip()
        assert fast["X-Mail-Ape-Delivery"] == str(row.pk)
        assert json.loads(fast["X-Mailgun-Variables"]) == {"mailape": str(row.pk)}
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
    rows = claim_batch(message, 2, lease_seconds=60)
    rows[0].subscriber.email = "broken\r\nBcc: victim@example.com"

    verdicts = list(send_each(emails.ListMessageMailer(message), rows, emails.smtp_connection()))

    assert verdicts[0][1].permanent
    assert verdicts[1] == (rows[1], None)


def test_send_each_stops_when_told_and_leaves_the_rest(message):
    rows = claim_batch(message, 5, lease_seconds=60)
    mailer = emails.ListMessageMailer(message)

    verdicts = list(send_each(mailer, rows, emails.smtp_connection(), lambda: False))

    assert verdicts == []


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


def test_the_envelope_smtp_carries_holds_the_bytes_of_the_full_copy(message, monkeypatch):
    monkeypatch.setattr("mailinglist.tokens.time", SimpleNamespace(time=lambda: 1_800_000_000))
    monkeypatch.setattr("mailinglist.emails.formatdate", lambda localtime: "Fri, 15 Jan 2027")
    mailer = emails.ListMessageMailer(message)
    assert mailer.shared_copy is not None

    for row in message.subscribermessage_set.select_related("subscriber"):
        assert mailer.envelope(row) == emails.envelope_of(mailer.build(row))
