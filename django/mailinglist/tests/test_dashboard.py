"""The owner's list index: each list's confirmed subscribers, their growth over the last
30 days, and how the last message fared."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from mailinglist.dashboard import GROWTH_DAYS
from mailinglist.delivery.states import DeliveryState, MessageState
from mailinglist.models import Message, SubscriberMessage
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from user.tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.also_on_sqlite]

DASHBOARD = reverse("mailinglist:mailinglist_list")


@pytest.fixture
def owner(client):
    user = UserFactory()
    client.login(username=user.username, password=PASSWORD)
    return user


def days_ago(days):
    return timezone.now() - datetime.timedelta(days=days)


def test_it_shows_each_list_with_its_confirmed_subscribers(client, owner):
    bananas = MailingListFactory(owner=owner, name="Banana Facts")
    for _ in range(3):
        SubscriberFactory(mailing_list=bananas)
    SubscriberFactory(mailing_list=bananas, confirmed=False)
    MailingListFactory(name="Someone else's list")

    response = client.get(DASHBOARD)

    page = response.content.decode()
    assert "Banana Facts" in page
    assert "Someone else&#x27;s list" not in page
    assert "Someone else's list" not in page
    [summary] = response.context["summaries"]
    assert (summary.confirmed, summary.confirmed_exact) == (3, True)
    assert '<div class="fs-3 lh-1 confirmed-count">3</div>' in page


def test_the_growth_line_climbs_with_each_day_s_new_subscribers_and_drops_with_leavers(
    client, owner
):
    mailing_list = MailingListFactory(owner=owner)
    for days in (40, 20, 10, 10, 2):
        SubscriberFactory(mailing_list=mailing_list, created=days_ago(days))
    SubscriberFactory(
        mailing_list=mailing_list,
        created=days_ago(25),
        confirmed=False,
        unsubscribed=days_ago(5),
    )
    SubscriberFactory(mailing_list=mailing_list, created=days_ago(3), confirmed=False)

    [summary] = client.get(DASHBOARD).context["summaries"]

    growth = summary.growth
    assert len(growth) == GROWTH_DAYS
    assert growth[-1] == summary.confirmed == 5
    # 30 days ago: the one from 40 days ago only; the one who joined 25 days ago and
    # left 5 days ago counts in between; the unconfirmed one never does.
    assert growth[0] == 1
    assert growth[GROWTH_DAYS - 1 - 20] == 3
    assert growth[GROWTH_DAYS - 1 - 10] == 5
    assert growth[GROWTH_DAYS - 1 - 4] == 4
    assert '<svg class="sparkline"' in client.get(DASHBOARD).content.decode()


def test_it_shows_the_last_message_with_its_delivered_and_bounced_copies(client, owner):
    mailing_list = MailingListFactory(owner=owner)
    readers = [SubscriberFactory(mailing_list=mailing_list) for _ in range(3)]
    older = MessageFactory(mailing_list=mailing_list, subject="Old news")
    latest = MessageFactory(mailing_list=mailing_list, subject="Fresh bananas")
    Message.objects.filter(pk=older.pk).update(queued=days_ago(9))
    Message.objects.filter(pk=latest.pk).update(queued=days_ago(1), status=MessageState.FINISHED)
    MessageFactory(mailing_list=mailing_list, subject="Still a draft", status="draft")
    for reader, state in zip(
        readers, [DeliveryState.SENT, DeliveryState.SENT, DeliveryState.BOUNCED], strict=True
    ):
        SubscriberMessage.objects.create(message=latest, subscriber=reader, status=state)

    page = client.get(DASHBOARD).content.decode()

    assert "Fresh bananas" in page
    assert "Old news" not in page
    assert "Still a draft" not in page
    assert "2 delivered, 1 bounced" in page
    assert "status-finished" in page


def test_a_list_without_messages_says_none_went_out(client, owner):
    MailingListFactory(owner=owner)

    assert "No message has gone out yet." in client.get(DASHBOARD).content.decode()
