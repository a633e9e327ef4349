"""The book's curl session, over real HTTP against a running server."""

import json

from django.contrib.auth import get_user_model

from mailinglist.tests.api_helpers import basic_auth, call

API = "/mailinglist/api/v1"


def test_the_books_curl_session_works_as_printed(live_server):
    user = get_user_model().objects.create_user(username="user", password="secret")
    credentials = basic_auth("user", "secret")
    lists_url = f"{live_server.url}{API}/mailing-list"

    before = call(lists_url, headers=credentials)
    created = call(lists_url, "POST", credentials, {"name": "New List"})
    after = call(lists_url, headers=credentials)

    assert before.status == 200
    assert before.body == b"[]"
    assert created.status == 201
    new_list = created.json()
    # The book's fields first, in the book's order; the list's identity follows them.
    assert list(new_list)[:5] == ["url", "id", "name", "owner", "subscriber_set"]
    assert new_list["url"] == f"{live_server.url}{API}/mailinglist/{new_list['id']}"
    assert new_list["name"] == "New List"
    assert new_list["owner"] == user.pk
    assert new_list["subscriber_set"] == []
    assert new_list["archive"] is False
    assert after.json() == [new_list]


def test_a_request_without_credentials_is_asked_for_them(live_server):
    answer = call(f"{live_server.url}{API}/mailing-list")

    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert "detail" in json.loads(answer.body)
