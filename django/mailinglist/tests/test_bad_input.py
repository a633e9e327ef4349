"""Hostile or broken input gets a clear 4xx, JSON in the API, and stores nothing."""

import base64
import json

import pytest
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from mailinglist.models import Message, Subscriber
from mailinglist.tests.api_helpers import api_client_for
from mailinglist.tests.factories import MailingListFactory
from mailinglist.validators import MAX_MESSAGE_BODY_BYTES

pytestmark = pytest.mark.django_db

LONG_BUT_VALID = "a" * 64 + "@" + ".".join(["b" * 63] * 3) + ".example"
CONTROL_CHARACTERS = ['"a\x0bb"@example.com', '"a\x0cb"@example.com', '"a\x1cb"@example.com']
UNSENDABLE = [*CONTROL_CHARACTERS, '"plain"@example.com', LONG_BUT_VALID]


def subscribe_url(mailing_list):
    return reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk})


def subscribers_url(mailing_list):
    return reverse("mailinglist:api-subscriber-list", kwargs={"mailing_list_pk": mailing_list.pk})


@pytest.mark.parametrize("address", UNSENDABLE)
def test_the_subscribe_form_refuses_an_address_it_cannot_send_to(client, address):
    mailing_list = MailingListFactory()

    response = client.post(subscribe_url(mailing_list), {"email": address})

    assert response.status_code == 200
    assert b"invalid-feedback" in response.content
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize("address", UNSENDABLE)
def test_the_api_refuses_an_address_it_cannot_send_to(address):
    mailing_list = MailingListFactory()

    response = api_client_for(mailing_list.owner).post(
        subscribers_url(mailing_list), {"email": address}, format="json"
    )

    assert response.status_code == 400
    assert "email" in response.json()
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"ape\x00:secret").decode(),
        "Basic " + base64.b64encode(b"ape:sec\x00ret").decode(),
        "Token abc\x00def",
    ],
    ids=["basic username", "basic password", "token"],
)
def test_a_nul_byte_in_credentials_is_a_401(authorization):
    response = APIClient().get(
        reverse("mailinglist:api-mailing-list-list"), HTTP_AUTHORIZATION=authorization
    )

    assert response.status_code == 401
    assert "detail" in response.json()


def test_json_nested_too_deeply_is_a_400():
    mailing_list = MailingListFactory()

    response = api_client_for(mailing_list.owner).post(
        subscribers_url(mailing_list),
        "[" * 100_000 + "]" * 100_000,
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "detail" in response.json()


def test_a_body_over_the_upload_limit_is_a_json_413(settings):
    mailing_list = MailingListFactory()
    body = json.dumps({"subject": "Big", "body": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})

    response = api_client_for(mailing_list.owner).post(
        reverse("mailinglist:api-message-list", kwargs={"mailing_list_pk": mailing_list.pk}),
        body,
        content_type="application/json",
    )

    assert response.status_code == 413
    assert "detail" in response.json()
    assert not Message.objects.exists()


def test_a_message_body_over_its_limit_is_a_field_error_on_the_web_and_in_the_api(client):
    mailing_list = MailingListFactory()
    body = "é" * (MAX_MESSAGE_BODY_BYTES // 2 + 1)
    client.force_login(mailing_list.owner)

    for button in ("preview", "save"):
        page = client.post(
            reverse("mailinglist:create_message", kwargs={"mailinglist_pk": mailing_list.pk}),
            {"subject": "Big", "body": body, button: "1"},
        )
        assert page.status_code == 200
        assert b"it can be at most 512" in page.content
    answer = api_client_for(mailing_list.owner).post(
        reverse("mailinglist:api-message-list", kwargs={"mailing_list_pk": mailing_list.pk}),
        {"subject": "Big", "body": body},
        format="json",
    )
    assert answer.status_code == 400
    assert "body" in answer.json()
    assert not Message.objects.exists()
