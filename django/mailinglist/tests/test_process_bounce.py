"""`manage.py process_bounce`: one mailed report on stdin, as a mail server pipes it; and
delivery status notifications in the shapes real mail servers write them, each of which
finds its copy and counts as it should."""

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from mailinglist.models import DeliveryEvent, SubscriberMessage, Suppression
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from mailinglist.tests.harness import free_port, postfix_report
from mailinglist.tokens import make_bounce_address

pytestmark = pytest.mark.django_db

MANAGE_PY = Path(django_settings.BASE_DIR) / "manage.py"
BOUNCE_ADDRESS = "bounces@lists.example.com"
ADDRESS = "reader@example.com"


@pytest.fixture(autouse=True)
def _bounce_address(settings):
    settings.MAIL_APE_BOUNCE_ADDRESS = BOUNCE_ADDRESS


@pytest.fixture
def copy(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()
    SubscriberFactory(mailing_list=mailing_list, email=ADDRESS)
    with django_capture_on_commit_callbacks(execute=True):
        message = MessageFactory(mailing_list=mailing_list, subject="Banana news")
    return SubscriberMessage.objects.get(message=message)


def pipe(monkeypatch, data, *args):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = io.StringIO()
    call_command("process_bounce", *args, stdout=out)
    return out.getvalue()


def test_it_records_a_report_to_the_copys_verp_address(monkeypatch, copy):
    verp = make_bounce_address(copy.pk, BOUNCE_ADDRESS)

    output = pipe(monkeypatch, postfix_report("reader@example.com", {}, verp), "--recipient", verp)

    assert "1 failure(s) recorded" in output
    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.BOUNCED
    owner = copy.message.mailing_list.owner_id
    assert Suppression.objects.with_address(owner, "reader@example.com").exists()


def test_the_same_report_piped_twice_counts_once(monkeypatch, copy):
    verp = make_bounce_address(copy.pk, BOUNCE_ADDRESS)
    report = postfix_report("reader@example.com", {}, verp)

    pipe(monkeypatch, report)
    pipe(monkeypatch, report)

    assert DeliveryEvent.objects.count() == 1


def test_a_tampered_verp_token_is_ignored(monkeypatch, copy, caplog):
    verp = make_bounce_address(copy.pk, BOUNCE_ADDRESS)
    local, domain = verp.split("@")
    tampered = f"{local[:-1]}{'0' if local[-1] != '0' else '1'}@{domain}"

    output = pipe(
        monkeypatch, postfix_report("reader@example.com", {}, tampered), "--recipient", tampered
    )

    assert "0 failure(s) recorded" in output
    assert "does not check out" in caplog.text
    assert not DeliveryEvent.objects.exists()


@pytest.mark.parametrize(
    "data",
    [b"", os.urandom(5000), b"Subject: x\r\n\r\n" + b"A" * (11 * 1024 * 1024)],
    ids=["empty", "binary", "over 10 MB"],
)
def test_it_survives_garbage(monkeypatch, copy, data):
    assert "0 failure(s) recorded" in pipe(monkeypatch, data)


def test_it_asks_the_mail_server_to_retry_when_the_database_is_down(copy):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DJANGO_DB_PORT": str(free_port()),
        "MAIL_APE_BOUNCE_ADDRESS": BOUNCE_ADDRESS,
    }
    report = postfix_report(
        "reader@example.com", {}, make_bounce_address(uuid.uuid4(), BOUNCE_ADDRESS)
    )

    result = subprocess.run(
        [sys.executable, str(MANAGE_PY), "process_bounce"],
        input=report,
        env=env,
        capture_output=True,
        timeout=60,
    )

    assert result.returncode == 75, result.stderr
    assert b"Database unreachable" in result.stderr


def original_headers(copy):
    return (
        f"Message-ID: <{copy.pk}@lists.example.com>\r\n"
        f"X-Mail-Ape-Delivery: {copy.pk}\r\n"
        "From: Ape news <news@lists.example.com>\r\n"
        f"To: {ADDRESS}\r\n"
        "Subject: Banana news\r\n"
    )


