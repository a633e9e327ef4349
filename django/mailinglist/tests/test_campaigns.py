"""Drafts, test sends, scheduling and each list's identity, on the web and in the API."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from mailinglist.delivery.scheduling import start_due_messages
from mailinglist.models import Message, SubscriberMessage
from mailinglist.tests.api_helpers import api_client_for
from mailinglist.tests.factories import (
    DraftFactory,
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
)
from mailinglist.tests.harness import wait_until
from user.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

UTC = datetime.UTC


@pytest.fixture
def mailing_list():
    mailing_list = MailingListFactory(
        name="Banana Facts", owner=UserFactory(email="ape@example.com")
    )
    SubscriberFactory(mailing_list=mailing_list, email="reader@example.com")
    mail.outbox.clear()
    return mailing_list


@pytest.fixture
def owner(client, mailing_list):
    client.force_login(mailing_list.owner)
    return client


def url(name, message):
    return reverse(f"mailinglist:{name}", kwargs={"pk": message.pk})


def test_a_draft_is_kept_and_edited_and_sends_nothing(
    owner, mailing_list, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        saved = owner.post(
            reverse("mailinglist:create_message", kwargs={"mailinglist_pk": mailing_list.pk}),
            {"subject": "Ripe?", "body": "Not *yet*", "draft": "1"},
        )
        message = Message.objects.get()
        edited = owner.post(
            url("edit_message", message),
            {"subject": "Ripe!", "body": "Now **ripe**", "draft": "1"},
        )

    assert saved.url == message.get_absolute_url()
    assert edited.url == message.get_absolute_url()
    message.refresh_from_db()
    assert (message.status, message.subject) == ("draft", "Ripe!")
    assert message.html == "<p>Now <strong>ripe</strong></p>\n"
    assert b"Nobody has been sent this message yet" in owner.get(saved.url).content
    assert mail.outbox == []
    assert not SubscriberMessage.objects.exists()


def test_a_message_that_went_out_cannot_be_edited(owner, mailing_list):
    message = MessageFactory(mailing_list=mailing_list, subject="Sent")

    page = owner.post(
        url("edit_message", message), {"subject": "Changed", "body": "x"}, follow=True
    )
    answer = api_client_for(mailing_list.owner).patch(
        reverse("mailinglist:api-message-detail", kwargs={"pk": message.pk}),
        {"subject": "Changed"},
        format="json",
    )

    assert b"can no longer change" in page.content
    assert answer.status_code == 409
    assert "detail" in answer.json()
    message.refresh_from_db()
    assert message.subject == "Sent"


def test_a_test_copy_is_marked_and_counted_nowhere(
    owner, mailing_list, django_capture_on_commit_callbacks
):
    message = DraftFactory(mailing_list=mailing_list, subject="Ripe", body="Hi **there**")

    with django_capture_on_commit_callbacks(execute=True):
        owner.post(url("test_message", message), {"emails": "ape@example.com, reader@example.com"})

    assert sorted(email.to[0] for email in mail.outbox) == ["ape@example.com", "reader@example.com"]
    assert {email.subject for email in mail.outbox} == {"[Test] Ripe"}
    assert "<strong>there</strong>" in mail.outbox[0].alternatives[0][0]
    assert not SubscriberMessage.objects.exists()
    message.refresh_from_db()
    assert message.status == "draft"
    assert message.delivery_counts()["total"] == 0


def test_a_test_goes_to_at_most_ten_addresses(owner, mailing_list):
    message = DraftFactory(mailing_list=mailing_list)
    addresses = " ".join(f"reader{n}@example.com" for n in range(11))

    page = owner.post(url("test_message", message), {"emails": addresses}, follow=True)

    assert b"at most 10 addresses" in page.content
    assert mail.outbox == []


def test_an_owner_in_shanghai_schedules_9_am_local_which_is_1_am_utc(owner, mailing_list):
    mailing_list.owner.time_zone = "Asia/Shanghai"
    mailing_list.owner.save()
    message = DraftFactory(mailing_list=mailing_list)

    owner.post(url("send_message", message), {"send_at": "2031-03-01T09:00", "schedule": "1"})

    message.refresh_from_db()
    assert message.status == "scheduled"
    assert message.send_at == datetime.datetime(2031, 3, 1, 1, 0, tzinfo=UTC)
    page = owner.get(message.get_absolute_url()).content.decode()
    assert "goes out 2031-03-01 09:00 CST" in page


def test_a_time_in_the_past_is_refused(owner, mailing_list):
    message = DraftFactory(mailing_list=mailing_list)

    page = owner.post(
        url("send_message", message), {"send_at": "2001-01-01T09:00", "schedule": "1"}
    )

    assert b"Choose a time in the future" in page.content
    message.refresh_from_db()
    assert message.status == "draft"


def test_a_scheduled_message_goes_out_at_its_time_and_says_if_it_was_late(
    owner, mailing_list, django_capture_on_commit_callbacks
):
    now = timezone.now()
    on_time = DraftFactory(mailing_list=mailing_list, subject="On time")
    late = DraftFactory(mailing_list=mailing_list, subject="Late")
    later = DraftFactory(mailing_list=mailing_list, subject="Later")
    on_time.schedule(now - datetime.timedelta(seconds=5))
    late.schedule(now - datetime.timedelta(hours=2))
    later.schedule(now + datetime.timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert start_due_messages(now) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert start_due_messages(now) == 0

    assert sorted(email.subject for email in mail.outbox) == ["Late", "On time"]
    assert "went out 2\xa0hours late" in owner.get(late.get_absolute_url()).content.decode()
    assert b"late:" not in owner.get(on_time.get_absolute_url()).content
    later.refresh_from_db()
    assert later.status == "scheduled"


def test_a_scheduled_message_can_be_taken_back_to_a_draft(owner, mailing_list):
    message = DraftFactory(mailing_list=mailing_list)
    message.schedule(timezone.now() + datetime.timedelta(hours=1))

    owner.post(url("unschedule_message", message))

    message.refresh_from_db()
    assert (message.status, message.send_at) == ("draft", None)
    assert start_due_messages(timezone.now() + datetime.timedelta(hours=2)) == 0


def test_the_list_sends_as_itself(
    owner, mailing_list, settings, django_capture_on_commit_callbacks
):
    settings.MAIL_APE_ALLOWED_FROM_DOMAINS = ["bananas.example"]
    refused = owner.post(
        reverse("mailinglist:mailinglist_settings", kwargs={"pk": mailing_list.pk}),
        {"name": "Banana Facts", "from_email": "news@elsewhere.example"},
    )
    owner.post(
        reverse("mailinglist:mailinglist_settings", kwargs={"pk": mailing_list.pk}),
        {
            "name": "Banana Facts",
            "from_name": "Koko at Banana Facts",
            "from_email": "news@bananas.example",
            "reply_to": "koko@bananas.example",
        },
    )

    with django_capture_on_commit_callbacks(execute=True):
        MessageFactory(mailing_list=mailing_list, subject="Ripe")

    assert b"may send only from addresses at bananas.example" in refused.content
    [email] = mail.outbox
    assert email.from_email == "Koko at Banana Facts <news@bananas.example>"
    assert email.extra_headers["Reply-To"] == "koko@bananas.example"


def test_the_api_drafts_edits_tests_schedules_and_sends(
    mailing_list, django_capture_on_commit_callbacks
):
    api = api_client_for(mailing_list.owner)
    messages_url = reverse(
        "mailinglist:api-message-list", kwargs={"mailing_list_pk": mailing_list.pk}
    )

    with django_capture_on_commit_callbacks(execute=True):
        draft = api.post(
            messages_url, {"subject": "Hi", "body": "x", "status": "draft"}, format="json"
        )
        detail = draft.json()["url"]
        edited = api.patch(detail, {"body": "**Ripe**"}, format="json")
        tested = api.post(detail + "/test", {}, format="json")
        scheduled = api.post(
            detail + "/send", {"send_at": "2031-03-01T09:00:00+08:00"}, format="json"
        )
        back = api.patch(detail, {"status": "draft"}, format="json")
        sent = api.post(detail + "/send", {}, format="json")

    assert draft.status_code == 201
    assert draft.json()["status"] == "draft"
    assert edited.json()["body"] == "**Ripe**"
    assert tested.status_code == 202
    assert tested.json() == {"emails": ["ape@example.com"]}
    assert scheduled.json()["status"] == "scheduled"
    assert scheduled.json()["send_at"] == "2031-03-01T01:00:00Z"
    assert (back.json()["status"], back.json()["send_at"]) == ("draft", None)
    assert sent.status_code == 200
    assert sent.json()["status"] == "sending"
    assert sorted((email.to[0], email.subject) for email in mail.outbox) == [
        ("ape@example.com", "[Test] Hi"),
        ("reader@example.com", "Hi"),
    ]
    assert api.post(detail + "/send", {}, format="json").status_code == 409


def test_the_api_refuses_to_send_to_nobody(mailing_list):
    mailing_list.subscriber_set.update(confirmed=False)
    message = DraftFactory(mailing_list=mailing_list)

    answer = api_client_for(mailing_list.owner).post(
        reverse("mailinglist:api-message-send", kwargs={"pk": message.pk}), {}, format="json"
    )

    assert answer.status_code == 400
    assert "Nobody would get this message" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "x", "body": "y", "status": "scheduled"}, "send_at"),
        (
            {"subject": "x", "body": "y", "status": "scheduled", "send_at": "2001-01-01T00:00Z"},
            "send_at",
        ),
        ({"subject": "x", "body": "y", "send_at": "2031-01-01T00:00Z"}, "send_at"),
        ({"subject": "x", "body": "y", "status": "finished"}, "status"),
    ],
)
def test_the_api_refuses_a_schedule_that_makes_no_sense(mailing_list, body, field):
    answer = api_client_for(mailing_list.owner).post(
        reverse("mailinglist:api-message-list", kwargs={"mailing_list_pk": mailing_list.pk}),
        body,
        format="json",
    )

    assert answer.status_code == 400
    assert field in answer.json()
    assert not Message.objects.exists()


@pytest.mark.parametrize("action", ["detail", "send", "test"])
def test_another_user_gets_404_from_every_message_route(mailing_list, action):
    message = DraftFactory(mailing_list=mailing_list)
    stranger = api_client_for(UserFactory())
    name = "api-message-detail" if action == "detail" else f"api-message-{action}"

    answer = (stranger.patch if action == "detail" else stranger.post)(
        reverse(f"mailinglist:{name}", kwargs={"pk": message.pk}), {}, format="json"
    )

    assert answer.status_code == 404
    assert mail.outbox == []


def test_the_owners_time_zone_is_a_setting(owner, mailing_list):
    owner.post(reverse("user:settings"), {"time_zone": "Asia/Shanghai"})
    refused = owner.post(reverse("user:settings"), {"time_zone": "Mars/Olympus_Mons"})

    mailing_list.owner.refresh_from_db()
    assert mailing_list.owner.zone == ZoneInfo("Asia/Shanghai")
    assert b"Select a valid choice" in refused.content


@pytest.mark.slow
def test_a_message_whose_time_passed_with_no_worker_goes_out_once_when_one_starts(
    client, smtp_sink, start_celery_worker
):
    mailing_list = MailingListFactory(name="Banana Facts")
    SubscriberFactory(mailing_list=mailing_list, email="reader@example.com")
    message = DraftFactory(mailing_list=mailing_list, subject="Overdue")
    # Scheduled for two hours ago, while no worker ran.
    message.schedule(timezone.now() - datetime.timedelta(hours=2))

    start_celery_worker(smtp_sink.port, beat=True, MAIL_APE_SCHEDULER_SECONDS=1)

    wait_until(lambda: smtp_sink.received_by("reader@example.com"), message="the overdue message")
    wait_until(
        lambda: Message.objects.get(pk=message.pk).status == Message.Status.FINISHED,
        message="the message to finish",
    )
    assert len(smtp_sink.received_by("reader@example.com")) == 1
    client.force_login(mailing_list.owner)
    page = client.get(message.get_absolute_url()).content.decode()
    assert "went out 2\xa0hours late: no worker was running at that time" in page
