from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse

from mailinglist.models import Subscriber, SubscriberMessage
from mailinglist.tests.api_helpers import api_client_for
from mailinglist.tests.factories import (
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
    pending_deliveries_for,
)
from user.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def subscribers_of(mailing_list):
    return reverse("mailinglist:api-subscriber-list", kwargs={"mailing_list_pk": mailing_list.pk})


def detail(subscriber):
    return reverse("mailinglist:api-subscriber-detail", kwargs={"pk": subscriber.pk})


def add(client, mailing_list, body, capture):
    with capture(execute=True):
        return client.post(subscribers_of(mailing_list), body, format="json")


def test_adding_an_address_sends_it_a_confirmation(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory(name="Banana Facts")

    response = add(
        api_client_for(mailing_list.owner),
        mailing_list,
        {"email": "ape@example.com"},
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 201
    subscriber = Subscriber.objects.get()
    assert response.json() == {
        "url": f"http://testserver{detail(subscriber)}",
        "id": str(subscriber.pk),
        "email": "ape@example.com",
        "confirmed": False,
        "mailing_list": "http://testserver"
        + reverse("mailinglist:api-mailing-list-detail", kwargs={"pk": mailing_list.pk}),
        "name": "",
        "fields": {},
        "status": "unconfirmed",
        "created": response.json()["created"],
    }
    [email] = mail.outbox
    assert email.to == ["ape@example.com"]
    assert "Banana Facts" in email.subject


def test_adding_a_confirmed_address_sends_nothing(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()

    response = add(
        api_client_for(mailing_list.owner),
        mailing_list,
        {"email": "ape@example.com", "confirmed": True},
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 201
    assert Subscriber.objects.get().confirmed
    assert mail.outbox == []


def test_the_list_shows_its_subscribers_only():
    mailing_list = MailingListFactory()
    SubscriberFactory(mailing_list=mailing_list, email="b@example.com")
    SubscriberFactory(mailing_list=mailing_list, email="a@example.com")
    SubscriberFactory(mailing_list=MailingListFactory(owner=mailing_list.owner))

    body = api_client_for(mailing_list.owner).get(subscribers_of(mailing_list)).json()

    assert [item["email"] for item in body] == ["a@example.com", "b@example.com"]


def test_an_address_already_on_the_list_in_any_case_is_refused(
    django_capture_on_commit_callbacks,
):
    subscriber = SubscriberFactory(email="ape@example.com")

    response = add(
        api_client_for(subscriber.mailing_list.owner),
        subscriber.mailing_list,
        {"email": "APE@Example.com"},
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 400
    assert "email" in response.json()
    assert Subscriber.objects.count() == 1
    assert mail.outbox == []


def test_an_address_added_by_a_concurrent_request_is_refused_not_a_server_error(
    django_capture_on_commit_callbacks,
):
    subscriber = SubscriberFactory(email="ape@example.com")
    real_check = Subscriber.validate_constraints
    checks = []

    def check_that_misses_the_other_request_at_first(instance, *args, **kwargs):
        checks.append(instance)
        if len(checks) > 1:
            real_check(instance, *args, **kwargs)

    with mock.patch.object(
        Subscriber, "validate_constraints", check_that_misses_the_other_request_at_first
    ):
        response = add(
            api_client_for(subscriber.mailing_list.owner),
            subscriber.mailing_list,
            {"email": "Ape@example.com"},
            django_capture_on_commit_callbacks,
        )

    assert response.status_code == 400
    assert "email" in response.json()
    assert Subscriber.objects.count() == 1
    assert mail.outbox == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "not an address"},
        {"email": 42},
        {"email": "a@example.com", "confirmed": "yes"},
    ],
)
def test_it_names_the_field_that_is_wrong(body):
    mailing_list = MailingListFactory()

    response = api_client_for(mailing_list.owner).post(
        subscribers_of(mailing_list), body, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()) <= {"email", "confirmed"}
    assert response.json()
    assert not Subscriber.objects.exists()


def test_the_owner_confirms_and_unconfirms_but_never_changes_the_address():
    subscriber = SubscriberFactory(email="ape@example.com", confirmed=False)
    client = api_client_for(subscriber.mailing_list.owner)

    put = client.put(
        detail(subscriber), {"email": "other@example.com", "confirmed": True}, format="json"
    )
    subscriber.refresh_from_db()
    assert put.status_code == 200
    assert put.json()["email"] == "ape@example.com"
    assert subscriber.confirmed
    assert subscriber.email == "ape@example.com"

    patch = client.patch(detail(subscriber), {"confirmed": False}, format="json")
    subscriber.refresh_from_db()
    assert patch.status_code == 200
    assert patch.json()["confirmed"] is False
    assert not subscriber.confirmed


def test_unconfirming_stops_copies_still_waiting_to_go_out(django_capture_on_commit_callbacks):
    subscriber = SubscriberFactory()
    with django_capture_on_commit_callbacks(execute=False):
        message = MessageFactory(mailing_list=subscriber.mailing_list)
    pending_deliveries_for(message)

    api_client_for(subscriber.mailing_list.owner).patch(
        detail(subscriber), {"confirmed": False}, format="json"
    )

    assert SubscriberMessage.objects.get().status == SubscriberMessage.Status.SKIPPED


def test_the_owner_removes_a_subscriber():
    subscriber = SubscriberFactory()

    response = api_client_for(subscriber.mailing_list.owner).delete(detail(subscriber))

    assert response.status_code == 204
    assert not Subscriber.objects.exists()


def test_it_hides_the_subscribers_of_another_users_list():
    subscriber = SubscriberFactory(email="secret@example.com")

    response = api_client_for(UserFactory()).get(subscribers_of(subscriber.mailing_list))

    assert response.status_code == 404
    assert "secret@example.com" not in response.content.decode()


def test_it_adds_nobody_to_another_users_list(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()

    response = add(
        api_client_for(UserFactory()),
        mailing_list,
        {"email": "intruder@example.com", "confirmed": True},
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 404
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("put", {"confirmed": False}),
        ("patch", {"confirmed": False}),
        ("delete", None),
    ],
)
def test_it_hides_another_users_subscriber(method, body):
    subscriber = SubscriberFactory(email="secret@example.com", confirmed=True)
    stranger = api_client_for(UserFactory())

    response = getattr(stranger, method)(detail(subscriber), body, format="json")

    assert response.status_code == 404
    assert "secret@example.com" not in response.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.confirmed
