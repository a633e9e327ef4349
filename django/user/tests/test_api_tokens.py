import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from mailinglist.tests.factories import MailingListFactory
from user.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKENS = reverse("user:tokens")
REVOKE = reverse("user:revoke_token")
API_LISTS = reverse("mailinglist:api-mailing-list-list")


def api_status_with(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(API_LISTS)


def create_token(client):
    response = client.post(TOKENS, follow=True)
    return response, response.context["new_key"]


def test_the_nav_leads_to_the_token_page(client):
    client.force_login(UserFactory())

    page = client.get(reverse("mailinglist:mailinglist_list"))

    assert TOKENS in page.content.decode()


def test_the_token_page_needs_a_login(client):
    response = client.get(TOKENS)

    assert response.status_code == 302
    assert response.url.startswith(reverse("user:login"))


def test_a_new_token_is_shown_once_and_opens_the_api_for_its_owner(client):
    user = UserFactory()
    MailingListFactory(owner=user, name="Through a token")
    client.force_login(user)

    created, key = create_token(client)
    later = client.get(TOKENS)
    answer = api_status_with(key)

    assert key in created.content.decode()
    assert created.headers["Cache-Control"].startswith("max-age=0")
    assert "no-store" in created.headers["Cache-Control"]
    assert key not in later.content.decode()
    assert key[:4] in later.content.decode()
    assert answer.status_code == 200
    assert [item["name"] for item in answer.json()] == ["Through a token"]


def test_replacing_the_token_stops_the_old_one(client):
    client.force_login(UserFactory())
    _, old_key = create_token(client)

    replaced, new_key = create_token(client)

    assert new_key != old_key
    assert "old token no longer works" in replaced.content.decode()
    assert api_status_with(old_key).status_code == 401
    assert api_status_with(new_key).status_code == 200


def test_revoking_the_token_locks_the_api_to_it(client):
    client.force_login(UserFactory())
    _, key = create_token(client)

    revoked = client.post(REVOKE, follow=True)

    assert "Token revoked" in revoked.content.decode()
    assert api_status_with(key).status_code == 401


def test_following_a_link_to_revoke_changes_nothing(client):
    client.force_login(UserFactory())
    _, key = create_token(client)

    response = client.get(REVOKE)

    assert response.status_code == 405
    assert api_status_with(key).status_code == 200


def test_revoking_leaves_other_users_tokens_alone(client):
    other_token = Token.objects.create(user=UserFactory())
    client.force_login(UserFactory())
    create_token(client)

    client.post(REVOKE)

    assert Token.objects.get() == other_token
    assert api_status_with(other_token.key).status_code == 200


def test_a_token_reaches_only_its_owners_lists(client):
    theirs = MailingListFactory(name="Not yours")
    client.force_login(UserFactory())
    _, key = create_token(client)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    response = api.get(reverse("mailinglist:api-mailing-list-detail", kwargs={"pk": theirs.pk}))

    assert response.status_code == 404
