"""Subscribe, confirm and send through a real Celery worker, Redis and SMTP server."""

import http.cookiejar
import re
import urllib.parse
import urllib.request

import pytest
from django.urls import reverse

from mailinglist.models import Message, Subscriber, SubscriberMessage
from mailinglist.tests.factories import MailingListFactory, SubscriberFactory
from mailinglist.tests.harness import confirmation_link, wait_until

pytestmark = pytest.mark.slow


class Browserless:
    """Just enough of a browser for forms: cookies, CSRF tokens, redirects."""

    def __init__(self):
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, url):
        with self.opener.open(url, timeout=10) as response:
            return response.status, response.read().decode()

    def submit(self, url, fields):
        _, page = self.get(url)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        request = urllib.request.Request(url, data=data, headers={"Referer": url})
        with self.opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()


def test_a_subscriber_confirms_by_email_and_gets_the_message_once(
    live_server, smtp_sink, start_celery_worker
):
    start_celery_worker(smtp_sink.port, link_domain=live_server.url)
    mailing_list = MailingListFactory(name="Banana Facts")
    SubscriberFactory(mailing_list=mailing_list, email="old@example.com", confirmed=True)
    SubscriberFactory(mailing_list=mailing_list, email="lurker@example.com", confirmed=False)
    wait_until(lambda: smtp_sink.received_by("lurker@example.com"), message="lurker confirmation")
    visitor = Browserless()

    status, page = visitor.submit(
        live_server.url
        + reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk}),
        {"email": "new@example.com"},
    )
    assert status == 200
    assert "Thank you for subscribing to Banana Facts" in page

    [confirmation] = wait_until(
        lambda: smtp_sink.received_by("new@example.com"), message="the confirmation e-mail"
    )
    assert "Banana Facts" in confirmation["Subject"]
    link = confirmation_link(confirmation, live_server.url)
    status, page = visitor.get(link)
    assert "Confirm my subscription" in page
    assert not Subscriber.objects.get(email="new@example.com").confirmed
    status, page = visitor.submit(link, {})
    assert "You are subscribed to Banana Facts" in page
    assert Subscriber.objects.get(email="new@example.com").confirmed

    message = Message.objects.create(
        mailing_list=mailing_list, subject="Ripe today", body="Bananas are **yellow**."
    )

    wait_until(
        lambda: Message.objects.get(pk=message.pk).status == Message.Status.FINISHED,
        message="the message to finish",
    )
    delivered = [(to, m) for to, m in smtp_sink.received() if m["Subject"] == "Ripe today"]
    assert sorted(to for to, _ in delivered) == ["new@example.com", "old@example.com"]
    message_ids = {m["Message-ID"] for _, m in delivered}
    assert len(message_ids) == 2
    for recipient, email_message in delivered:
        row = SubscriberMessage.objects.get(message=message, subscriber__email=recipient)
        assert row.status == SubscriberMessage.Status.SENT
        assert str(row.pk) in email_message["Message-ID"]
        assert str(mailing_list.pk) in email_message["List-Id"]
        unsubscribe = email_message["List-Unsubscribe"].strip()
        assert unsubscribe.startswith(f"<{live_server.url}/mailinglist/unsubscribe/")
        assert email_message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = email_message.get_body(preferencelist=("html",)).get_content()
        assert "<strong>yellow</strong>" in html
    message.refresh_from_db()
    assert message.started is not None
    assert message.finished >= message.started
