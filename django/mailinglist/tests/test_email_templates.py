"""What subscribers read: the list's name and links that work from a mail client."""

import re
from email import policy
from email.parser import BytesParser
from email.utils import parseaddr
from urllib.parse import urlsplit

import pytest
from django.core import mail

from mailinglist import emails
from mailinglist.models import SubscriberMessage
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from mailinglist.tokens import unsubscribe_token_generator

pytestmark = pytest.mark.django_db

LINK_DOMAIN = "https://lists.example.com:8443"


@pytest.fixture(autouse=True)
def _link_domain(settings):
    settings.MAILING_LIST_LINK_DOMAIN = LINK_DOMAIN


def links_in(text):
    return re.findall(r"""https?://[^\s"'<>]+""", text)


def assert_absolute_with_scheme_and_port(links):
    assert links
    for link in links:
        parts = urlsplit(link)
        assert (parts.scheme, parts.hostname, parts.port) == ("https", "lists.example.com", 8443)


def test_the_confirmation_email_names_the_list_and_has_absolute_links():
    subscriber = SubscriberFactory(
        confirmed=False, mailing_list=MailingListFactory(name="Banana <Facts>")
    )
    mail.outbox.clear()

    emails.send_confirmation_email(subscriber)

    [email] = mail.outbox
    html = email.alternatives[0][0]
    assert "Banana <Facts>" in email.subject
    assert "Banana <Facts>" in email.body
    assert "Banana &lt;Facts&gt;" in html
    assert "/mailinglist/subscribe/confirmation/" in email.body
    assert_absolute_with_scheme_and_port(links_in(email.body))
    assert_absolute_with_scheme_and_port(links_in(html))


def test_a_list_message_names_the_list_and_carries_an_absolute_unsubscribe_link():
    mailing_list = MailingListFactory(name="Banana Facts")
    subscriber = SubscriberFactory(mailing_list=mailing_list)
    message = MessageFactory(mailing_list=mailing_list, body="Hi **there**")
    row = SubscriberMessage.objects.create(message=message, subscriber=subscriber)

    email = emails.ListMessageMailer(message).build(row)

    html = email.alternatives[0][0]
    assert "Banana Facts" in email.body
    assert "Banana Facts" in html
    assert "<strong>there</strong>" in html
    assert "/mailinglist/unsubscribe/" in email.body
    assert_absolute_with_scheme_and_port(links_in(email.body))
    assert_absolute_with_scheme_and_port(links_in(html))
    [unsubscribe] = [link for link in links_in(email.body) if "/mailinglist/unsubscribe/" in link]
    assert email.extra_headers["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert email.extra_headers["Message-ID"] == f"<{row.pk}@lists.example.com>"


def test_the_context_always_provides_subscriber_list_and_unsubscribe_link():
    subscriber = SubscriberFactory()

    context = emails.EmailTemplateContext(subscriber)

    assert context["subscriber"] == subscriber
    assert context["mailing_list"] == subscriber.mailing_list
    assert context["unsubscribe_link"].startswith(f"{LINK_DOMAIN}/mailinglist/unsubscribe/")


@pytest.mark.parametrize("name", ["Bananen für alle", 'Banana "Facts", daily'])
def test_the_list_id_keeps_the_id_outside_an_encoded_name(name):
    mailing_list = MailingListFactory(name=name)
    subscriber = SubscriberFactory(mailing_list=mailing_list)
    message = MessageFactory(mailing_list=mailing_list)
    row = SubscriberMessage.objects.create(message=message, subscriber=subscriber)

    raw = emails.ListMessageMailer(message).build(row).message().as_bytes()

    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    folded = re.search(rb"^List-Id:(.*(?:\r?\n[ \t].*)*)", raw, re.MULTILINE)[1]
    header = re.sub(rb"\r?\n[ \t]", b" ", folded).strip()
    assert header.endswith(f" <{mailing_list.pk}.lists.example.com>".encode())
    assert b"=?" not in header.rpartition(b" <")[2]
    assert parseaddr(parsed["List-Id"]) == (name, f"{mailing_list.pk}.lists.example.com")


def test_every_email_carries_an_absolute_manage_link_with_the_unsubscribe_token():
    subscriber = SubscriberFactory(confirmed=False)
    message = MessageFactory(mailing_list=subscriber.mailing_list)
    row = SubscriberMessage.objects.create(message=message, subscriber=subscriber)
    token = emails.unsubscribe_link(subscriber).rpartition("/")[2]

    for email in (
        emails.confirmation_email(subscriber),
        emails.ListMessageMailer(message).build(row),
    ):
        manage = f"{LINK_DOMAIN}/mailinglist/subscription/{token}"
        assert f"Manage your subscription: {manage}" in email.body
        assert f'<a href="{manage}">Manage your subscription</a>' in email.alternatives[0][0]


def test_a_shared_copy_costs_one_token_and_no_query(monkeypatch, django_assert_num_queries):
    subscriber = SubscriberFactory()
    message = MessageFactory(mailing_list=subscriber.mailing_list)
    SubscriberMessage.objects.create(message=message, subscriber=subscriber)
    row = SubscriberMessage.objects.select_related("subscriber").get(message=message)
    mailer = emails.ListMessageMailer(message)
    made = []
    make_token = unsubscribe_token_generator.make_token
    monkeypatch.setattr(
        unsubscribe_token_generator,
        "make_token",
        lambda subscriber: made.append(subscriber) or make_token(subscriber),
    )

    with django_assert_num_queries(0):
        copy = mailer.build(row)

    assert isinstance(copy, emails.PersonalisedEmail)
    assert made == [subscriber]
