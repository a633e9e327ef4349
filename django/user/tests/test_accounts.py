import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_registering_logs_the_new_user_in_and_shows_their_lists(client):
    response = client.post(
        reverse("user:register"),
        {
            "username": "ape",
            "email": "ape@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("mailinglist:mailinglist_list")
    assert response.context["user"].username == "ape"
    assert b"You have no mailing lists yet" in response.content


def test_it_rejects_mismatched_passwords_with_a_form_error(client):
    response = client.post(
        reverse("user:register"),
        {"username": "ape", "email": "ape@example.com", "password1": PASSWORD, "password2": "x"},
    )

    assert response.status_code == 200
    assert b"password fields didn" in response.content
    assert not get_user_model().objects.exists()


def test_it_rejects_a_taken_username(client):
    UserFactory(username="ape")

    response = client.post(
        reverse("user:register"),
        {"username": "ape", "email": "a@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 200
    assert b"already exists" in response.content
    assert get_user_model().objects.count() == 1


def test_logging_in_leads_to_the_lists(client):
    user = UserFactory()

    response = client.post(reverse("user:login"), {"username": user.username, "password": PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("mailinglist:mailinglist_list")


def test_logout_needs_a_post(client):
    user = UserFactory()
    client.login(username=user.username, password=PASSWORD)

    assert client.get(reverse("user:logout")).status_code == 405
    assert client.get(reverse("mailinglist:mailinglist_list")).status_code == 200

    client.post(reverse("user:logout"))

    assert client.get(reverse("mailinglist:mailinglist_list")).status_code == 302


def test_the_home_page_leads_to_login_or_to_the_lists(client):
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("user:login"))

    user = UserFactory()
    client.login(username=user.username, password=PASSWORD)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == reverse("mailinglist:mailinglist_list")
