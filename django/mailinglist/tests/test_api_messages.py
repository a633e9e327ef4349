import pytest
from django.core import mail
from django.urls import reverse

from mailinglist.models import Message
from mailinglist.tests.api_helpers import api_client_for
from mailinglist.tests.factories import (
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
    pending_deliveries_for,
)
from user.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def messages_of(mailing_list):
    return reverse("mailinglist:api-message-list", kwargs={"mailing_list_pk": mailing_list.pk})


def detail(message):
    return reverse("mailinglist:api-message-detail", kwargs={"pk": message.pk})


def send(client, mailing_list, body, capture):
    with capture(execute=True):
        return client.post(messages_of(mailing_list), body, format="json")


def test_posting_a_message_sends_it_to_every_confirmed_subscriber(
    django_capture_on_commit_callbacks,
):
    mailing_list = MailingListFactory()
    SubscriberFactory(mailing_list=mailing_list, email="fan@example.com")
    SubscriberFactory(mailing_list=mailing_list, email="maybe@example.com", confirmed=False)
    client = api_client_for(mailing_list.owner)

    response = send(
        client,
        mailing_list,
        {"subject": "Bananas", "body": "They are **ripe**."},
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 201
    message = Message.objects.get()
    assert response.json()["url"] == f"http://testserver{detail(message)}"
    assert response.json()["subject"] == "Bananas"
    assert [email.to for email in mail.outbox] == [["fan@example.com"]]
    progress = client.get(response.json()["url"]).json()
    assert progress["delivery_counts"] == {
        "total": 1,
        "sent": 1,
        "pending": 0,
        "failed": 0,
        "bounced": 0,
        "skipped": 0,
        "suppressed": 0,
        "percent_done": 100,
    }
    assert progress["figures"]["attempted"] == progress["figures"]["delivered"] == 1
    assert progress["figures"]["hard_bounced_rate"] == 0
    assert progress["status"] == "finished"
    assert progress["started"] is not None
    assert progress["finished"] is not None


def test_a_message_waiting_to_go_out_shows_as_pending(django_capture_on_commit_callbacks):
    subscriber = SubscriberFactory()
    with django_capture_on_commit_callbacks(execute=False):
        message = MessageFactory(mailing_list=subscriber.mailing_list)
    pending_deliveries_for(message)

    body = api_client_for(subscriber.mailing_list.owner).get(detail(message)).json()

    assert body["delivery_counts"]["pending"] == 1
    assert body["delivery_counts"]["sent"] == 0
    assert body["status"] == "sending"
    assert body["finished"] is None


def test_the_list_shows_its_messages_newest_first():
    mailing_list = MailingListFactory()
    MessageFactory(mailing_list=mailing_list, subject="Older")
    MessageFactory(mailing_list=mailing_list, subject="Newer")
    MessageFactory(mailing_list=MailingListFactory(owner=mailing_list.owner), subject="Elsewhere")

    body = api_client_for(mailing_list.owner).get(messages_of(mailing_list)).json()

    assert [item["subject"] for item in body] == ["Newer", "Older"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "Hi\r\nBcc: everyone@example.com", "body": "x"}, "subject"),
        ({"subject": "x" * 141, "body": "x"}, "subject"),
        ({"body": "x"}, "subject"),
        ({"subject": "Hi"}, "body"),
        ({"subject": "Hi", "body": ["not", "text"]}, "body"),
    ],
)
def test_it_names_the_field_that_is_wrong_and_sends_nothing(
    body, field, django_capture_on_commit_callbacks
):
    subscriber = SubscriberFactory()

    response = send(
        api_client_for(subscriber.mailing_list.owner),
        subscriber.mailing_list,
        body,
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 400
    assert field in response.json()
    assert not Message.objects.exists()
    assert mail.outbox == []


def test_it_sends_nothing_to_another_users_list(django_capture_on_commit_callbacks):
    subscriber = SubscriberFactory()

    response = send(
        api_client_for(UserFactory()),
        subscriber.mailing_list,
        {"subject": "Spam", "body": "Buy now"},
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 404
    assert not Message.objects.exists()
    assert mail.outbox == []


def test_it_hides_another_users_messages():
    message = MessageFactory(subject="Private plans")
    stranger = api_client_for(UserFactory())

    listed = stranger.get(messages_of(message.mailing_list))
    shown = stranger.get(detail(message))

    assert listed.status_code == 404
    assert shown.status_code == 404
    assert "Private plans" not in listed.content.decode() + shown.content.decode()


def test_a_sent_message_cannot_be_edited_or_deleted():
    message = MessageFactory(subject="As sent")
    client = api_client_for(message.mailing_list.owner)

    edits = [
        client.put(detail(message), {"subject": "Rewritten", "body": "x"}, format="json"),
        client.patch(detail(message), {"subject": "Rewritten"}, format="json"),
        client.delete(detail(message)),
    ]

    assert [response.status_code for response in edits] == [409, 409, 405]
    message.refresh_from_db()
    assert message.subject == "As sent"
