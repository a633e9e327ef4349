import base64

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

STRANGER, OWNER = "203.0.113.7", "198.51.100.20"


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def fail_logins(client, username, times, address=STRANGER, url=None):
    for _ in range(times):
        client.post(
            url or reverse("user:login"),
            {"username": username, "password": "wrong"},
            REMOTE_ADDR=address,
        )


def log_in(client, username, address=STRANGER, url=None, **headers):
    return client.post(
        url or reverse("user:login"),
        {"username": username, "password": PASSWORD},
        REMOTE_ADDR=address,
        **headers,
    )


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
    fail_logins(client, user.username, settings.MAIL_APE_LOGIN_MAX_FAILURES)

    response = log_in(client, user.username)

    assert response.status_code == 200
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


def test_failures_on_the_login_page_lock_the_admin_login_too(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    fail_logins(client, admin.username, settings.MAIL_APE_LOGIN_MAX_FAILURES)

    response = log_in(client, admin.username, url=reverse("admin:login"))

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_the_admin_login_counts_failures_for_every_other_path(client):
    user = UserFactory(is_staff=True)
    fail_logins(
        client, user.username, settings.MAIL_APE_LOGIN_MAX_FAILURES, url=reverse("admin:login")
    )

    response = APIClient().get(
        reverse("mailinglist:api-mailing-list-list"),
        HTTP_AUTHORIZATION=basic(user.username, PASSWORD),
        REMOTE_ADDR=STRANGER,
    )

    assert response.status_code == 429


def test_a_stranger_cannot_lock_the_owner_out_from_elsewhere(client):
    user = UserFactory()
    fail_logins(client, user.username, settings.MAIL_APE_LOGIN_MAX_FAILURES, address=STRANGER)

    response = log_in(client, user.username, OWNER)

    assert response.status_code == 302


def test_guessing_spread_over_many_addresses_locks_the_username_everywhere(client, settings):
    settings.MAIL_APE_LOGIN_MAX_FAILURES_PER_USERNAME = 25
    user = UserFactory()
    for n in range(25):
        fail_logins(client, user.username, 1, address=f"192.0.2.{n}")

    response = log_in(client, user.username, OWNER)

    assert response.status_code == 200
    assert b"Too many failed logins" in response.content


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    user = UserFactory()
    for _ in range(settings.MAIL_APE_LOGIN_MAX_FAILURES):
        client.post(
            reverse("user:login"),
            {"username": user.username, "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"192.0.2.66, {STRANGER}",
        )

    response = log_in(client, user.username, "10.0.0.2", HTTP_X_FORWARDED_FOR=OWNER)

    assert response.status_code == 302


def test_other_users_are_not_locked_out(client):
    victim, bystander = UserFactory(), UserFactory()
    fail_logins(client, victim.username, settings.MAIL_APE_LOGIN_MAX_FAILURES)

    response = log_in(client, bystander.username)

    assert response.status_code == 302


def test_an_address_that_keeps_failing_api_authentication_is_throttled():
    user = UserFactory()
    api = APIClient()
    url = reverse("mailinglist:api-mailing-list-list")
    for n in range(settings.MAIL_APE_API_AUTH_MAX_FAILURES_PER_ADDRESS):
        guess = api.get(url, HTTP_AUTHORIZATION=f"Token guess{n}", REMOTE_ADDR=STRANGER)
        assert guess.status_code == 401

    refused = api.get(url, HTTP_AUTHORIZATION=basic(user.username, PASSWORD), REMOTE_ADDR=STRANGER)
    allowed = api.get(url, HTTP_AUTHORIZATION=basic(user.username, PASSWORD), REMOTE_ADDR=OWNER)

    assert refused.status_code == 429
    assert "detail" in refused.json()
    assert allowed.status_code == 200
