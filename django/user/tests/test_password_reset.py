import pytest
from django.urls import reverse

from user.tests.conftest import link_in
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

RESET = reverse("user:password_reset")
NEW_PASSWORD = "a brand new violet teapot"


def ask_for_a_reset(client, email):
    return client.post(RESET, {"email": email}, follow=True)


def reset_link(mailbox, address):
    [email] = mailbox.received_by(address)
    return link_in(email, "/user/password-reset/")


def set_new_password(client, link):
    form_page = client.get(link, follow=True)
    return client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )


def logs_in(client, username, password):
    client.logout()
    response = client.post(reverse("user:login"), {"username": username, "password": password})
    return response.status_code == 302


def test_the_login_page_offers_a_reset(client):
    page = client.get(reverse("user:login"))

    assert RESET in page.content.decode()
    assert "Forgot your password?" in page.content.decode()


def test_a_reset_by_e_mail_sets_a_new_password(client, mailbox):
    user = UserFactory(email="owner@example.com")

    sent = ask_for_a_reset(client, "owner@example.com")
    [email] = mailbox.received_by("owner@example.com")
    changed = set_new_password(client, reset_link(mailbox, "owner@example.com"))

    assert "Check your inbox" in sent.content.decode()
    assert email["Subject"] == "Reset your Mail Ape password"
    assert changed.redirect_chain[-1][0] == reverse("user:password_reset_complete")
    assert "Your new password is set" in changed.content.decode()
    assert logs_in(client, user.username, NEW_PASSWORD)
    assert not logs_in(client, user.username, PASSWORD)


def test_the_link_is_on_the_sites_link_domain_not_the_requests_host(client, mailbox, settings):
    settings.MAILING_LIST_LINK_DOMAIN = "https://lists.example.org"
    UserFactory(email="owner@example.com")

    client.post(RESET, {"email": "owner@example.com"})

    [email] = mailbox.received_by("owner@example.com")
    text = email.get_body(preferencelist=("plain",)).get_content()
    assert "https://lists.example.org/user/password-reset/" in text
    assert "testserver" not in text


def test_a_used_link_is_refused_kindly(client, mailbox):
    UserFactory(email="owner@example.com")
    ask_for_a_reset(client, "owner@example.com")
    link = reset_link(mailbox, "owner@example.com")
    set_new_password(client, link)

    again = client.get(link, follow=True)

    assert again.status_code == 200
    assert "This link no longer works" in again.content.decode()
    assert 'name="new_password1"' not in again.content.decode()


def test_an_unknown_address_gets_the_same_answer_and_no_e_mail(client, mailbox):
    UserFactory(email="owner@example.com")

    known = ask_for_a_reset(client, "owner@example.com")
    unknown = ask_for_a_reset(client, "stranger@example.com")

    assert unknown.redirect_chain == known.redirect_chain
    assert "Check your inbox" in unknown.content.decode()
    assert mailbox.received_by("stranger@example.com") == []


@pytest.mark.parametrize(
    "path",
    [
        "/user/password-reset/MQ/bad-token",
        "/user/password-reset/%00%ff/x",
        "/user/password-reset/zz/set-password",
    ],
)
def test_a_forged_link_shows_a_page_not_an_error(client, path):
    response = client.get(path, follow=True)

    assert response.status_code == 200
    assert "This link no longer works" in response.content.decode()


def test_an_address_gets_at_most_its_share_of_reset_e_mails(client, mailbox, settings):
    settings.MAIL_APE_PASSWORD_RESETS_PER_ADDRESS = "2/hour"
    user = UserFactory(email="koko@example.com")

    answers = [ask_for_a_reset(client, "KOKO@example.com") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert {answer.redirect_chain[-1][0] for answer in answers} == {
        reverse("user:password_reset_done")
    }
    assert len(mailbox.received_by(user.email)) == 2


def test_a_client_asking_too_often_is_asked_to_wait(client, mailbox, settings):
    settings.MAIL_APE_PASSWORD_RESETS_PER_CLIENT = "2/hour"

    for number in range(2):
        ask_for_a_reset(client, f"nobody{number}@example.com")
    answer = client.post(RESET, {"email": "nobody9@example.com"})

    assert answer.status_code == 429
    assert "Retry-After" in answer