def exim(copy):
    return (
        "From: Mail Delivery System <Mailer-Daemon@mx.exim.example>\r\n"
        f"To: {make_bounce_address(copy.pk, BOUNCE_ADDRESS)}\r\n"
        "Subject: Mail delivery failed: returning message to sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "\r\n"
        "This message was created automatically by mail delivery software.\r\n"
        "\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n"
        "\r\n"
        f"  {ADDRESS}\r\n"
        "    host mx.example.com [192.0.2.1]\r\n"
        f"    SMTP error from remote mail server after RCPT TO:<{ADDRESS}>:\r\n"
        f"    550 5.1.1 <{ADDRESS}>: Recipient address rejected: User unknown\r\n"
        "\r\n"
        "------ This is a copy of the message, including all the headers. ------\r\n"
        "\r\n" + original_headers(copy) + "\r\nBananas are in season.\r\n"
    )


def sendmail(copy):
    return (
        "From: Mail Delivery Subsystem <MAILER-DAEMON@smtp.example.net>\r\n"
        f"To: <{BOUNCE_ADDRESS}>\r\n"
        "Subject: Returned mail: see transcript for details\r\n"
        "Auto-Submitted: auto-generated (failure)\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="S1"\r\n'
        "\r\n--S1\r\n\r\n"
        "The original message was received at Wed, 2 Dec 2026 12:00:00 GMT\r\n"
        "   ----- The following addresses had permanent fatal errors -----\r\n"
        f"<{ADDRESS}>\r\n    (reason: 550 5.1.1 User unknown)\r\n"
        "\r\n--S1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; smtp.example.net\r\n"
        "Arrival-Date: Wed, 2 Dec 2026 12:00:00 GMT\r\n\r\n"
        f"Final-Recipient: RFC822; {ADDRESS}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Remote-MTA: DNS; mx.example.com\r\n"
        "Diagnostic-Code: SMTP; 550 5.1.1 User unknown\r\n"
        "Last-Attempt-Date: Wed, 2 Dec 2026 12:00:01 GMT\r\n"
        "\r\n--S1\r\nContent-Type: message/rfc822\r\n\r\n"
        + original_headers(copy)
        + "\r\nBananas are in season.\r\n\r\n--S1--\r\n"
    )


def qmail(copy):
    return (
        "From: MAILER-DAEMON@mail.example.net\r\n"
        f"To: {make_bounce_address(copy.pk, BOUNCE_ADDRESS)}\r\n"
        "Subject: failure notice\r\n"
        "\r\n"
        "Hi. This is the qmail-send program at mail.example.net.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
        "\r\n"
        f"<{ADDRESS}>:\r\n"
        "192.0.2.7 does not like recipient.\r\n"
        "Remote host said: 550 5.1.1 No such user\r\n"
        "Giving up on 192.0.2.7.\r\n"
        "\r\n"
        "--- Below this line is a copy of the message.\r\n"
        "\r\n" + original_headers(copy) + "\r\nBananas are in season.\r\n"
    )


def exchange(copy):
    return (
        "From: Microsoft Outlook <postmaster@contoso.onmicrosoft.com>\r\n"
        f"To: <{BOUNCE_ADDRESS}>\r\n"
        "Subject: Undeliverable: Banana news\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="X1"\r\n'
        "\r\n--X1\r\n"
        'Content-Type: multipart/alternative; boundary="X2"\r\n\r\n'
        "--X2\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "Your message to reader@example.com couldn't be delivered.\r\n"
        "reader wasn't found at example.com.\r\n"
        "--X2\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
        "<html><body><p>Your message to reader@example.com couldn't be delivered.</p>"
        "</body></html>\r\n--X2--\r\n"
        "\r\n--X1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.com\r\n"
        "Received-From-MTA: dns;lists.example.com\r\n\r\n"
        f"Original-Recipient: rfc822;{ADDRESS}\r\n"
        f"Final-Recipient: rfc822;{ADDRESS}\r\n"
        "Action: failed\r\nStatus: 5.1.10\r\n"
        "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
        "Recipient not found by SMTP address lookup\r\n"
        "\r\n--X1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        + original_headers(copy)
        + "\r\n--X1--\r\n"
    )


