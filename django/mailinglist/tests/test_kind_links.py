"""Links from e-mails followed a second time, or late: they say what happened instead of
failing, and an expired confirmation link offers a new e-mail."""

import re
import time

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from mailinglist.models import Subscriber
from mailinglist.tests.factories import MailingListFactory, SubscriberFactory
from mailinglist.tokens import confirmation_token_generator, unsubscribe_token_generator

pytestmark = pytest.mark.django_db


def confirmation_link_in(email):
    return re.search(r"http://testserver(/mailinglist/subscribe/confirmation/\S+)", email.body)[1]


def confirmation_url(token):
    return reverse("mailinglist:confirm_subscription", kwargs={"token": token})


def tampered(url):
    return url[:-1] + ("0" if url[-1] != "0" else "1")


def unsubscribe_url(subscriber):
    token = unsubscribe_token_generator.make_token(subscriber)
    return reverse("mailinglist:unsubscribe", kwargs={"token": token})


@pytest.fixture
def confirmation_email(client, django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory(name="Banana Facts")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk}),
            {"email": "ape@example.com"},
        )
    [email] = mail.outbox
    mail.outbox.clear()
    return email


def test_a_confirmation_link_followed_again_says_you_are_already_subscribed(
    client, confirmation_email, django_capture_on_commit_callbacks
):
    link = confirmation_link_in(confirmation_email)
    assert client.post(link).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        again = client.get(link)
        pressed_again = client.post(link)

    for response in (again, pressed_again):
        assert response.status_code == 200
        assert "You're already subscribed to Banana Facts" in response.content.decode()
    assert Subscriber.objects.get(email="ape@example.com").confirmed
    assert mail.outbox == []


def test_an_unsubscribe_link_used_twice_says_you_are_unsubscribed_and_changes_nothing(client):
    subscriber = SubscriberFactory(mailing_list__name="Banana Facts")
    url = unsubscribe_url(subscriber)
    client.post(url)
    first_time = Subscriber.objects.get(pk=subscriber.pk).unsubscribed

    again, pressed_again = client.get(url), client.post(url)

    for response in (again, pressed_again):
        assert response.status_code == 200
        assert "You're unsubscribed from Banana Facts" in response.content.decode()
        assert "<form" not in response.content.decode()
    assert Subscriber.objects.get(pk=subscriber.pk).unsubscribed == first_time
    manage = re.search(r'href="(/mailinglist/subscription/[^"]+)"', again.content.decode())[1]
    manage_page = client.get(manage).content.decode()
    assert "Your subscriptions" in manage_page
    assert "Banana Facts" in manage_page


def test_an_expired_confirmation_link_sends_a_new_email_whose_link_works(
    client, settings, confirmation_email, django_capture_on_commit_callbacks
):
    settings.MAIL_APE_CONFIRMATION_MAX_AGE = 3600
    subscriber = Subscriber.objects.get(email="ape@example.com")
    expired = confirmation_url(
        confirmation_token_generator.make_token(subscriber, now=time.time() - 7200)
    )
    # The first e-mail went out long enough ago to allow another.
    cache.delete(f"confirmation-requested:{subscriber.pk}")

    page = client.get(expired)
    assert page.status_code == 200
    assert "This confirmation link has expired" in page.content.decode()
    assert "Send me a new confirmation e-mail" in page.content.decode()
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(expired)

    assert "Sent: a new confirmation e-mail is on its way to ape@example.com" in (
        sent.content.decode()
    )
    [email] = mail.outbox
    assert email.to == ["ape@example.com"]
    new_link = confirmation_link_in(email)
    assert "Confirm my subscription" in client.get(new_link).content.decode()
    client.post(new_link)
    assert Subscriber.objects.get(pk=subscriber.pk).confirmed
    assert "You're already subscribed to Banana Facts" in client.get(expired).content.decode()


def test_asking_again_too_soon_says_please_wait_and_sends_nothing(
    client, settings, confirmation_email, django_capture_on_commit_callbacks
):
    settings.MAIL_APE_CONFIRMATION_MAX_AGE = 3600
    subscriber = Subscriber.objects.get(email="ape@example.com")
    expired = confirmation_url(
        confirmation_token_generator.make_token(subscriber, now=time.time() - 7200)
    )

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(expired)

    assert answer.status_code == 200
    assert "Please wait a few minutes" in answer.content.decode()
    assert mail.outbox == []


def test_the_address_limit_of_confirmation_emails_holds_for_new_ones_too(
    client, settings, confirmation_email, django_capture_on_commit_callbacks
):
    settings.MAIL_APE_CONFIRMATION_MAX_AGE = 3600
    settings.MAIL_APE_CONFIRMATIONS_PER_ADDRESS = "1/hour"
    subscriber = Subscriber.objects.get(email="ape@example.com")
    expired = confirmation_url(
        confirmation_token_generator.make_token(subscriber, now=time.time() - 7200)
    )
    cache.delete(f"confirmation-requested:{subscriber.pk}")

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(expired)

    assert "Please wait a few minutes" in answer.content.decode()
    assert mail.outbox == []


@pytest.mark.parametrize(
    "link",
    [
        lambda subscriber: tampered(
            confirmation_url(confirmation_token_generator.make_token(subscriber))
        ),
        lambda subscriber: tampered(unsubscribe_url(subscriber)),
        lambda subscriber: reverse("mailinglist:confirm_subscription", kwargs={"token": "a.b.c"}),
        lambda subscriber: reverse(
            "mailinglist:unsubscribe",
            kwargs={"token": unsubscribe_token_generator.make_token(SubscriberFactory.build())},
        ),
    ],
    ids=["forged confirmation", "forged unsubscribe", "garbage", "unknown subscriber"],
)
def test_a_forged_or_garbled_link_still_answers_the_invalid_link_page(client, link):
    subscriber = SubscriberFactory(confirmed=False)
    url = link(subscriber)

    for response in (client.get(url), client.post(url)):
        assert response.status_code == 400
        assert "This link does not work" in response.content.decode()
    assert Subscriber.objects.get(pk=subscriber.pk).status == "unconfirmed"
