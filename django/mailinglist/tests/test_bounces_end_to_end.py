"""Bounces through a real Celery worker, Redis and SMTP server, and reports mailed back
through `manage.py process_bounce` as a mail server's pipe transport runs it."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from mailinglist.models import Message, Subscriber, SubscriberMessage, Suppression
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from mailinglist.tests.harness import SmtpSink, postfix_report, wait_until, worker_environment

pytestmark = pytest.mark.slow

BOUNCE_ADDRESS = "bounces@lists.example.com"
MANAGE_PY = Path(django_settings.BASE_DIR) / "manage.py"


def process_bounce(data, env, recipient=None):
    command = [sys.executable, str(MANAGE_PY), "process_bounce"]
    if recipient:
        command += ["--recipient", recipient]
    return subprocess.run(command, input=data, env=env, capture_output=True, timeout=60)


def finished(message):
    message.refresh_from_db()
    return message.status == Message.Status.FINISHED


def test_bounces_at_send_time_and_mailed_reports_keep_later_messages_away(
    transactional_db, start_celery_worker
):
    refused = {"gone1@example.com", "gone2@example.com"}
    with SmtpSink(
        reply_for_recipient=lambda address: "550 5.1.1 User unknown" if address in refused else None
    ) as sink:
        start_celery_worker(sink.port, MAIL_APE_BOUNCE_ADDRESS=BOUNCE_ADDRESS)
        mailing_list = MailingListFactory()
        addresses = [*sorted(refused), "later1@example.com", "later2@example.com"]
        addresses += [f"fine{number}@example.com" for number in range(5)]
        for address in addresses:
            SubscriberFactory(mailing_list=mailing_list, email=address)
        first = MessageFactory(mailing_list=mailing_list)
        wait_until(lambda: finished(first), message="the first message to finish")

        for address in refused:
            assert Subscriber.objects.get(email=address).status == "bounced"
            row = SubscriberMessage.objects.get(message=first, subscriber__email=address)
            assert row.status == SubscriberMessage.Status.BOUNCED
            assert "550 5.1.1" in row.last_error
        senders = dict(sink.envelope_senders)
        assert senders["later1@example.com"].startswith("bounces+")
        assert senders["later1@example.com"].endswith("@lists.example.com")

        env = worker_environment(
            sink.port, "http://testserver", MAIL_APE_BOUNCE_ADDRESS=BOUNCE_ADDRESS
        )
        [(_, original)] = [m for m in sink.received() if m[0] == "later1@example.com"]
        by_verp = process_bounce(
            postfix_report("later1@example.com", {"Subject": original["Subject"]}, BOUNCE_ADDRESS),
            env,
            recipient=senders["later1@example.com"],
        )
        [(_, original)] = [m for m in sink.received() if m[0] == "later2@example.com"]
        by_quoted_headers = process_bounce(
            postfix_report(
                "later2@example.com",
                {
                    "Message-ID": original["Message-ID"],
                    "X-Mail-Ape-Delivery": original["X-Mail-Ape-Delivery"],
                },
                BOUNCE_ADDRESS,
            ),
            env,
        )
        assert (by_verp.returncode, by_quoted_headers.returncode) == (0, 0), (
            by_verp.stderr + by_quoted_headers.stderr
        )
        for address in ["later1@example.com", "later2@example.com"]:
            row = SubscriberMessage.objects.get(message=first, subscriber__email=address)
            assert row.status == SubscriberMessage.Status.BOUNCED
            assert Suppression.objects.with_address(mailing_list.owner_id, address).exists()

        Suppression.suppress(mailing_list.owner_id, "FINE4@example.com", Suppression.Reason.MANUAL)
        received_before = len(sink.received())
        second = MessageFactory(mailing_list=mailing_list)
        wait_until(lambda: finished(second), message="the second message to finish")

        got_second = {recipient for recipient, _ in sink.received()[received_before:]}
        assert got_second == {f"fine{number}@example.com" for number in range(4)}
        suppressed = SubscriberMessage.objects.get(
            message=second, subscriber__email="fine4@example.com"
        )
        assert suppressed.status == SubscriberMessage.Status.SUPPRESSED
        assert not sink.refusals[len(refused) :]


def test_the_guardrails_pause_a_message_when_the_server_rejects_a_tenth(
    transactional_db, start_celery_worker
):
    with SmtpSink(
        reply_for_recipient=lambda address: (
            "550 5.1.1 No such user" if address.startswith("bad") else None
        )
    ) as sink:
        start_celery_worker(sink.port)
        mailing_list = MailingListFactory()
        Subscriber.objects.bulk_create(
            Subscriber(
                mailing_list=mailing_list,
                email=f"{'bad' if number % 10 == 0 else 'good'}{number}@example.com",
                confirmed=True,
            )
            for number in range(2000)
        )
        message = MessageFactory(mailing_list=mailing_list)

        def paused():
            message.refresh_from_db()
            return message.status == Message.Status.PAUSED

        wait_until(paused, timeout=60, message="the guardrails to pause the message")

    assert "bounced" in message.pause_reason
    counts = message.delivery_counts()
    assert counts["bounced"] >= 20
    assert counts["pending"] > 0, "paused before every copy was tried"
    assert len(sink.received()) < 1800
