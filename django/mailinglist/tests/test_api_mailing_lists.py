import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from mailinglist.models import MailingList
from mailinglist.tests.api_helpers import api_client_for, link_relations
from mailinglist.tests.factories import MailingListFactory, SubscriberFactory
from user.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LISTS = reverse("mailinglist:api-mailing-list-list")


def detail(mailing_list):
    return reverse("mailinglist:api-mailing-list-detail", kwargs={"pk": mailing_list.pk})


def test_a_new_user_has_no_lists_then_sees_the_one_they_create():
    user = UserFactory()
    client = api_client_for(user)

    assert client.get(LISTS).json() == []

    created = client.post(LISTS, {"name": "New List"}, format="json")

    assert created.status_code == 201
    body = created.json()
    mailing_list = MailingList.objects.get()
    assert body == {
        "url": f"http://testserver{detail(mailing_list)}",
        "id": str(mailing_list.pk),
        "name": "New List",
        "owner": user.pk,
        "subscriber_set": [],
        "from_name": "",
        "from_email": "",
        "reply_to": "",
        "description": "",
        "thank_you_text": "",
        "confirmation_text": "",
        "subscribed_url": "",
        "confirmed_url": "",
        "archive": False,
        "subscriber_count": 0,
        "confirmed_count": 0,
    }
    assert mailing_list.owner == user
    assert client.get(LISTS).json() == [body]


def test_it_lists_only_the_callers_lists():
    mine = MailingListFactory(name="Mine")
    MailingListFactory(name="Theirs")

    names = [item["name"] for item in api_client_for(mine.owner).get(LISTS).json()]

    assert names == ["Mine"]


def test_it_links_each_subscriber_of_a_list():
    subscriber = SubscriberFactory()

    body = api_client_for(subscriber.mailing_list.owner).get(detail(subscriber.mailing_list)).json()

    assert body["subscriber_set"] == [
        "http://testserver"
        + reverse("mailinglist:api-subscriber-detail", kwargs={"pk": subscriber.pk})
    ]


def test_the_owner_renames_with_put_and_patch_but_cannot_change_the_owner():
    mailing_list = MailingListFactory(name="Old")
    client = api_client_for(mailing_list.owner)
    someone_else = UserFactory()

    put = client.put(detail(mailing_list), {"name": "Put", "owner": someone_else.pk}, format="json")
    patch = client.patch(
        detail(mailing_list), {"name": "Patched", "owner": someone_else.pk}, format="json"
    )

    assert put.status_code == 200
    assert patch.status_code == 200
    assert patch.json()["owner"] == mailing_list.owner.pk
    mailing_list.refresh_from_db()
    assert mailing_list.name == "Patched"
    assert mailing_list.owner != someone_else


def test_creating_a_list_for_someone_else_still_makes_it_the_callers():
    user = UserFactory()
    someone_else = UserFactory()

    api_client_for(user).post(LISTS, {"name": "Mine", "owner": someone_else.pk}, format="json")

    assert MailingList.objects.get().owner == user


def test_the_owner_deletes_a_list():
    mailing_list = MailingListFactory()

    response = api_client_for(mailing_list.owner).delete(detail(mailing_list))

    assert response.status_code == 204
    assert not MailingList.objects.exists()


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("put", {"name": "Mine now"}),
        ("patch", {"name": "Mine now"}),
        ("delete", None),
    ],
)
def test_it_hides_another_users_list(method, body):
    mailing_list = MailingListFactory(name="Private")
    stranger = api_client_for(UserFactory())

    response = getattr(stranger, method)(detail(mailing_list), body, format="json")

    assert response.status_code == 404
    assert "Private" not in response.content.decode()
    mailing_list.refresh_from_db()
    assert mailing_list.name == "Private"


def test_it_asks_for_credentials_and_stores_nothing_without_them():
    response = APIClient().post(LISTS, {"name": "Anonymous"}, format="json")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert not MailingList.objects.exists()


def test_wrong_credentials_are_refused():
    user = UserFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + "bm9ib2R5Ondyb25n")

    assert client.get(LISTS).status_code == 401
    assert user.mailinglist_set.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "Line one\r\nBcc: victim@example.com"}, "name"),
        ({"name": "x" * 141}, "name"),
        ({"name": 42}, "name"),
    ],
)
def test_it_names_the_field_that_is_wrong(body, field):
    user = UserFactory()

    response = api_client_for(user).post(LISTS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not MailingList.objects.exists()


def test_malformed_json_is_a_bad_request():
    response = api_client_for(UserFactory()).post(
        LISTS, '{"name": "New List"', content_type="application/json"
    )

    assert response.status_code == 400
    assert "detail" in response.json()
    assert not MailingList.objects.exists()


def test_a_body_that_is_not_json_is_refused_as_unsupported():
    response = api_client_for(UserFactory()).post(
        LISTS, "name=New+List", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert not MailingList.objects.exists()


def test_large_collections_come_in_pages_linked_from_the_headers():
    user = UserFactory()
    for number in range(5):
        MailingListFactory(owner=user, name=f"List {number}")
    client = api_client_for(user)

    first = client.get(LISTS, {"page_size": 2})
    links = link_relations(first)
    second = client.get(links["next"])
    last = client.get(link_relations(second)["last"])

    assert len(first.json()) == 2
    assert set(links) == {"first", "next", "last"}
    assert len(second.json()) == 2
    assert set(link_relations(second)) == {"first", "prev", "next", "last"}
    assert len(last.json()) == 1
    assert "next" not in link_relations(last)
    seen = [item["name"] for page in (first, second, last) for item in page.json()]
    assert sorted(seen) == [f"List {number}" for number in range(5)]


def test_a_page_past_the_end_is_empty_and_a_nonsense_page_is_a_bad_request():
    user = UserFactory()
    MailingListFactory(owner=user)
    client = api_client_for(user)

    past_the_end = client.get(LISTS, {"page": 7})
    nonsense = client.get(LISTS, {"page": "zero"})

    assert past_the_end.status_code == 200
    assert past_the_end.json() == []
    assert nonsense.status_code == 400
    assert "page" in nonsense.json()


def test_the_page_size_is_capped():
    user = UserFactory()
    MailingListFactory.create_batch(3, owner=user)

    response = api_client_for(user).get(LISTS, {"page_size": 10**6})

    assert response.status_code == 200
    assert len(response.json()) == 3


def test_a_logged_in_browser_uses_the_api_but_must_show_its_csrf_token_to_write():
    user = UserFactory()
    MailingListFactory(owner=user, name="From the browser")
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)

    read = browser.get(LISTS)
    forged = browser.post(LISTS, {"name": "Forged"}, format="json")
    browser.get(reverse("user:tokens"))
    written = browser.post(
        LISTS,
        {"name": "Mine"},
        format="json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )

    assert [item["name"] for item in read.json()] == ["From the browser"]
    assert forged.status_code == 403
    assert written.status_code == 201
    assert sorted(user.mailinglist_set.values_list("name", flat=True)) == [
        "From the browser",
        "Mine",
    ]
