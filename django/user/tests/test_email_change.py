import time
from unittest import mock

import pytest
from django.core import signing
from django.urls import reverse

from mailinglist.tests.harness import free_port
from user.models import EMAIL_CHANGE_SALT
from user.tests.conftest import link_in
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

CHANGE = reverse("user:change_email")


def ask_for_change(client, new_email, password=PASSWORD):
    return client.post(CHANGE, {"new_email": new_email, "password": password}, follow=True)


def confirmation_link(mailbox, address):
    [email] = mailbox.received_by(address)
    return link_in(email, "/user/email/confirm/")


def email_of(user):
    user.refresh_from_db()
    return user.email


@pytest.fixture
def owner(client):
    user = UserFactory(email="old@example.com")
    client.force_login(user)
    return user


def test_the_settings_page_leads_to_the_e_mail_change(client, owner):
    page = client.get(reverse("user:settings"))

    assert CHANGE in page.content.decode()


def test_the_link_arrives_at_the_new_address_and_only_a_post_on_it_changes_the_address(
    client, owner, mailbox
):
    asked = ask_for_change(client, "new@example.com")
    link = confirmation_link(mailbox, "new@example.com")
    shown = client.get(link)
    unchanged = email_of(owner)
    done = client.post(link)

    assert "We sent a link to new@example.com" in asked.content.decode()
    assert mailbox.received_by("old@example.com") == []
    assert shown.status_code == 200
    assert "new@example.com" in shown.content.decode()
    assert unchanged == "old@example.com"
    assert done.status_code == 200
    assert email_of(owner) == "new@example.com"


def test_the_link_works_in_another_browser_without_a_login(client, owner, mailbox):
    ask_for_change(client, "new@example.com")
    client.logout()

    client.post(confirmation_link(mailbox, "new@example.com"))

    assert email_of(owner) == "new@example.com"


def test_it_rejects_a_used_link(client, owner, mailbox):
    ask_for_change(client, "new@example.com")
    link = confirmation_link(mailbox, "new@example.com")
    client.post(link)

    again_shown = client.get(link)
    again_posted = client.post(link)

    assert again_shown.status_code == 400
    assert again_posted.status_code == 400
    assert "This link no longer works" in again_posted.content.decode()


def test_it_refuses_an_address_another_account_uses(client, owner, mailbox):
    UserFactory(email="Taken@Example.com")

    response = ask_for_change(client, "taken@example.com")

    assert "Another account uses that address" in response.content.decode()
    assert mailbox.received() == []


def test_a_link_for_an_address_taken_meanwhile_changes_nothing(client, owner, mailbox):
    ask_for_change(client, "new@example.com")
    UserFactory(email="new@example.com")

    response = client.post(confirmation_link(mailbox, "new@example.com"))

    assert response.status_code == 400
    assert email_of(owner) == "old@example.com"


def test_a_wrong_password_sends_nothing(client, owner, mailbox):
    response = ask_for_change(client, "new@example.com", password="wrong")

    assert "That is not your password" in response.content.decode()
    assert mailbox.received() == []


def test_a_link_older_than_three_days_is_refused(client, owner):
    four_days_ago = time.time() - 4 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=four_days_ago):
        token = owner.email_change_token("new@example.com")

    response = client.post(reverse("user:confirm_email_change", kwargs={"token": token}))

    assert response.status_code == 400
    assert email_of(owner) == "old@example.com"


@pytest.mark.parametrize(
    "token", ["nonsense", "a" * 300, "%00", signing.dumps([1, 2], salt=EMAIL_CHANGE_SALT)]
)
def test_a_forged_link_is_a_kind_400(client, token):
    shown = client.get(reverse("user:confirm_email_change", kwargs={"token": token}))
    posted = client.post(reverse("user:confirm_email_change", kwargs={"token": token}))

    assert shown.status_code == 400
    assert posted.status_code == 400
    assert "This link no longer works" in shown.content.decode()


def test_a_mail_server_that_is_down_is_a_form_error_not_a_500(client, owner, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()

    response = ask_for_change(client, "new@example.com")

    assert response.status_code == 200
    assert "could not send the e-mail" in response.content.decode()
    assert email_of(owner) == "old@example.com"


def test_an_address_too_long_for_the_account_is_a_form_error(client, owner, mailbox):
    response = ask_for_change(client, "a" * 250 + "@example.com")

    assert response.status_code == 200
    assert mailbox.received() == []
    assert email_of(owner) == "old@example.com"
