"""What subscribers and visitors see: the list's own identity, an embeddable form, the
public archive with its feed, and the "view in your browser" link."""

import re
from email import policy
from email.parser import BytesParser

import feedparser
import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from mailinglist.models import Message, Subscriber
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from mailinglist.tests.harness import confirmation_link

pytestmark = pytest.mark.django_db


def subscribe_url(mailing_list):
    return reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk})


def archive_url(mailing_list):
    return reverse("mailinglist:archive", kwargs={"mailinglist_pk": mailing_list.pk})


def test_subscriber_pages_show_the_list_not_the_owners_navigation(client):
    mailing_list = MailingListFactory(
        name="Banana Facts",
        description="Facts about bananas, weekly.",
        thank_you_text="See you **soon**.",
    )
    client.force_login(mailing_list.owner)

    form = client.get(subscribe_url(mailing_list)).content.decode()
    thanks = client.post(subscribe_url(mailing_list), {"email": "a@example.com"}, follow=True)

    assert "Facts about bananas, weekly." in form
    for page in (form, thanks.content.decode()):
        assert "Banana Facts" in page
        assert "Your lists" not in page
        assert "Log out" not in page
    assert b"See you <strong>soon</strong>." in thanks.content


def test_a_form_on_another_site_subscribes_without_a_csrf_token(
    django_capture_on_commit_callbacks,
):
    mailing_list = MailingListFactory(subscribed_url="https://bananas.example/thanks")
    elsewhere = Client(enforce_csrf_checks=True)

    with django_capture_on_commit_callbacks(execute=True):
        answer = elsewhere.post(
            subscribe_url(mailing_list),
            {"email": "fan@example.com", "website": ""},
            HTTP_ORIGIN="https://bananas.example",
        )

    assert answer.status_code == 302
    assert answer.url == "https://bananas.example/thanks"
    assert Subscriber.objects.get().email == "fan@example.com"
    [confirmation] = mail.outbox
    assert confirmation.to == ["fan@example.com"]


def test_the_manage_page_offers_the_form_to_embed(client):
    mailing_list = MailingListFactory()
    client.force_login(mailing_list.owner)

    page = client.get(mailing_list.get_absolute_url()).content.decode()

    snippet = re.search(r'<pre [^>]*id="embed-snippet"><code>(.*?)</code></pre>', page, re.S)[1]
    assert f'action="http://testserver{subscribe_url(mailing_list)}"' in snippet.replace(
        "&quot;", '"'
    ).replace("&lt;", "<").replace("&gt;", ">")


def test_confirming_can_lead_to_the_owners_own_page(client, django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory(confirmed_url="https://bananas.example/welcome")
    with django_capture_on_commit_callbacks(execute=True):
        SubscriberFactory(mailing_list=mailing_list, confirmed=False, email="new@example.com")
    confirmation = BytesParser(policy=policy.default).parsebytes(
        mail.outbox[0].message().as_bytes()
    )
    link = confirmation_link(confirmation, "http://testserver")

    answer = client.post(link.removeprefix("http://testserver"))

    assert answer.status_code == 302
    assert answer.url == "https://bananas.example/welcome"
    assert Subscriber.objects.get().confirmed


def test_the_archive_is_off_until_the_owner_turns_it_on(client):
    mailing_list = MailingListFactory()
    message = MessageFactory(mailing_list=mailing_list)

    assert client.get(archive_url(mailing_list)).status_code == 404
    assert client.get(archive_url(mailing_list) + "/feed").status_code == 404
    assert client.get(f"{archive_url(mailing_list)}/{message.pk}").status_code == 404


def test_the_archive_lists_what_went_out_newest_first_with_a_feed(client):
    mailing_list = MailingListFactory(name="Banana Facts", archive=True)
    older = MessageFactory(mailing_list=mailing_list, subject="Older", body="*old*")
    newer = MessageFactory(mailing_list=mailing_list, subject="Newer")
    MessageFactory(mailing_list=mailing_list, subject="A draft", status=Message.Status.DRAFT)
    MessageFactory(mailing_list=mailing_list, subject="Called off").cancel()

    page = client.get(archive_url(mailing_list)).content.decode()
    feed = feedparser.parse(client.get(archive_url(mailing_list) + "/feed").content)
    message_page = client.get(f"{archive_url(mailing_list)}/{older.pk}")

    assert re.findall(r">(Older|Newer|A draft|Called off)</a>", page) == ["Newer", "Older"]
    assert not feed.bozo
    assert feed.feed.title == "Banana Facts"
    assert [entry.title for entry in feed.entries] == ["Newer", "Older"]
    assert feed.entries[0].link == f"http://testserver{archive_url(mailing_list)}/{newer.pk}"
    assert "<em>old</em>" in feed.entries[1].summary
    assert b"<em>old</em>" in message_page.content


@pytest.mark.parametrize("archive", [True, False])
def test_every_copy_links_to_its_message_in_a_browser(
    client, archive, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory(archive=archive)
    SubscriberFactory(mailing_list=mailing_list, email="reader@example.com")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        MessageFactory(mailing_list=mailing_list, subject="Ripe", body="Bananas are **in**")

    [email] = mail.outbox
    link = re.search(r"View it in your browser: (\S+)", email.body)[1]
    page = client.get(link.removeprefix("http://testserver"))

    assert page.status_code == 200
    assert b"Bananas are <strong>in</strong>" in page.content
    assert link in email.alternatives[0][0]
    assert ("/archive/" in link) is archive


def test_a_tampered_view_in_browser_link_answers_404(client, django_capture_on_commit_callbacks):
    message = MessageFactory()
    token = reverse("mailinglist:view_in_browser", kwargs={"token": "x"}).rsplit("/", 1)[0]

    assert client.get(f"{token}/{message.pk.hex}:forged").status_code == 404
    assert client.get(f"{token}/not-a-token").status_code == 404
