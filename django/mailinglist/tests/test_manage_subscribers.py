"""The list's subscribers on its manage page: found, filtered, paged, added and acted on."""

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from mailinglist.models import Subscriber
from mailinglist.tests.factories import MailingListFactory, SubscriberFactory
from user.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailing_list():
    mailing_list = MailingListFactory(name="Banana Facts")
    SubscriberFactory(mailing_list=mailing_list, email="Koko@Gorillas.example", name="Koko")
    SubscriberFactory(mailing_list=mailing_list, email="michael@gorillas.example", confirmed=False)
    SubscriberFactory(
        mailing_list=mailing_list,
        email="ndume@gorillas.example",
        confirmed=False,
        unsubscribed=timezone.now(),
    )
    SubscriberFactory(mailing_list=mailing_list, email="bonobo@apes.example")
    return mailing_list


def manage(client, mailing_list, **query):
    client.force_login(mailing_list.owner)
    return client.get(mailing_list.get_absolute_url(), query)


def listed(response):
    return [subscriber.email for subscriber in response.context["subscriber_page"]]


def test_the_search_finds_part_of_an_address_in_any_letter_case(client, mailing_list):
    response = manage(client, mailing_list, q="GORILLAS")

    assert listed(response) == [
        "Koko@Gorillas.example",
        "michael@gorillas.example",
        "ndume@gorillas.example",
    ]


def test_the_status_filter_shows_only_that_status(client, mailing_list):
    assert listed(manage(client, mailing_list, status="unconfirmed")) == [
        "michael@gorillas.example"
    ]
    assert listed(manage(client, mailing_list, status="unsubscribed", q="ndume")) == [
        "ndume@gorillas.example"
    ]


def test_the_page_counts_each_status(client, mailing_list):
    page = manage(client, mailing_list).content.decode()

    assert "2 confirmed of 4" in page
    assert "2 confirmed · 1 unconfirmed · 1 unsubscribed" in page


def test_an_unknown_status_or_a_bad_page_shows_a_page_not_an_error(client, mailing_list):
    assert len(listed(manage(client, mailing_list, status="nonsense"))) == 4
    assert manage(client, mailing_list, page="banana").context["subscriber_page"].number == 1


def test_a_page_number_past_the_end_shows_the_last_page(client):
    mailing_list = MailingListFactory()
    Subscriber.objects.bulk_create(
        Subscriber(mailing_list=mailing_list, email=f"r{n:03}@example.com") for n in range(120)
    )

    page = manage(client, mailing_list, page="99").context["subscriber_page"]

    assert (page.number, page.paginator.num_pages) == (3, 3)
    assert [subscriber.email for subscriber in page] == [
        f"r{n:03}@example.com" for n in range(100, 120)
    ]


def test_a_later_page_keeps_the_search(client):
    mailing_list = MailingListFactory()
    Subscriber.objects.bulk_create(
        Subscriber(mailing_list=mailing_list, email=f"ape{n:03}@example.com") for n in range(60)
    )

    page = manage(client, mailing_list, q="ape").content.decode()

    assert "?q=ape&amp;page=2" in page


def test_an_owner_adds_someone_who_agreed_without_an_email(client, mailing_list):
    client.force_login(mailing_list.owner)

    response = client.post(
        mailing_list.get_absolute_url(),
        {"email": "new@example.com", "name": "New Ape", "agreed": "on"},
    )

    assert response.status_code == 302
    new = mailing_list.subscriber_set.get(email="new@example.com")
    assert (new.name, new.status) == ("New Ape", "confirmed")
    assert mail.outbox == []


def test_someone_added_without_their_word_is_asked_to_confirm(
    client, mailing_list, django_capture_on_commit_callbacks
):
    client.force_login(mailing_list.owner)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(mailing_list.get_absolute_url(), {"email": "ask@example.com"})

    assert mailing_list.subscriber_set.get(email="ask@example.com").status == "unconfirmed"
    [confirmation] = mail.outbox
    assert confirmation.to == ["ask@example.com"]


