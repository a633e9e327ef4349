"""A list's language: chosen on its settings page, spoken by its public pages and by
every e-mail its subscribers get (rendered with that language active)."""

import re
from email import policy
from email.parser import BytesParser

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import translation

from mailinglist import emails
from mailinglist.models import MailingList, SubscriberMessage
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from mailinglist.tokens import confirmation_token_generator, unsubscribe_token_generator
from user.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

CHINESE = '<html lang="zh-hans">'


@pytest.fixture
def chinese_list():
    return MailingListFactory(name="香蕉新闻", language="zh-hans", archive=True)


def html_part(email):
    return email.alternatives[0][0]


def test_the_owner_chooses_the_language_on_the_settings_page(client):
    mailing_list = MailingListFactory(name="Banana Facts")
    client.login(username=mailing_list.owner.username, password=PASSWORD)
    url = reverse("mailinglist:mailinglist_settings", kwargs={"pk": mailing_list.pk})

    assert "简体中文" in client.get(url).content.decode()
    client.post(url, {"name": "Banana Facts", "language": "zh-hans"})

    assert MailingList.objects.get(pk=mailing_list.pk).language == "zh-hans"
    refused = client.post(url, {"name": "Banana Facts", "language": "klingon"})
    assert refused.status_code == 200
    assert MailingList.objects.get(pk=mailing_list.pk).language == "zh-hans"
    for without_a_language in ({"name": "Bananas"}, {"name": "Bananas", "language": ""}):
        client.post(url, without_a_language)
        assert MailingList.objects.get(pk=mailing_list.pk).language == "zh-hans"
    assert MailingList.objects.get(pk=mailing_list.pk).name == "Bananas"


def test_a_new_list_speaks_english():
    assert MailingListFactory().language == "en"


def test_every_public_page_of_the_list_is_in_its_language(
    client, chinese_list, django_capture_on_commit_callbacks
):
    subscriber = SubscriberFactory(mailing_list=chinese_list, confirmed=False)
    message = MessageFactory(mailing_list=chinese_list)
    pages = [
        reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": chinese_list.pk}),
        reverse("mailinglist:subscriber_thankyou", kwargs={"pk": chinese_list.pk}),
        reverse("mailinglist:archive", kwargs={"mailinglist_pk": chinese_list.pk}),
        reverse(
            "mailinglist:archived_message",
            kwargs={"mailinglist_pk": chinese_list.pk, "pk": message.pk},
        ),
        reverse(
            "mailinglist:confirm_subscription",
            kwargs={"token": confirmation_token_generator.make_token(subscriber)},
        ),
        reverse(
            "mailinglist:unsubscribe",
            kwargs={"token": unsubscribe_token_generator.make_token(subscriber)},
        ),
        reverse(
            "mailinglist:manage_subscription",
            kwargs={"token": unsubscribe_token_generator.make_token(subscriber)},
        ),
    ]

    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert CHINESE in response.content.decode(), url
    assert translation.get_language() != "zh-hans"


def test_a_page_of_an_english_list_after_a_chinese_one_is_english(client, chinese_list):
    english = MailingListFactory()

    client.get(reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": chinese_list.pk}))
    page = client.get(reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": english.pk}))

    assert '<html lang="en">' in page.content.decode()


def test_the_confirmation_email_is_rendered_in_the_lists_language(
    client, chinese_list, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": chinese_list.pk}),
            {"email": "ape@example.com"},
        )

    [email] = mail.outbox
    assert email.extra_headers["Content-Language"] == "zh-hans"
    assert CHINESE in html_part(email)
    link = re.search(r"http://testserver(/mailinglist/subscribe/confirmation/\S+)", email.body)[1]
    assert CHINESE in client.get(link).content.decode()


@pytest.mark.parametrize("shared", [True, False], ids=["shared copy", "rendered alone"])
def test_a_list_message_is_rendered_in_the_lists_language(chinese_list, shared):
    subscriber = SubscriberFactory(mailing_list=chinese_list)
    message = MessageFactory(mailing_list=chinese_list)
    row = SubscriberMessage.objects.create(message=message, subscriber=subscriber)
    mailer = emails.ListMessageMailer(message)
    if not shared:
        mailer.shared_copy = None

    email = mailer.build(row)

    parsed = BytesParser(policy=policy.default).parsebytes(email.message().as_bytes(linesep="\r\n"))
    assert isinstance(email, emails.PersonalisedEmail) is shared
    assert parsed["Content-Language"] == "zh-hans"
    assert CHINESE in parsed.get_body(preferencelist=("html",)).get_content()
    assert translation.get_language() != "zh-hans"


def test_copies_to_an_english_list_stay_english(chinese_list):
    english = SubscriberFactory()
    message = MessageFactory(mailing_list=english.mailing_list)
    row = SubscriberMessage.objects.create(message=message, subscriber=english)

    with translation.override("zh-hans"):
        email = emails.ListMessageMailer(message).build(row)

    assert '<html lang="en">' in html_part(email)
    assert email.extra_headers["Content-Language"] == "en"
