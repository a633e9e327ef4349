"""The owner's controls on a message being sent: pause, resume, cancel and progress."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from mailinglist.delivery import outcomes
from mailinglist.delivery.claims import claim_batch
from mailinglist.models import Message
from mailinglist.tasks import send_subscriber_messages
from mailinglist.tests.factories import (
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
    pending_deliveries_for,
)
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

CONTROLS = ["pause_message", "resume_message", "cancel_message"]


@pytest.fixture
def message():
    """A message to three readers, each with a pending delivery row, nothing sent yet."""
    mailing_list = MailingListFactory(name="Banana Facts")
    for n in range(3):
        SubscriberFactory(mailing_list=mailing_list, email=f"reader{n}@example.com")
    message = MessageFactory(mailing_list=mailing_list)
    pending_deliveries_for(message)
    mail.outbox.clear()
    return message


@pytest.fixture
def owner_client(client, message):
    client.login(username=message.mailing_list.owner.username, password=PASSWORD)
    return client


def post_control(client, name, message, capture):
    with capture(execute=True):
        return client.post(reverse(f"mailinglist:{name}", kwargs={"pk": message.pk}))


def statuses(message):
    return sorted(message.subscribermessage_set.values_list("status", flat=True))


def test_pause_stops_claiming_and_resume_sends_the_rest(
    owner_client, message, django_capture_on_commit_callbacks
):
    response = post_control(
        owner_client, "pause_message", message, django_capture_on_commit_callbacks
    )

    assert response.status_code == 302
    assert response.url == message.get_absolute_url()
    message.refresh_from_db()
    assert message.status == Message.Status.PAUSED
    send_subscriber_messages(str(message.pk))
    assert mail.outbox == []
    assert statuses(message) == ["pending"] * 3

    post_control(owner_client, "resume_message", message, django_capture_on_commit_callbacks)

    message.refresh_from_db()
    assert message.status == Message.Status.FINISHED
    assert sorted(email.to[0] for email in mail.outbox) == [
        "reader0@example.com",
        "reader1@example.com",
        "reader2@example.com",
    ]
    assert statuses(message) == ["sent"] * 3


def test_cancel_marks_what_is_left_cancelled_and_sends_nothing_more(
    owner_client, message, django_capture_on_commit_callbacks
):
    [first] = claim_batch(message, 1, lease_seconds=60)
    outcomes.mark_sent([first])

    post_control(owner_client, "cancel_message", message, django_capture_on_commit_callbacks)
    send_subscriber_messages(str(message.pk))

    message.refresh_from_db()
    assert message.status == Message.Status.CANCELLED
    assert message.finished is not None
    assert statuses(message) == ["cancelled", "cancelled", "sent"]
    assert mail.outbox == []
    assert message.resume() is False


def test_a_control_that_does_not_apply_says_so_and_changes_nothing(
    owner_client, message, django_capture_on_commit_callbacks
):
    response = post_control(
        owner_client, "resume_message", message, django_capture_on_commit_callbacks
    )

    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == Message.Status.SENDING
    page = owner_client.get(response.url)
    assert b"The message is sending." in page.content


def test_the_progress_json_reflects_the_delivery_rows(owner_client, message):
    [first] = claim_batch(message, 1, lease_seconds=60)
    outcomes.mark_sent([first])
    [second] = claim_batch(message, 1, lease_seconds=60)
    outcomes.record_failure(second, "550 5.1.1 No such user", permanent=True)

    response = owner_client.get(reverse("mailinglist:message_progress", kwargs={"pk": message.pk}))

    assert response.status_code == 200
    assert response.json() == {
        "status": "sending",
        "final": False,
        "controls": ["pause", "cancel"],
        "total": 3,
        "sent": 1,
        "failed": 1,
        "bounced": 0,
        "pending": 1,
        "skipped": 0,
        "suppressed": 0,
        "percent_done": 67,
    }


@pytest.mark.parametrize(
    ("state", "buttons", "watched"),
    [
        ("sending", ["pause", "cancel"], True),
        ("paused", ["resume", "cancel"], True),
        ("cancelled", [], False),
        ("finished", [], False),
    ],
)
def test_the_message_page_offers_the_moves_its_state_allows(
    owner_client, message, state, buttons, watched
):
    Message.objects.filter(pk=message.pk).update(status=state)

    response = owner_client.get(message.get_absolute_url())

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="delivery-bar"' in page
    forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>.*?>(\w+)</button>', page)
    assert forms == [
        (reverse(f"mailinglist:{name}_message", kwargs={"pk": message.pk}), name.capitalize())
        for name in buttons
    ]
    assert ("data-final" not in page) == watched


@pytest.mark.parametrize("name", ["view_message", "message_progress", *CONTROLS])
def test_another_user_gets_404_and_nothing_changes(client, message, name):
    stranger = UserFactory()
    client.login(username=stranger.username, password=PASSWORD)
    url = reverse(f"mailinglist:{name}", kwargs={"pk": message.pk})

    response = client.post(url) if name in CONTROLS else client.get(url)

    assert response.status_code == 404
    message.refresh_from_db()
    assert message.status == Message.Status.SENDING
    assert statuses(message) == ["pending"] * 3


@pytest.mark.parametrize("name", CONTROLS)
def test_controls_need_a_login_and_a_post(client, message, name):
    url = reverse(f"mailinglist:{name}", kwargs={"pk": message.pk})

    assert client.post(url).status_code == 302
    client.login(username=message.mailing_list.owner.username, password=PASSWORD)
    assert client.get(url).status_code == 405
    message.refresh_from_db()
    assert message.status == Message.Status.SENDING


def test_a_cancelled_message_makes_no_more_rows_and_counts_the_rest_as_skipped():
    mailing_list = MailingListFactory()
    SubscriberFactory(mailing_list=mailing_list, email="late@example.com")
    message = MessageFactory(mailing_list=mailing_list)

    message.cancel()

    assert claim_batch(message, 10, lease_seconds=60) == []
    assert statuses(message) == []
    counts = message.delivery_counts()
    assert (counts["skipped"], counts["total"], counts["percent_done"]) == (1, 1, 100)