def gmail(copy):
    return (
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        f"To: {make_bounce_address(copy.pk, BOUNCE_ADDRESS)}\r\n"
        "Subject: Delivery Status Notification (Failure)\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="G1"\r\n'
        "\r\n--G1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
        "** Address not found **\r\n\r\n"
        f"Your message wasn't delivered to {ADDRESS} because the address couldn't be "
        "found, or is unable to receive mail.\r\n\r\n"
        "The response from the remote server was:\r\n"
        "550 5.1.1 The email account that you tried to reach does not exist.\r\n"
        "\r\n--G1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; googlemail.com\r\n"
        "Arrival-Date: Wed, 02 Dec 2026 04:00:00 -0800 (PST)\r\n\r\n"
        f"Final-Recipient: rfc822; {ADDRESS}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Remote-MTA: dns; gmail-smtp-in.l.google.com. (2607:f8b0:4864:20::1a)\r\n"
        "Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach "
        "does not exist.\r\n"
        "\r\n--G1\r\nContent-Type: message/rfc822\r\n\r\n"
        + original_headers(copy)
        + "\r\nBananas are in season.\r\n\r\n--G1--\r\n"
    )


def yahoo(copy):
    return (
        "From: MAILER-DAEMON@yahoo.com\r\n"
        f"To: {BOUNCE_ADDRESS}\r\n"
        "Subject: Failure Notice\r\n"
        "\r\n"
        "Sorry, we were unable to deliver your message to the following address.\r\n"
        "\r\n"
        f"<{ADDRESS}>:\r\n"
        "554: delivery error: dd This user doesn't have a yahoo.com account "
        f"({ADDRESS}) [0] - mta1234.mail.ne1.yahoo.com\r\n"
        "\r\n"
        "--- Below this line is a copy of the message.\r\n"
        "\r\n" + original_headers(copy) + "\r\nBananas are in season.\r\n"
    )


def postfix(copy):
    headers = dict(line.split(": ", 1) for line in original_headers(copy).strip().split("\r\n"))
    return postfix_report(ADDRESS, headers, BOUNCE_ADDRESS).decode()


HARD_BOUNCES = [postfix, exim, sendmail, qmail, exchange, gmail, yahoo]


@pytest.mark.parametrize("report", HARD_BOUNCES, ids=lambda report: report.__name__)
def test_it_reads_each_servers_hard_bounce(monkeypatch, copy, report):
    assert "1 failure(s) recorded" in pipe(monkeypatch, report(copy).encode())

    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.BOUNCED
    assert copy.subscriber.status == "bounced"
    event = DeliveryEvent.objects.get()
    assert event.kind == DeliveryEvent.Kind.HARD_BOUNCE
    assert event.source == "process_bounce"


def test_a_postfix_delay_warning_is_a_soft_bounce(monkeypatch, copy):
    warning = postfix(copy).replace("Action: failed", "Action: delayed")
    warning = warning.replace("Status: 5.1.1", "Status: 4.4.1")

    pipe(monkeypatch, warning.encode())

    assert DeliveryEvent.objects.get().kind == DeliveryEvent.Kind.SOFT_BOUNCE
    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.SENT


def test_an_out_of_office_reply_is_not_a_bounce(monkeypatch, copy):
    reply = (
        f"From: Reader <{ADDRESS}>\r\n"
        f"To: {make_bounce_address(copy.pk, BOUNCE_ADDRESS)}\r\n"
        "Subject: Automatic reply: Banana news\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "X-Autoreply: yes\r\n"
        "\r\n"
        "I am out of the office until 7 December with limited access to e-mail.\r\n"
    )

    assert "0 failure(s) recorded" in pipe(monkeypatch, reply.encode())
    assert not DeliveryEvent.objects.exists()
    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.SENT
