import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from mailinglist.delivery import sending
from mailinglist.models import Subscriber, SubscriberMessage
from mailinglist.tests.factories import MessageFactory, SubscriberFactory, pending_deliveries_for
from mailinglist.tokens import unsubscribe_token_generator

pytestmark = pytest.mark.django_db


def unsubscribe_url(subscriber):
    token = unsubscribe_token_generator.make_token(subscriber)
    return reverse("mailinglist:unsubscribe", kwargs={"token": token})


def test_following_the_link_shows_a_button_and_changes_nothing(client):
    subscriber = SubscriberFactory(mailing_list__name="Banana Facts")

    response = client.get(unsubscribe_url(subscriber))

    assert response.status_code == 200
    assert b"Unsubscribe from Banana Facts" in response.content
    assert Subscriber.objects.get(pk=subscriber.pk).confirmed


def test_pressing_the_button_unsubscribes(client):
    subscriber = SubscriberFactory()

    response = client.post(unsubscribe_url(subscriber))

    assert response.status_code == 200
    assert b"You're unsubscribed" in response.content
    subscriber.refresh_from_db()
    assert not subscriber.confirmed
    assert subscriber.unsubscribed is not None


def test_a_mail_client_unsubscribes_with_one_cookieless_post():
    subscriber = SubscriberFactory()
    mail_client = Client(enforce_csrf_checks=True)

    response = mail_client.post(
        unsubscribe_url(subscriber),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert 200 <= response.status_code < 300
    assert not Subscriber.objects.get(pk=subscriber.pk).confirmed


def test_it_rejects_a_tampered_link(client):
    subscriber = SubscriberFactory()
    url = unsubscribe_url(subscriber)

    response = client.post(url[:-2] + ("00" if not url.endswith("00") else "11"))

    assert response.status_code == 400
    assert Subscriber.objects.get(pk=subscriber.pk).confirmed


def test_an_unsubscribed_address_gets_no_further_copies(django_capture_on_commit_callbacks):
    staying = SubscriberFactory(email="stay@example.com")
    leaving = SubscriberFactory(email="leave@example.com", mailing_list=staying.mailing_list)
    message = MessageFactory(mailing_list=staying.mailing_list)
    pending_deliveries_for(message)

    leaving.unsubscribe()
    mail.outbox.clear()
    sending.deliver(message, deadline=float("inf"))

    assert [email.to for email in mail.outbox] == [["stay@example.com"]]
    statuses = dict(
        SubscriberMessage.objects.filter(message=message).values_list("subscriber__email", "status")
    )
    assert statuses == {"stay@example.com": "sent", "leave@example.com": "skipped"}


def test_subscribing_again_after_unsubscribing_asks_for_confirmation_again(
    client, django_capture_on_commit_callbacks
):
    subscriber = SubscriberFactory(email="back@example.com")
    subscriber.unsubscribe()
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": subscriber.mailing_list.pk}),
            {"email": "back@example.com"},
        )

    assert [email.to for email in mail.outbox] == [["back@example.com"]]
    assert Subscriber.objects.get(pk=subscriber.pk).status == "unsubscribed"
