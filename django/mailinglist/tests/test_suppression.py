"""The owner's suppression list: enforced wherever an address could get mail, and kept by
the owner on the web and through the API."""

import csv
import io

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from mailinglist import reputation
from mailinglist.delivery.claims import claim_batch
from mailinglist.imports.running import receive
from mailinglist.models import (
    Message,
    Subscriber,
    SubscriberImport,
    SubscriberMessage,
    Suppression,
)
from mailinglist.tests.factories import (
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
    pending_deliveries_for,
)
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailing_list():
    return MailingListFactory()


@pytest.fixture
def owner_client(client, mailing_list):
    client.login(username=mailing_list.owner.username, password=PASSWORD)
    return client


@pytest.fixture
def api(mailing_list):
    client = APIClient()
    client.force_authenticate(mailing_list.owner)
    return client


def suppress(mailing_list, email, reason=Suppression.Reason.HARD_BOUNCE):
    Suppression.suppress(mailing_list.owner_id, email, reason, "test")


def test_the_subscribe_page_looks_the_same_but_adds_and_mails_nothing(
    client, mailing_list, django_capture_on_commit_callbacks
):
    suppress(mailing_list, "Gone@Example.com")
    url = reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk})

    with django_capture_on_commit_callbacks(execute=True):
        suppressed = client.post(url, {"email": "gone@example.com"}, follow=True)
        welcome = client.post(url, {"email": "new@example.com"}, follow=True)

    assert suppressed.status_code == welcome.status_code == 200
    assert suppressed.redirect_chain == welcome.redirect_chain
    assert not Subscriber.objects.filter(email__iexact="gone@example.com").exists()
    assert [email.to for email in mail.outbox] == [["new@example.com"]]


def test_the_owner_cannot_add_a_suppressed_address_by_hand(owner_client, mailing_list):
    suppress(mailing_list, "gone@example.com", Suppression.Reason.COMPLAINT)

    response = owner_client.post(
        mailing_list.get_absolute_url(), {"email": "GONE@example.com", "agreed": "on"}
    )

    assert response.status_code == 400
    assert "suppression list (spam complaint)" in response.content.decode()
    assert not mailing_list.subscriber_set.exists()


def test_the_api_refuses_a_suppressed_address_alone_and_in_an_array(api, mailing_list):
    suppress(mailing_list, "gone@example.com")
    url = reverse("mailinglist:api-subscriber-list", kwargs={"mailing_list_pk": mailing_list.pk})

    single = api.post(url, {"email": "gone@example.com"}, format="json")
    bulk = api.post(
        url, [{"email": "ok@example.com"}, {"email": "Gone@example.com"}], format="json"
    )

    assert single.status_code == 400
    assert "suppression list" in single.json()["email"][0]
    assert [item["status"] for item in bulk.json()] == [201, 400]
    assert list(mailing_list.subscriber_set.values_list("email", flat=True)) == ["ok@example.com"]


def test_an_import_counts_suppressed_addresses_and_skips_them(
    mailing_list, django_capture_on_commit_callbacks
):
    suppress(mailing_list, "gone@example.com", Suppression.Reason.MANUAL)
    upload = SimpleUploadedFile("people.csv", b"email\r\nok@example.com\r\nGONE@example.com\r\n")
    with django_capture_on_commit_callbacks(execute=True):
        job = receive(
            mailing_list, upload, SubscriberImport.SubscriberStatus.CONFIRMED, preview=False
        )

    job.refresh_from_db()
    assert (job.added, job.suppressed) == (1, 1)
    assert "suppression list" in job.rejections.get().reason
    assert list(mailing_list.subscriber_set.values_list("email", flat=True)) == ["ok@example.com"]


@pytest.mark.also_on_sqlite
def test_a_confirmed_subscriber_suppressed_later_gets_no_copy(
    mailing_list, django_capture_on_commit_callbacks
):
    SubscriberFactory(mailing_list=mailing_list, email="kept@example.com")
    SubscriberFactory(mailing_list=mailing_list, email="quiet@example.com")
    suppress(mailing_list, "QUIET@example.com", Suppression.Reason.MANUAL)

    with django_capture_on_commit_callbacks(execute=True):
        message = MessageFactory(mailing_list=mailing_list)

    assert [email.to for email in mail.outbox] == [["kept@example.com"]]
    row = SubscriberMessage.objects.get(message=message, subscriber__email="quiet@example.com")
    assert row.status == SubscriberMessage.Status.SUPPRESSED
    assert message.delivery_counts()["suppressed"] == 1


