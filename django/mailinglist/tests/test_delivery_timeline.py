"""The message page's charts: the copies that reached each outcome, second by second."""

import datetime

import pytest
from django.urls import reverse

from mailinglist.delivery.states import DeliveryState, MessageState
from mailinglist.models import Message, SubscriberMessage
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from user.tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.also_on_sqlite]

STARTED = datetime.datetime(2026, 11, 30, 9, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture
def message():
    mailing_list = MailingListFactory()
    message = MessageFactory(mailing_list=mailing_list)
    Message.objects.filter(pk=message.pk).update(
        status=MessageState.FINISHED,
        queued=STARTED,
        started=STARTED,
        finished=STARTED + datetime.timedelta(seconds=5),
    )
    outcomes = [
        (DeliveryState.SENT, 0),
        (DeliveryState.SENT, 0),
        (DeliveryState.FAILED, 0),
        (DeliveryState.SENT, 2),
        (DeliveryState.BOUNCED, 2),
        (DeliveryState.PENDING, None),
    ]
    for state, second in outcomes:
        at = None
        if second is not None:
            at = STARTED + datetime.timedelta(seconds=second, milliseconds=300)
        SubscriberMessage.objects.create(
            message=message,
            subscriber=SubscriberFactory(mailing_list=mailing_list),
            status=state,
            last_attempt=at,
            sent=at if state == DeliveryState.SENT else None,
        )
    return message


def timeline_url(message):
    return reverse("mailinglist:message_timeline", kwargs={"pk": message.pk})


def test_it_counts_each_second_s_copies_by_outcome(client, message):
    client.login(username=message.mailing_list.owner.username, password=PASSWORD)

    timeline = client.get(timeline_url(message)).json()

    start = int(STARTED.timestamp())
    assert timeline == {
        "unit_seconds": 1,
        # The second without an outcome is there too, with nothing in it.
        "points": [[start, 2, 1, 0], [start + 1, 0, 0, 0], [start + 2, 1, 0, 1]],
    }


def test_a_long_delivery_is_counted_by_the_minute(client, message):
    Message.objects.filter(pk=message.pk).update(finished=STARTED + datetime.timedelta(hours=2))
    client.login(username=message.mailing_list.owner.username, password=PASSWORD)

    timeline = client.get(timeline_url(message)).json()

    assert timeline == {"unit_seconds": 60, "points": [[int(STARTED.timestamp()), 3, 1, 1]]}


def test_the_message_page_carries_the_timeline_and_the_chart_script(client, message):
    client.login(username=message.mailing_list.owner.username, password=PASSWORD)

    page = client.get(message.get_absolute_url()).content.decode()

    assert 'id="delivery-timeline"' in page
    assert "/static/vendor/uplot/uPlot.iife.min.js" in page
    assert "The charts as a table" in page


def test_another_owner_gets_404(client, message):
    stranger = UserFactory()
    client.login(username=stranger.username, password=PASSWORD)

    assert client.get(timeline_url(message)).status_code == 404


@pytest.mark.parametrize(
    "state", [MessageState.PAUSED, MessageState.CANCELLED, MessageState.FINISHED]
)
def test_the_page_marks_the_state_on_its_badge_and_bar(client, message, state):
    Message.objects.filter(pk=message.pk).update(status=state)
    client.login(username=message.mailing_list.owner.username, password=PASSWORD)

    page = client.get(message.get_absolute_url()).content.decode()

    assert f'class="badge message-status status-{state}"' in page
    assert f"delivery-bar mb-2 state-{state}" in page
