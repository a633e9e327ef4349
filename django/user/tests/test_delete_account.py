import pytest
from django.apps import apps
from django.urls import reverse
from rest_framework.authtoken.models import Token

from mailinglist.models import (
    DeliveryEvent,
    MailingList,
    SubscriberImport,
    SubscriberImportChunk,
    SubscriberImportRejection,
    SubscriberMessage,
    Suppression,
)
from mailinglist.queueing import QueuedTask, relay
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from user.models import User
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

DELETE = reverse("user:delete_account")
# Rows of no one: tasks waiting for the broker, which find their rows gone and do nothing.
OWNERLESS_MODELS = {QueuedTask}


def everything_of_an_owner(owner):
    """One row of every model that hangs on an owner, each pk by model."""
    mailing_list = MailingListFactory(owner=owner)
    subscriber = SubscriberFactory(mailing_list=mailing_list)
    unconfirmed = SubscriberFactory(mailing_list=mailing_list, confirmed=False)
    message = MessageFactory(mailing_list=mailing_list)
    delivery = SubscriberMessage.objects.create(message=message, subscriber=subscriber)
    subscriber_import = SubscriberImport.objects.create(
        mailing_list=mailing_list, subscriber_status="confirmed"
    )
    rows = [
        owner,
        mailing_list,
        subscriber,
        unconfirmed,
        message,
        delivery,
        subscriber_import,
        SubscriberImportChunk.objects.create(
            subscriber_import=subscriber_import, number=0, data=b"email\n"
        ),
        SubscriberImportRejection.objects.create(
            subscriber_import=subscriber_import, line=2, reason="not an address"
        ),
        Suppression.objects.create(owner=owner, email="gone@example.com", reason="manual"),
        DeliveryEvent.objects.create(
            delivery=delivery, message=message, subscriber=subscriber, kind="hard_bounce"
        ),
        Token.objects.create(user=owner),
    ]
    pks = {}
    for row in rows:
        pks.setdefault(type(row), set()).add(row.pk)
    return pks


def models_of_mail_ape():
    return [
        model
        for label in ("user", "mailinglist", "authtoken")
        for model in apps.get_app_config(label).get_models()
        if model not in OWNERLESS_MODELS and not model._meta.proxy
    ]


def delete_account(client, password=PASSWORD, understood=True):
    data = {"password": password}
    if understood:
        data["understood"] = "on"
    return client.post(DELETE, data, follow=True)


@pytest.fixture
def owner(client):
    user = UserFactory()
    client.force_login(user)
    return user


def test_the_settings_page_leads_to_the_delete_page_which_says_what_goes(client, owner):
    MailingListFactory(owner=owner, name="Banana fans")

    settings_page = client.get(reverse("user:settings"))
    delete_page = client.get(DELETE)

    assert DELETE in settings_page.content.decode()
    assert "Banana fans" in delete_page.content.decode()
    assert "suppression list" in delete_page.content.decode()


def test_deleting_leaves_no_row_of_the_owner_in_any_table_and_every_row_of_others(client, owner):
    theirs = everything_of_an_owner(owner)
    others = everything_of_an_owner(UserFactory())

    response = delete_account(client)

    assert set(theirs) == set(models_of_mail_ape())
    for model in models_of_mail_ape():
        remaining = set(model.objects.values_list("pk", flat=True))
        assert not remaining & theirs[model], model
        assert others[model] <= remaining, model
    assert response.redirect_chain[-1][0] == reverse("user:account_deleted")
    assert "Goodbye" in response.content.decode()


def test_work_queued_for_the_erased_rows_does_nothing(client, owner, mailbox):
    everything_of_an_owner(owner)
    assert QueuedTask.objects.exists()

    delete_account(client)
    relay()

    assert mailbox.received() == []
    assert not QueuedTask.objects.exists()


def test_deleting_logs_the_owner_out_and_they_cannot_log_in_again(client, owner):
    delete_account(client)

    assert client.get(reverse("user:settings")).status_code == 302
    assert not client.login(username=owner.username, password=PASSWORD)


def test_a_wrong_password_deletes_nothing(client, owner):
    response = delete_account(client, password="wrong")

    assert "That is not your password" in response.content.decode()
    assert User.objects.filter(pk=owner.pk).exists()


def test_it_needs_the_owner_to_say_they_understand(client, owner):
    response = delete_account(client, understood=False)

    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert User.objects.filter(pk=owner.pk).exists()


def test_following_a_link_to_delete_deletes_nothing(client, owner):
    MailingListFactory(owner=owner)

    page = client.get(DELETE)

    assert page.status_code == 200
    assert MailingList.objects.filter(owner=owner).exists()


def test_guessing_the_password_here_meets_the_login_lockout(client, owner, settings):
    for _ in range(settings.MAIL_APE_LOGIN_MAX_FAILURES):
        delete_account(client, password="wrong")

    response = delete_account(client)

    assert "Too many wrong passwords" in response.content.decode()
    assert User.objects.filter(pk=owner.pk).exists()
