"""Copies sent over a real SMTP server (aiosmtpd), pipelined when it offers PIPELINING
and one command at a time when it does not: the same bytes arrive either way, and a
refusal or a dropped connection costs only what it must."""

import smtplib
from types import SimpleNamespace

import pytest

from mailinglist import emails
from mailinglist.delivery.claims import claim_batch
from mailinglist.delivery.smtp import SmtpSession, send_each
from mailinglist.models import Message
from mailinglist.tests.factories import (
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
    pending_deliveries_for,
)
from mailinglist.tests.harness import SmtpSink

pytestmark = pytest.mark.django_db

READERS = 6
BODY = "Bananas are **yellow**.\n\n.this line starts with a period\n\n..and this with two"


@pytest.fixture
def message():
    mailing_list = MailingListFactory(name="Pipelined bananas")
    for n in range(READERS):
        SubscriberFactory(mailing_list=mailing_list, email=f"reader{n}@example.com")
    message = MessageFactory(mailing_list=mailing_list, subject="Ripe", body=BODY)
    pending_deliveries_for(message)
    return Message.objects.select_related("mailing_list").get(pk=message.pk)


def use_smtp_server(settings, sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port


def send_batch(message, rows, mailer=None):
    connection = emails.smtp_connection()
    try:
        return list(send_each(mailer or emails.ListMessageMailer(message), rows, connection))
    finally:
        connection.close()


def received_bytes(sink):
    return {recipient: email.as_bytes() for recipient, email in sink.received()}


class DroppingSink(SmtpSink):
    """Drops the connection instead of answering the content of the nth copy, once."""

    def __init__(self, drop_at):
        super().__init__()
        self.drop_at = drop_at
        self.contents_seen = 0

    async def handle_DATA(self, server, session, envelope):
        self.contents_seen += 1
        if self.contents_seen == self.drop_at:
            server.transport.close()
            return "421 4.3.0 closing"
        return await super().handle_DATA(server, session, envelope)


def test_a_session_pipelines_only_when_the_server_offers_it():
    with SmtpSink(pipelining=True) as offering, SmtpSink(pipelining=False) as not_offering:
        for sink, pipelines in ((offering, True), (not_offering, False)):
            client = smtplib.SMTP("127.0.0.1", sink.port)
            assert SmtpSession(client).pipelining is pipelines
            client.quit()


def test_pipelined_copies_arrive_byte_for_byte_as_copies_sent_one_command_at_a_time(
    message, settings, monkeypatch
):
    # Both sends stamp their unsubscribe tokens and Date headers in the same second.
    monkeypatch.setattr("mailinglist.tokens.time", SimpleNamespace(time=lambda: 1_800_000_000))
    monkeypatch.setattr("mailinglist.emails.formatdate", lambda localtime: "Fri, 15 Jan 2027")
    rows = claim_batch(message, READERS, lease_seconds=60)
    mailer = emails.ListMessageMailer(message)
    with SmtpSink(pipelining=True) as pipelining, SmtpSink(pipelining=False) as plain:
        use_smtp_server(settings, pipelining)
        pipelined_verdicts = send_batch(message, rows, mailer)
        use_smtp_server(settings, plain)
        plain_verdicts = send_batch(message, rows, mailer)

    assert pipelined_verdicts == plain_verdicts == [(row, None) for row in rows]
    assert received_bytes(pipelining) == received_bytes(plain)
    assert len(received_bytes(pipelining)) == READERS


def test_lines_starting_with_a_period_arrive_as_they_were_written(message, settings):
    rows = claim_batch(message, 1, lease_seconds=60)
    with SmtpSink() as sink:
        use_smtp_server(settings, sink)
        send_batch(message, rows)

    [(_, email)] = sink.received()
    lines = email.get_body(preferencelist=("plain",)).get_content().splitlines()
    assert ".this line starts with a period" in lines
    assert "..and this with two" in lines


def test_a_refused_recipient_fails_alone_and_the_connection_goes_on(message, settings):
    refused = {"reader2@example.com": "550 5.1.1 No such user", "reader5@example.com": "451 Later"}
    rows = claim_batch(message, READERS, lease_seconds=60)
    with SmtpSink(refused.get) as sink:
        use_smtp_server(settings, sink)
        connection = emails.smtp_connection()
        mailer = emails.ListMessageMailer(message)
        first = list(send_each(mailer, rows[:3] + [rows[5]], connection))
        # The same connection, after a batch whose last recipient was refused.
        second = list(send_each(mailer, rows[3:5], connection))
        connection.close()

    verdicts = {row.subscriber.email: failure for row, failure in first + second}
    assert verdicts["reader2@example.com"].description == "550 5.1.1 No such user"
    assert verdicts["reader2@example.com"].permanent
    assert verdicts["reader5@example.com"].description == "451 Later"
    assert not verdicts["reader5@example.com"].permanent
    delivered = sorted(set(verdicts) - set(refused))
    assert all(verdicts[address] is None for address in delivered)
    assert sorted(received_bytes(sink)) == delivered


def test_a_connection_dropped_mid_batch_is_reopened_and_each_copy_arrives_once(message, settings):
    rows = claim_batch(message, READERS, lease_seconds=60)
    with DroppingSink(drop_at=3) as sink:
        use_smtp_server(settings, sink)
        verdicts = send_batch(message, rows)

    assert verdicts == [(row, None) for row in rows]
    recipients = [recipient for recipient, _ in sink.received()]
    assert sorted(recipients) == sorted(row.subscriber.email for row in rows)


def test_a_server_gone_for_good_puts_the_batch_off(message, settings):
    rows = claim_batch(message, READERS, lease_seconds=60)
    with SmtpSink() as sink:
        use_smtp_server(settings, sink)
    # The sink has stopped: nothing listens on its port any more.

    verdicts = send_batch(message, rows)

    assert [row for row, _ in verdicts] == rows
    assert all(failure is not None and not failure.permanent for _, failure in verdicts)
