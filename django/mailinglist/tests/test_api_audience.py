"""Subscribers' names and custom fields, adding many at once, counting and finding them."""

import base64

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from mailinglist.models import Subscriber
from mailinglist.paging import SEARCH_EXACT_COUNT_LIMIT
from mailinglist.tests.api_helpers import api_client_for, link_relations
from mailinglist.tests.factories import MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def subscribers_of(mailing_list):
    return reverse("mailinglist:api-subscriber-list", kwargs={"mailing_list_pk": mailing_list.pk})


def test_a_subscriber_keeps_a_name_and_custom_fields(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()
    client = api_client_for(mailing_list.owner)

    created = client.post(
        subscribers_of(mailing_list),
        {"email": "koko@example.com", "confirmed": True, "name": "Koko", "fields": {"zoo": "SF"}},
        format="json",
    )
    changed = client.patch(
        created.json()["url"], {"fields": {"zoo": "Gorilla Foundation"}}, format="json"
    )

    assert created.status_code == 201
    assert (created.json()["name"], created.json()["fields"]) == ("Koko", {"zoo": "SF"})
    assert changed.json()["fields"] == {"zoo": "Gorilla Foundation"}
    assert Subscriber.objects.get().fields == {"zoo": "Gorilla Foundation"}


@pytest.mark.parametrize(
    "fields",
    [["zoo"], {"Zoo Name": "SF"}, {"zoo": 42}, {"zoo": "x" * 1001}, {"zoo": "S\u0000F"}, "zoo"],
)
def test_custom_fields_a_merge_tag_could_not_name_are_refused(fields):
    mailing_list = MailingListFactory()

    response = api_client_for(mailing_list.owner).post(
        subscribers_of(mailing_list), {"email": "koko@example.com", "fields": fields}, format="json"
    )

    assert response.status_code == 400
    assert "fields" in response.json()
    assert not Subscriber.objects.exists()


def test_an_array_adds_many_and_answers_for_each(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()
    SubscriberFactory(mailing_list=mailing_list, email="old@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(mailing_list.owner).post(
            subscribers_of(mailing_list),
            [
                {"email": "a@example.com", "confirmed": True, "name": "A"},
                {"email": "OLD@example.com"},
                {"email": "b@example.com"},
                {"email": "A@example.com"},
            ],
            format="json",
        )

    assert response.status_code == 200
    results = response.json()
    assert [result["status"] for result in results] == [201, 400, 201, 400]
    assert results[0]["subscriber"]["name"] == "A"
    assert results[1]["errors"] == {"email": ["This e-mail address is already on the list."]}
    assert sorted(mailing_list.subscriber_set.values_list("email", flat=True)) == [
        "a@example.com",
        "b@example.com",
        "old@example.com",
    ]
    [confirmation] = mail.outbox
    assert confirmation.to == ["b@example.com"]


def test_an_array_with_an_invalid_item_adds_nobody():
    mailing_list = MailingListFactory()

    response = api_client_for(mailing_list.owner).post(
        subscribers_of(mailing_list),
        [{"email": "a@example.com"}, {"email": "not an address"}, {"name": "no address"}],
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()) == {"1", "2"}
    assert response.json()["2"] == ["email: This field is required."]
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize("size", [0, 1001])
def test_an_empty_or_too_long_array_is_refused(size):
    mailing_list = MailingListFactory()

    response = api_client_for(mailing_list.owner).post(
        subscribers_of(mailing_list),
        [{"email": f"a{n}@example.com"} for n in range(size)],
        format="json",
    )

    assert response.status_code == 400
    assert not Subscriber.objects.exists()


def test_a_list_embeds_at_most_100_subscribers_and_counts_them_all():
    mailing_list = MailingListFactory()
    Subscriber.objects.bulk_create(
        Subscriber(mailing_list=mailing_list, email=f"r{n:03}@example.com", confirmed=n % 2 == 0)
        for n in range(150)
    )

    body = (
        api_client_for(mailing_list.owner)
        .get(reverse("mailinglist:api-mailing-list-detail", kwargs={"pk": mailing_list.pk}))
        .json()
    )

    assert len(body["subscriber_set"]) == 100
    first = mailing_list.subscriber_set.get(email="r000@example.com")
    assert body["subscriber_set"][0].endswith(
        reverse("mailinglist:api-subscriber-detail", kwargs={"pk": first.pk})
    )
    assert (body["subscriber_count"], body["confirmed_count"]) == (150, 75)


def test_pages_carry_the_total_count_and_can_be_searched_and_filtered():
    mailing_list = MailingListFactory()
    SubscriberFactory(mailing_list=mailing_list, email="Koko@Gorillas.example")
    SubscriberFactory(mailing_list=mailing_list, email="michael@gorillas.example", confirmed=False)
    SubscriberFactory(
        mailing_list=mailing_list,
        email="ndume@gorillas.example",
        confirmed=False,
        unsubscribed=timezone.now(),
    )
    SubscriberFactory(mailing_list=mailing_list, email="bonobo@apes.example")
    client = api_client_for(mailing_list.owner)

    everyone = client.get(subscribers_of(mailing_list), {"page_size": 2})
    gorillas = client.get(subscribers_of(mailing_list), {"search": "GORILLA"})
    unconfirmed = client.get(subscribers_of(mailing_list), {"status": "unconfirmed"})

    assert everyone["X-Total-Count"] == "4"
    assert len(everyone.json()) == 2
    assert [item["email"] for item in gorillas.json()] == [
        "Koko@Gorillas.example",
        "michael@gorillas.example",
        "ndume@gorillas.example",
    ]
    assert gorillas["X-Total-Count"] == "3"
    assert [item["email"] for item in unconfirmed.json()] == ["michael@gorillas.example"]
    assert client.get(subscribers_of(mailing_list), {"status": "nope"}).status_code == 400


def test_it_walks_a_whole_list_by_its_next_links_without_missing_or_repeating_anyone():
    mailing_list = MailingListFactory()
    addresses = ["ape@a.example", "Ape@b.example", "bonobo@a.example", "chimp@a.example"]
    addresses += [f"gorilla{n}@a.example" for n in range(5)]
    for address in addresses:
        SubscriberFactory(mailing_list=mailing_list, email=address)
    client = api_client_for(mailing_list.owner)

    seen = []
    response = client.get(subscribers_of(mailing_list), {"page_size": 2})
    while True:
        assert response.status_code == 200
        assert response["X-Total-Count"] == str(len(addresses))
        seen += [item["email"] for item in response.json()]
        links = link_relations(response)
        if "next" not in links:
            break
        assert "cursor=" in links["next"]
        assert "page_size=2" in links["next"]
        response = client.get(links["next"])

    assert sorted(seen) == sorted(addresses)
    assert len(seen) == len(addresses)
    assert set(links) == {"first", "last"}


def test_it_keeps_a_search_on_the_next_links_and_a_page_number_still_reaches_any_page():
    mailing_list = MailingListFactory()
    for n in range(7):
        SubscriberFactory(mailing_list=mailing_list, email=f"gorilla{n}@apes.example")
        SubscriberFactory(mailing_list=mailing_list, email=f"chimp{n}@apes.example")
    client = api_client_for(mailing_list.owner)

    first = client.get(subscribers_of(mailing_list), {"search": "GORILLA", "page_size": 3})
    second = client.get(link_relations(first)["next"])
    third_by_number = client.get(
        subscribers_of(mailing_list), {"search": "gorilla", "page_size": 3, "page": 3}
    )

    assert [item["email"] for item in second.json()] == [
        f"gorilla{n}@apes.example" for n in (3, 4, 5)
    ]
    assert [item["email"] for item in third_by_number.json()] == ["gorilla6@apes.example"]
    assert second["X-Total-Count"] == "7"


@pytest.mark.parametrize(
    "data",
    [
        "[1, 2]",
        '["koko@example.com"]',
        '["koko@example.com", "not a uuid"]',
        '["ko\\u0000ko@example.com", "00000000-0000-0000-0000-000000000000"]',
        '["\\ud800@example.com", "00000000-0000-0000-0000-000000000000"]',
        '{"email": "koko@example.com"}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_a_cursor_no_link_gave_is_a_bad_request(data):
    mailing_list = MailingListFactory()
    client = api_client_for(mailing_list.owner)
    cursors = ["not base64 at all!", base64.urlsafe_b64encode(data.encode()).decode()]

    for cursor in cursors:
        response = client.get(subscribers_of(mailing_list), {"cursor": cursor})

        assert response.status_code == 400
        assert "cursor" in response.json()


def test_a_search_matching_more_than_a_thousand_says_its_count_is_an_estimate():
    mailing_list = MailingListFactory()
    Subscriber.objects.bulk_create(
        Subscriber(mailing_list=mailing_list, email=f"gorilla{n}@apes.example", confirmed=True)
        for n in range(SEARCH_EXACT_COUNT_LIMIT + 1)
    )
    client = api_client_for(mailing_list.owner)

    everyone = client.get(subscribers_of(mailing_list))
    gorillas = client.get(subscribers_of(mailing_list), {"search": "gorilla"})

    assert everyone["X-Total-Count"] == str(SEARCH_EXACT_COUNT_LIMIT + 1)
    assert "X-Total-Count-Estimated" not in everyone
    assert int(gorillas["X-Total-Count"]) > SEARCH_EXACT_COUNT_LIMIT
    assert gorillas["X-Total-Count-Estimated"] == "true"
