import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

OWNER_PAGES = [
    "user:password_change",
    "user:password_change_done",
    "user:change_email",
    "user:delete_account",
]
PUBLIC_PAGES = [
    "user:password_reset",
    "user:password_reset_done",
    "user:password_reset_complete",
    "user:account_deleted",
]


@pytest.mark.parametrize("name", OWNER_PAGES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_anonymous_visitor_is_sent_to_log_in(client, name, method):
    response = getattr(client, method)(reverse(name))

    assert response.status_code == 302
    assert response.url.startswith(reverse("user:login"))


@pytest.mark.parametrize("name", PUBLIC_PAGES)
def test_the_pages_about_a_lost_password_and_the_goodbye_need_no_login(client, name):
    assert client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/user/password-reset/x/y",
        "/user/password-reset/%C3%28/set-password",
        "/user/email/confirm/%00",
        "/user/email/confirm/" + "Z" * 2000,
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_bad_link_is_a_kind_page_not_an_error(client, path, method):
    response = getattr(client, method)(path, follow=True)

    assert response.status_code in (200, 400)
    assert "This link no longer works" in response.content.decode()
