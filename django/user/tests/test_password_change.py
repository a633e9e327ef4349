import pytest
from django.urls import reverse

from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

CHANGE = reverse("user:password_change")
NEW_PASSWORD = "a brand new violet teapot"


def test_the_settings_page_leads_to_the_password_change(client):
    client.force_login(UserFactory())

    page = client.get(reverse("user:settings"))

    assert CHANGE in page.content.decode()


def test_changing_the_password_keeps_the_owner_logged_in_and_the_old_one_stops(client):
    user = UserFactory()
    client.login(username=user.username, password=PASSWORD)

    response = client.post(
        CHANGE,
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("user:password_change_done")
    assert client.get(reverse("user:settings")).status_code == 200
    client.logout()
    assert not client.login(username=user.username, password=PASSWORD)
    assert client.login(username=user.username, password=NEW_PASSWORD)


def test_a_wrong_old_password_changes_nothing(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(
        CHANGE,
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    assert "old password was entered incorrectly" in response.content.decode()
    assert client.login(username=user.username, password=PASSWORD)
