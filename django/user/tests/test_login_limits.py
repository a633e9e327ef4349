import base64

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_the_api_answers_429_after_too_many_wrong_passwords_even_for_the_right_one():
    user = UserFactory()
    api = APIClient()
    url = reverse("mailinglist:api-mailing-list-list")

    for _ in range(settings.MAIL_APE_LOGIN_MAX_FAILURES):
        assert api.get(url, HTTP_AUTHORIZATION=basic(user.username, "wrong")).status_code == 401

    response = api.get(url, HTTP_AUTHORIZATION=basic(user.username, PASSWORD))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_the_login_page_refuses_after_too_many_wrong_passwords(client):
    user = UserFactory()
    for _ in range(settings.MAIL_APE_LOGIN_MAX_FAILURES):
        client.post(reverse("user:login"), {"username": user.username, "password": "wrong"})

    response = client.post(reverse("user:login"), {"username": user.username, "password": PASSWORD})

    assert response.status_code == 200
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


def test_other_users_are_not_locked_out(client):
    victim, bystander = UserFactory(), UserFactory()
    for _ in range(settings.MAIL_APE_LOGIN_MAX_FAILURES):
        client.post(reverse("user:login"), {"username": victim.username, "password": "wrong"})

    response = client.post(
        reverse("user:login"), {"username": bystander.username, "password": PASSWORD}
    )

    assert response.status_code == 302
