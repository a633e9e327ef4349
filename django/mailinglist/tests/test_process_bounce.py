"""`manage.py process_bounce`: one mailed report on stdin, as a mail server pipes it."""

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


@pytest.fixture(autouse=True)
def _bounce_address(settings):
    settings.MAIL_APE_BOUNCE_ADDRESS = BOUNCE_ADDRESS


@pytest.fixture
def copy(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()
    SubscriberFactory(mailing_list=mailing_list, email="reader@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        message = MessageFactory(mailing_list=mailing_list)
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


def test_an_auto_reply_is_not_a_bounce(monkeypatch, copy):
    auto_reply = (
        b"From: reader@example.com\r\nTo: bounces@lists.example.com\r\n"
        b"Subject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\n"
        b"I am away until Monday and will read your message then.\r\n"
    )

    assert "0 failure(s) recorded" in pipe(monkeypatch, auto_reply)
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
