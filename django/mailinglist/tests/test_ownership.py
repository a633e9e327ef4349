"""Every owner page answers 404 to another user and changes nothing."""

import pytest
from django.urls import reverse

from mailinglist.models import MailingList, Message
from mailinglist.tests.factories import MailingListFactory, MessageFactory
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def message(django_capture_on_commit_callbacks):
    return MessageFactory(subject="Owner only")


@pytest.fixture
def intruder_client(client):
    intruder = UserFactory()
    client.login(username=intruder.username, password=PASSWORD)
    return client


def owner_urls(message):
    list_pk = message.mailing_list.pk
    return {
        "manage": ("get", reverse("mailinglist:manage_mailinglist", kwargs={"pk": list_pk})),
        "delete page": ("get", reverse("mailinglist:delete_mailinglist", kwargs={"pk": list_pk})),
        "delete": ("post", reverse("mailinglist:delete_mailinglist", kwargs={"pk": list_pk})),
        "new message page": (
            "get",
            reverse("mailinglist:create_message", kwargs={"mailinglist_pk": list_pk}),
        ),
        "new message": (
            "post",
            reverse("mailinglist:create_message", kwargs={"mailinglist_pk": list_pk}),
        ),
        "message": ("get", reverse("mailinglist:view_message", kwargs={"pk": message.pk})),
        "progress": ("get", reverse("mailinglist:message_progress", kwargs={"pk": message.pk})),
        "pause": ("post", reverse("mailinglist:pause_message", kwargs={"pk": message.pk})),
        "resume": ("post", reverse("mailinglist:resume_message", kwargs={"pk": message.pk})),
        "cancel": ("post", reverse("mailinglist:cancel_message", kwargs={"pk": message.pk})),
        "settings page": (
            "get",
            reverse("mailinglist:mailinglist_settings", kwargs={"pk": list_pk}),
        ),
        "settings": ("post", reverse("mailinglist:mailinglist_settings", kwargs={"pk": list_pk})),
        "edit page": ("get", reverse("mailinglist:edit_message", kwargs={"pk": message.pk})),
        "edit": ("post", reverse("mailinglist:edit_message", kwargs={"pk": message.pk})),
        "send page": ("get", reverse("mailinglist:send_message", kwargs={"pk": message.pk})),
        "send": ("post", reverse("mailinglist:send_message", kwargs={"pk": message.pk})),
        "unschedule": (
            "post",
            reverse("mailinglist:unschedule_message", kwargs={"pk": message.pk}),
        ),
        "test": ("post", reverse("mailinglist:test_message", kwargs={"pk": message.pk})),
    }


@pytest.mark.parametrize(
    "page",
    [
        "manage",
        "delete page",
        "delete",
        "new message page",
        "new message",
        "message",
        "progress",
        "pause",
        "resume",
        "cancel",
        "settings page",
        "settings",
        "edit page",
        "edit",
        "send page",
        "send",
        "unschedule",
        "test",
    ],
)
def test_another_user_gets_404_and_changes_nothing(intruder_client, message, page):
    method, url = owner_urls(message)[page]

    response = getattr(intruder_client, method)(
        url, {"subject": "Hijack", "body": "Spam", "save": "1"} if method == "post" else None
    )

    assert response.status_code == 404
    assert MailingList.objects.filter(pk=message.mailing_list.pk).exists()
    assert list(Message.objects.values_list("subject", "status")) == [("Owner only", "sending")]


@pytest.mark.parametrize(
    "page", ["manage", "new message page", "message", "progress", "settings page"]
)
def test_the_owner_can_open_every_page(client, message, page):
    client.login(username=message.mailing_list.owner.username, password=PASSWORD)
    method, url = owner_urls(message)[page]

    assert getattr(client, method)(url).status_code == 200


@pytest.mark.parametrize("page", ["manage", "message", "new message page"])
def test_an_anonymous_visitor_is_sent_to_log_in(client, message, page):
    _, url = owner_urls(message)[page]

    response = client.get(url)

    assert response.status_code == 302
    assert response.url.startswith(reverse("user:login"))


def test_the_list_page_shows_only_the_users_own_lists(client):
    mine = MailingListFactory(name="Mine")
    MailingListFactory(name="Someone else's")
    client.login(username=mine.owner.username, password=PASSWORD)

    response = client.get(reverse("mailinglist:mailinglist_list"))

    assert b"Mine" in response.content
    assert b"Someone else" not in response.content


def test_the_ownership_predicate_holds_for_the_owner_only():
    mailing_list = MailingListFactory()

    assert mailing_list.user_can_use_mailing_list(mailing_list.owner)
    assert not mailing_list.user_can_use_mailing_list(UserFactory())
    assert list(MailingList.objects.usable_by(mailing_list.owner)) == [mailing_list]
    assert not MailingList.objects.usable_by(UserFactory()).exists()
