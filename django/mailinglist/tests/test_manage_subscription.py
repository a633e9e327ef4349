"""The "Manage your subscription" link in every e-mail: the lists of the same owner that
the address is on, unsubscribing from one or all, and a copy of what is stored."""

import json
import re
import urllib.request
from types import SimpleNamespace

import pytest
from django.core import mail
from django.urls import reverse

from mailinglist import emails
from mailinglist.models import DeliveryEvent, Message, Subscriber, SubscriberMessage, Suppression
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from mailinglist.tests.harness import wait_until
from mailinglist.tokens import unsubscribe_token_generator
from user.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MANAGE_LINK = re.compile(
    r"Manage your subscription: http://testserver(/mailinglist/subscription/\S+)"
)


@pytest.fixture
def ape():
    """ape@example.com on two lists of one owner (in two letter cases), not on a third of
    theirs, and on another owner's list too."""
    banana = SubscriberFactory(
        email="Ape@Example.com", name="Ape", mailing_list__name="Banana Facts"
    )
    owner = banana.mailing_list.owner
    mango = SubscriberFactory(
        email="ape@example.com",
        mailing_list=MailingListFactory(owner=owner, name="Mango Facts"),
        confirmed=False,
    )
    MailingListFactory(owner=owner, name="Kiwi Facts")
    SubscriberFactory(email="bonobo@example.com", mailing_list=banana.mailing_list)
    elsewhere = SubscriberFactory(
        email="ape@example.com",
        mailing_list=MailingListFactory(owner=UserFactory(), name="Secret Club"),
    )
    mail.outbox.clear()
    return banana, mango, elsewhere


def manage_url(subscriber):
    token = unsubscribe_token_generator.make_token(subscriber)
    return reverse("mailinglist:manage_subscription", kwargs={"token": token})


def status(subscriber):
    return Subscriber.objects.get(pk=subscriber.pk).status


def test_the_footer_link_of_a_delivered_message_opens_the_page_of_this_owners_lists(
    client, ape, settings, smtp_sink, django_capture_on_commit_callbacks
):
    banana, mango, elsewhere = ape
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_sink.port

    with django_capture_on_commit_callbacks(execute=True):
        MessageFactory(mailing_list=banana.mailing_list, subject="Ripe today")

    [delivered] = smtp_sink.received_by("Ape@Example.com")
    text = delivered.get_body(preferencelist=("plain",)).get_content()
    html = delivered.get_body(preferencelist=("html",)).get_content()
    link = MANAGE_LINK.search(text)[1]
    assert f'href="http://testserver{link}"' in html
    page = client.get(link)
    assert page.status_code == 200
    content = page.content.decode()
    assert "Ape@Example.com" in content
    assert "Banana Facts" in content
    assert "Mango Facts" in content
    assert "Waiting for your confirmation" in content
    assert "Kiwi Facts" not in content
    assert "Secret Club" not in content


