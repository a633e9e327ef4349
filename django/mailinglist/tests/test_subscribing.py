import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from mailinglist.models import Subscriber
from mailinglist.tests.factories import MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def subscribe(client, mailing_list, email, capture):
    with capture(execute=True):
        return client.post(
            reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk}),
            {"email": email},
        )


def link_in(text):
    return re.search(r"http://testserver(/mailinglist/subscribe/confirmation/\S+)", text).group(1)


def test_it_thanks_the_visitor_and_sends_a_confirmation_naming_the_list(
    client, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory(name="Banana Facts")

    response = subscribe(
        client, mailing_list, "ape@example.com", django_capture_on_commit_callbacks
    )

    assert response.status_code == 302
    assert response.url == reverse(
        "mailinglist:subscriber_thankyou", kwargs={"pk": mailing_list.pk}
    )
    assert "Banana Facts" in client.get(response.url).content.decode()
    [email] = mail.outbox
    assert email.to == ["ape@example.com"]
    assert "Banana Facts" in email.subject
    assert "Banana Facts" in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html"
    assert "Banana Facts" in html
    assert link_in(email.body) in html


def test_following_the_link_shows_a_button_and_pressing_it_confirms(
    client, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory()
    subscribe(client, mailing_list, "ape@example.com", django_capture_on_commit_callbacks)
    link = link_in(mail.outbox[0].body)

    page = client.get(link)
    assert page.status_code == 200
    assert b"Confirm my subscription" in page.content
    assert not Subscriber.objects.get(email="ape@example.com").confirmed

    done = client.post(link)
    assert done.status_code == 200
    assert Subscriber.objects.get(email="ape@example.com").confirmed


def test_it_rejects_a_tampered_confirmation_link(client, django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()
    subscribe(client, mailing_list, "ape@example.com", django_capture_on_commit_callbacks)
    link = link_in(mail.outbox[0].body)
    tampered = link[:-1] + ("0" if link[-1] != "0" else "1")

    assert client.get(tampered).status_code == 400
    assert client.post(tampered).status_code == 400
    assert not Subscriber.objects.get(email="ape@example.com").confirmed


def test_it_rejects_an_invalid_address_with_a_form_error(client):
    mailing_list = MailingListFactory()

    response = client.post(
        reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk}),
        {"email": "not an address"},
    )

    assert response.status_code == 200
    assert b"Enter a valid email address" in response.content
    assert not Subscriber.objects.exists()


def test_a_second_subscription_looks_the_same_and_sends_no_mail_to_a_confirmed_subscriber(
    client, django_capture_on_commit_callbacks
):
    subscriber = SubscriberFactory(email="Ape@Example.com", confirmed=True)

    response = subscribe(
        client, subscriber.mailing_list, "ape@example.com", django_capture_on_commit_callbacks
    )

    assert response.status_code == 302
    assert mail.outbox == []
    assert Subscriber.objects.filter(mailing_list=subscriber.mailing_list).count() == 1


def test_an_unknown_list_answers_404(client):
    url = reverse(
        "mailinglist:subscribe", kwargs={"mailinglist_pk": "00000000-0000-0000-0000-000000000000"}
    )
    assert client.get(url).status_code == 404
    assert client.post(url, {"email": "ape@example.com"}).status_code == 404


def test_repeated_subscriptions_send_one_confirmation_every_few_minutes(
    client, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory()

    for _ in range(3):
        subscribe(client, mailing_list, "ape@example.com", django_capture_on_commit_callbacks)
    assert [email.to for email in mail.outbox] == [["ape@example.com"]]

    subscriber = Subscriber.objects.get(email="ape@example.com")
    cache.delete(f"confirmation-requested:{subscriber.pk}")
    subscribe(client, mailing_list, "ape@example.com", django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 2