@pytest.mark.also_on_sqlite
def test_a_copy_already_owed_is_suppressed_when_it_is_claimed(mailing_list):
    SubscriberFactory(mailing_list=mailing_list, email="kept@example.com")
    SubscriberFactory(mailing_list=mailing_list, email="quiet@example.com")
    message = MessageFactory(mailing_list=mailing_list, status=Message.Status.DRAFT)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENDING)
    message.refresh_from_db()
    pending_deliveries_for(message)
    suppress(mailing_list, "Quiet@Example.com", Suppression.Reason.MANUAL)

    claimed = claim_batch(message, 10, lease_seconds=60)

    assert [row.subscriber.email for row in claimed] == ["kept@example.com"]
    row = SubscriberMessage.objects.get(message=message, subscriber__email="quiet@example.com")
    assert row.status == SubscriberMessage.Status.SUPPRESSED


def test_the_owner_searches_adds_removes_and_exports_suppressions(owner_client, mailing_list):
    suppress(mailing_list, "bounced@example.com")
    page = reverse("mailinglist:suppression_list")

    added = owner_client.post(page, {"email": "by-hand@example.org"})
    again = owner_client.post(page, {"email": "BY-HAND@example.org"})
    found = owner_client.get(page, {"q": "example.org"}).content.decode()
    exported = owner_client.get(reverse("mailinglist:export_suppressions"))
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))

    assert added.status_code == 302
    assert again.status_code == 400
    assert "by-hand@example.org" in found
    assert "bounced@example.com" not in found
    assert {(row["email"], row["reason"]) for row in rows} == {
        ("bounced@example.com", "hard_bounce"),
        ("by-hand@example.org", "manual"),
    }

    suppression = Suppression.objects.get(email="by-hand@example.org")
    owner_client.post(reverse("mailinglist:remove_suppression", kwargs={"pk": suppression.pk}))
    assert not Suppression.objects.filter(pk=suppression.pk).exists()


def test_the_api_keeps_the_suppression_list(api, mailing_list):
    url = reverse("mailinglist:api-suppression-list")

    created = api.post(url, {"email": "nobody@example.com"}, format="json")
    duplicate = api.post(url, {"email": "NOBODY@example.com"}, format="json")
    listed = api.get(url, {"search": "nobody"})
    exported = b"".join(api.get(reverse("mailinglist:api-suppression-export")).streaming_content)
    deleted = api.delete(created.json()["url"])

    assert created.status_code == 201
    assert created.json()["reason"] == "manual"
    assert duplicate.status_code == 400
    assert [item["email"] for item in listed.json()] == ["nobody@example.com"]
    assert listed["X-Total-Count"] == "1"
    assert b"nobody@example.com" in exported
    assert deleted.status_code == 204
    assert not Suppression.objects.exists()


def test_another_user_gets_404_on_every_reputation_page_and_route(client, mailing_list):
    suppress(mailing_list, "gone@example.com")
    suppression = Suppression.objects.get()
    subscriber = SubscriberFactory(mailing_list=mailing_list)
    stranger = UserFactory()
    client.login(username=stranger.username, password=PASSWORD)
    api = APIClient()
    api.force_authenticate(stranger)

    pages = [
        reverse("mailinglist:subscriber_detail", kwargs={"pk": subscriber.pk}),
        reverse("mailinglist:mailinglist_figures", kwargs={"pk": mailing_list.pk}),
    ]
    for url in pages:
        assert client.get(url).status_code == 404
    removal = reverse("mailinglist:remove_suppression", kwargs={"pk": suppression.pk})
    assert client.post(removal).status_code == 404
    assert (
        "gone@example.com"
        not in client.get(reverse("mailinglist:suppression_list")).content.decode()
    )
    detail = reverse("mailinglist:api-suppression-detail", kwargs={"pk": suppression.pk})
    assert api.get(detail).status_code == 404
    assert api.delete(detail).status_code == 404
    figures = reverse("mailinglist:api-mailing-list-figures", kwargs={"pk": mailing_list.pk})
    assert api.get(figures).status_code == 404
    assert api.get(reverse("mailinglist:api-suppression-list")).json() == []
    assert Suppression.objects.filter(pk=suppression.pk).exists()


def test_a_subscribers_page_shows_each_copy_and_its_bounce(
    owner_client, mailing_list, django_capture_on_commit_callbacks
):
    subscriber = SubscriberFactory(mailing_list=mailing_list, email="reader@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        message = MessageFactory(mailing_list=mailing_list, subject="Banana news")
    row = SubscriberMessage.objects.select_related("subscriber").get(message=message)

    reputation.record(
        row,
        reputation.Report(reputation.Kind.HARD_BOUNCE, "process_bounce", "5.1.1 User unknown"),
    )

    page = owner_client.get(
        reverse("mailinglist:subscriber_detail", kwargs={"pk": subscriber.pk})
    ).content.decode()

    assert "Banana news" in page
    assert "Bounced" in page
    assert "5.1.1 User unknown" in page
    assert 'id="suppressed"' in page