@pytest.mark.parametrize(
    ("email", "says"),
    [
        ("KOKO@gorillas.example", "already on the list"),
        ("ndume@gorillas.example", "unsubscribed from this list"),
        ("not an address", "Enter a valid email address"),
    ],
)
def test_adding_an_address_that_cannot_be_added_says_why(client, mailing_list, email, says):
    client.force_login(mailing_list.owner)

    response = client.post(mailing_list.get_absolute_url(), {"email": email, "agreed": "on"})

    assert response.status_code == 400
    assert says in response.content.decode()
    assert mailing_list.subscriber_set.count() == 4


def action(subscriber, name):
    return reverse(f"mailinglist:{name}_subscriber", kwargs={"pk": subscriber.pk})


def test_unsubscribing_and_removing_from_a_row_go_back_to_the_same_search(client, mailing_list):
    client.force_login(mailing_list.owner)
    koko = mailing_list.subscriber_set.get(email="Koko@Gorillas.example")
    bonobo = mailing_list.subscriber_set.get(email="bonobo@apes.example")
    back = mailing_list.get_absolute_url() + "?q=gorillas"

    unsubscribed = client.post(action(koko, "unsubscribe"), {"next": back})
    removed = client.post(action(bonobo, "remove"), {"next": back})

    assert unsubscribed.url == removed.url == back
    koko.refresh_from_db()
    assert koko.status == "unsubscribed"
    assert not mailing_list.subscriber_set.filter(email="bonobo@apes.example").exists()


def test_resending_a_confirmation_sends_one_only_to_the_unconfirmed(
    client, mailing_list, django_capture_on_commit_callbacks
):
    client.force_login(mailing_list.owner)
    # Imported long ago: no confirmation e-mail has gone to them lately.
    [michael] = Subscriber.objects.bulk_create(
        [Subscriber(mailing_list=mailing_list, email="michael@chimps.example")]
    )
    koko = mailing_list.subscriber_set.get(email="Koko@Gorillas.example")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(action(michael, "resend"))
        client.post(action(koko, "resend"))
        page = client.get(mailing_list.get_absolute_url()).content.decode()

    assert [email.to for email in mail.outbox] == [["michael@chimps.example"]]
    assert "koko@gorillas.example is confirmed: no confirmation to send" in page.lower()


def test_an_action_by_get_changes_nothing(client, mailing_list):
    client.force_login(mailing_list.owner)
    koko = mailing_list.subscriber_set.get(email="Koko@Gorillas.example")

    assert client.get(action(koko, "remove")).status_code == 405
    assert mailing_list.subscriber_set.filter(pk=koko.pk).exists()


def test_an_action_never_leads_off_the_site(client, mailing_list):
    client.force_login(mailing_list.owner)
    koko = mailing_list.subscriber_set.get(email="Koko@Gorillas.example")

    response = client.post(action(koko, "unsubscribe"), {"next": "https://evil.example/"})

    assert response.url == mailing_list.get_absolute_url()


@pytest.mark.parametrize("name", ["remove", "unsubscribe", "resend"])
def test_another_users_subscriber_answers_404_and_stays(client, mailing_list, name):
    koko = mailing_list.subscriber_set.get(email="Koko@Gorillas.example")
    client.force_login(UserFactory())

    assert client.post(action(koko, name)).status_code == 404
    koko.refresh_from_db()
    assert koko.status == "confirmed"


def test_another_user_cannot_add_to_the_list(client, mailing_list):
    client.force_login(UserFactory())

    response = client.post(mailing_list.get_absolute_url(), {"email": "x@example.com"})

    assert response.status_code == 404
    assert mailing_list.subscriber_set.count() == 4


def test_each_row_offers_the_actions_its_status_allows_through_the_pages_one_form(
    client, mailing_list
):
    page = manage(client, mailing_list, q="gorillas").content.decode()
    koko, michael, ndume = (
        mailing_list.subscriber_set.get(email__istartswith=name)
        for name in ("koko", "michael", "ndume")
    )

    assert page.count('form="subscriber-action"') == 3 + 2 + 1
    assert f'name="next" value="{mailing_list.get_absolute_url()}?q=gorillas"' in page
    assert f'formaction="{action(michael, "resend")}"' in page
    assert f'formaction="{action(koko, "resend")}"' not in page
    assert f'formaction="{action(ndume, "unsubscribe")}"' not in page
    assert f'formaction="{action(ndume, "remove")}"' in page
    assert f'href="{reverse("mailinglist:subscriber_detail", kwargs={"pk": koko.pk})}"' in page
