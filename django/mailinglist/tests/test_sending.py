import pytest
from django.core import mail
from django.urls import reverse

from mailinglist.models import Message, SubscriberMessage
from mailinglist.tasks import send_subscriber_messages, start_task_of_an_earlier_release
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from user.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailing_list():
    mailing_list = MailingListFactory(name="Banana Facts")
    SubscriberFactory(mailing_list=mailing_list, email="one@example.com")
    SubscriberFactory(mailing_list=mailing_list, email="two@example.com")
    SubscriberFactory(mailing_list=mailing_list, email="waiting@example.com", confirmed=False)
    SubscriberFactory(mailing_list=mailing_list, email="gone@example.com").unsubscribe()
    mail.outbox.clear()
    return mailing_list


def test_a_message_goes_out_once_to_each_confirmed_subscriber_after_its_confirmation(
    client, mailing_list, django_capture_on_commit_callbacks
):
    client.login(username=mailing_list.owner.username, password=PASSWORD)

    with django_capture_on_commit_callbacks(execute=True):
        written = client.post(
            reverse("mailinglist:create_message", kwargs={"mailinglist_pk": mailing_list.pk}),
            {"subject": "Ripe", "body": "# Hello\n\n<script>alert(1)</script>", "send": "1"},
        )
    message = Message.objects.get()
    assert written.url == reverse("mailinglist:send_message", kwargs={"pk": message.pk})
    assert mail.outbox == []
    confirmation = client.get(written.url)
    assert b'It goes to <strong id="recipient-count">2</strong> confirmed' in confirmation.content
    assert b"Banana Facts" in confirmation.content

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(written.url, {"send": "1"})

    assert response.status_code == 302
    assert response.url == message.get_absolute_url()
    assert sorted(email.to[0] for email in mail.outbox) == ["one@example.com", "two@example.com"]
    email = mail.outbox[0]
    assert email.subject == "Ripe"
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.extra_headers["List-Unsubscribe"].startswith("<http://testserver/mailinglist/")
    assert str(mailing_list.pk) in email.extra_headers["List-Id"]
    html = email.alternatives[0][0]
    assert "<h1>Hello</h1>" in html
    assert "<script>" not in html
    message.refresh_from_db()
    assert message.status == Message.Status.FINISHED
    assert message.started is not None
    assert message.finished is not None
    assert message.delivery_counts()["sent"] == 2


def test_preview_shows_the_rendered_message_and_sends_nothing(client, mailing_list):
    client.login(username=mailing_list.owner.username, password=PASSWORD)

    response = client.post(
        reverse("mailinglist:create_message", kwargs={"mailinglist_pk": mailing_list.pk}),
        {"subject": "Ripe", "body": "Bananas are **yellow**", "preview": "1"},
    )

    assert response.status_code == 200
    assert b"<strong>yellow</strong>" in response.content
    assert not Message.objects.exists()
    assert mail.outbox == []


def test_rerunning_the_tasks_sends_no_second_copy(mailing_list, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = MessageFactory(mailing_list=mailing_list)
    assert len(mail.outbox) == 2

    with django_capture_on_commit_callbacks(execute=True):
        Message.objects.filter(pk=message.pk).update(status=Message.Status.SENDING)
        send_subscriber_messages(str(message.pk))
        start_task_of_an_earlier_release(str(message.pk))

    assert len(mail.outbox) == 2
    assert SubscriberMessage.objects.filter(message=message).count() == 2


@pytest.mark.parametrize("subject", ["", "Line one\r\nBcc: victim@example.com", "x" * 141])
def test_it_rejects_a_bad_subject_with_a_form_error(client, mailing_list, subject):
    client.login(username=mailing_list.owner.username, password=PASSWORD)

    response = client.post(
        reverse("mailinglist:create_message", kwargs={"mailinglist_pk": mailing_list.pk}),
        {"subject": subject, "body": "Hello", "save": "1"},
    )

    assert response.status_code == 200
    assert b"invalid-feedback" in response.content
    assert not Message.objects.exists()


def test_sending_to_a_list_without_confirmed_subscribers_is_refused(
    client, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory()
    SubscriberFactory(mailing_list=mailing_list, confirmed=False)
    client.login(username=mailing_list.owner.username, password=PASSWORD)

    page = client.post(
        reverse("mailinglist:create_message", kwargs={"mailinglist_pk": mailing_list.pk}),
        {"subject": "Echo", "body": "Anyone?", "send": "1"},
        follow=True,
    )
    message = Message.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        refused = client.post(
            reverse("mailinglist:send_message", kwargs={"pk": message.pk}),
            {"send": "1"},
            follow=True,
        )

    assert b"Nobody would get it now" in page.content
    assert b"Nobody would get this message" in refused.content
    message.refresh_from_db()
    assert message.status == Message.Status.DRAFT
    assert mail.outbox == []


def test_an_unknown_page_shows_the_site_not_found_page(client):
    response = client.get("/mailinglist/00000000-0000-0000-0000-000000000000/subscribe")

    assert response.status_code == 404
    assert b"Mail Ape" in response.content