def test_the_confirmation_email_carries_a_working_manage_link(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        subscriber = SubscriberFactory(confirmed=False, mailing_list__name="Banana Facts")

    [email] = mail.outbox
    link = MANAGE_LINK.search(email.body)[1]
    assert f'href="http://testserver{link}"' in email.alternatives[0][0]
    assert subscriber.email in client.get(link).content.decode()


def test_unsubscribing_from_one_list_leaves_the_others(client, ape, monkeypatch):
    # The page links back with a token made in the same second as the test's own.
    monkeypatch.setattr("mailinglist.tokens.time", SimpleNamespace(time=lambda: 1_800_000_000))
    banana, mango, elsewhere = ape
    token = unsubscribe_token_generator.make_token(banana)

    response = client.post(
        reverse("mailinglist:unsubscribe_from_one_list", kwargs={"token": token, "pk": mango.pk})
    )

    assert response.status_code == 302
    assert response.url == manage_url(banana)
    assert (status(banana), status(mango), status(elsewhere)) == (
        "confirmed",
        "unsubscribed",
        "confirmed",
    )
    assert "Unsubscribed" in client.get(response.url).content.decode()


def test_a_link_unsubscribes_nobody_but_its_own_address_of_its_own_owner(client, ape):
    banana, mango, elsewhere = ape
    bonobo = Subscriber.objects.get(email="bonobo@example.com")
    token = unsubscribe_token_generator.make_token(banana)

    for other in (elsewhere, bonobo):
        response = client.post(
            reverse(
                "mailinglist:unsubscribe_from_one_list", kwargs={"token": token, "pk": other.pk}
            )
        )
        assert response.status_code == 404
        assert status(other) == "confirmed"


def test_unsubscribing_from_all_leaves_another_owners_list_alone(client, ape):
    banana, mango, elsewhere = ape
    token = unsubscribe_token_generator.make_token(mango)

    client.post(reverse("mailinglist:unsubscribe_from_all_lists", kwargs={"token": token}))

    assert (status(banana), status(mango), status(elsewhere)) == (
        "unsubscribed",
        "unsubscribed",
        "confirmed",
    )
    assert status(Subscriber.objects.get(email="bonobo@example.com")) == "confirmed"


def test_the_download_holds_this_owners_rows_and_deliveries_only(
    client, ape, django_capture_on_commit_callbacks
):
    banana, mango, elsewhere = ape
    banana.fields = {"company": "Ape & Sons"}
    banana.save()
    with django_capture_on_commit_callbacks(execute=True):
        MessageFactory(mailing_list=banana.mailing_list, subject="Ripe today")
        MessageFactory(mailing_list=elsewhere.mailing_list, subject="Secret plans")
    delivery = SubscriberMessage.objects.get(subscriber=banana)
    DeliveryEvent.objects.create(
        delivery=delivery,
        message=delivery.message,
        subscriber=banana,
        kind=DeliveryEvent.Kind.SOFT_BOUNCE,
        source="smtp",
        description="452 mailbox full",
    )
    Suppression.suppress(banana.mailing_list.owner_id, "APE@example.com", "manual")
    Suppression.suppress(elsewhere.mailing_list.owner_id, "ape@example.com", "complaint")

    response = client.get(
        reverse(
            "mailinglist:subscription_data",
            kwargs={"token": unsubscribe_token_generator.make_token(banana)},
        )
    )

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    by_list = {row["list"]: row for row in data["subscriptions"]}
    assert set(by_list) == {"Banana Facts", "Mango Facts"}
    assert by_list["Banana Facts"]["email"] == "Ape@Example.com"
    assert by_list["Banana Facts"]["name"] == "Ape"
    assert by_list["Banana Facts"]["fields"] == {"company": "Ape & Sons"}
    assert by_list["Banana Facts"]["status"] == "confirmed"
    assert by_list["Mango Facts"]["status"] == "unconfirmed"
    assert by_list["Banana Facts"]["created"]
    [sent] = by_list["Banana Facts"]["deliveries"]
    assert (sent["message"], sent["state"]) == ("Ripe today", "sent")
    assert sent["sent"]
    assert by_list["Mango Facts"]["deliveries"] == []
    [event] = by_list["Banana Facts"]["delivery_events"]
    assert (event["kind"], event["description"]) == ("soft_bounce", "452 mailbox full")
    assert data["suppression"]["reason"] == "manual"
    assert "Secret" not in response.content.decode()
    assert "complaint" not in response.content.decode()


def test_a_tampered_manage_link_is_refused_everywhere(client, ape):
    banana, mango, elsewhere = ape
    token = unsubscribe_token_generator.make_token(banana)
    token = token[:-1] + ("0" if token[-1] != "0" else "1")

    assert client.get(reverse("mailinglist:manage_subscription", args=[token])).status_code == 400
    assert client.get(reverse("mailinglist:subscription_data", args=[token])).status_code == 400
    refused = client.post(reverse("mailinglist:unsubscribe_from_all_lists", args=[token]))
    assert refused.status_code == 400
    assert status(banana) == "confirmed"


def test_the_page_speaks_the_language_of_the_list_whose_link_was_clicked(client, ape):
    banana, mango, elsewhere = ape
    mango.mailing_list.language = "zh-hans"
    mango.mailing_list.save()

    from_mango = client.get(manage_url(mango)).content.decode()
    from_banana = client.get(manage_url(banana)).content.decode()

    assert '<html lang="zh-hans">' in from_mango
    assert '<html lang="en">' in from_banana


def test_the_shared_copy_puts_the_same_token_in_both_links(ape, monkeypatch):
    monkeypatch.setattr("mailinglist.tokens.time", SimpleNamespace(time=lambda: 1_800_000_000))
    banana, mango, elsewhere = ape
    message = MessageFactory(mailing_list=banana.mailing_list)
    row = SubscriberMessage.objects.create(message=message, subscriber=banana)
    mailer = emails.ListMessageMailer(message)
    assert mailer.shared_copy is not None

    copy = mailer.build(row)

    assert isinstance(copy, emails.PersonalisedEmail)
    token = unsubscribe_token_generator.make_token(banana)
    assert f"/mailinglist/unsubscribe/{token}" in copy.body
    assert f"/mailinglist/subscription/{token}" in copy.body


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_delivers_a_chinese_lists_message_with_a_working_manage_link(
    live_server, smtp_sink, start_celery_worker
):
    start_celery_worker(smtp_sink.port, link_domain=live_server.url)
    subscriber = SubscriberFactory(
        email="ape@example.com", mailing_list__name="香蕉新闻", mailing_list__language="zh-hans"
    )
    Message.objects.create(mailing_list=subscriber.mailing_list, subject="Ripe", body="Hi")

    [delivered] = wait_until(
        lambda: smtp_sink.received_by("ape@example.com"), message="the list message"
    )
    assert delivered["Content-Language"] == "zh-hans"
    html = delivered.get_body(preferencelist=("html",)).get_content()
    assert '<html lang="zh-hans">' in html
    link = re.search(r'href="([^"]+/mailinglist/subscription/[^"]+)"', html)[1]
    assert link.startswith(live_server.url)
    with urllib.request.urlopen(link, timeout=10) as page:
        content = page.read().decode()
    assert '<html lang="zh-hans">' in content
    assert "香蕉新闻" in content
