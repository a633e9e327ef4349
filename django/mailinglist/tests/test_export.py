"""A list's subscribers downloaded as CSV, on the web and through the API."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from mailinglist.tests.api_helpers import api_client_for
from mailinglist.tests.factories import MailingListFactory, SubscriberFactory
from user.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def web_export(mailing_list):
    return reverse("mailinglist:export_subscribers", kwargs={"pk": mailing_list.pk})


def api_export(mailing_list):
    return reverse("mailinglist:api-subscriber-export", kwargs={"mailing_list_pk": mailing_list.pk})


def read_back(response):
    assert response.streaming
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def mailing_list():
    mailing_list = MailingListFactory(name="Banana Facts")
    SubscriberFactory(
        mailing_list=mailing_list,
        email="koko@example.com",
        name="Koko",
        fields={"company": "Banana Co", "city": "Congo"},
    )
    SubscriberFactory(mailing_list=mailing_list, email="new@example.com", confirmed=False)
    SubscriberFactory(
        mailing_list=mailing_list,
        email="gone@example.com",
        confirmed=False,
        unsubscribed=timezone.now(),
    )
    SubscriberFactory(email="someone-else@example.com")
    return mailing_list


def test_the_export_read_back_equals_the_list(client, mailing_list):
    client.force_login(mailing_list.owner)

    response = client.get(web_export(mailing_list))

    rows = read_back(response)
    assert response["Content-Disposition"] == 'attachment; filename="banana-facts-subscribers.csv"'
    assert list(rows[0]) == [
        "email",
        "name",
        "status",
        "created",
        "confirmed",
        "unsubscribed",
        "city",
        "company",
    ]
    by_email = {row["email"]: row for row in rows}
    assert set(by_email) == {"koko@example.com", "new@example.com", "gone@example.com"}
    koko = mailing_list.subscriber_set.get(email="koko@example.com")
    assert by_email["koko@example.com"] == {
        "email": "koko@example.com",
        "name": "Koko",
        "status": "confirmed",
        "created": koko.created.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
        "confirmed": "true",
        "unsubscribed": "",
        "city": "Congo",
        "company": "Banana Co",
    }
    assert by_email["gone@example.com"]["status"] == "unsubscribed"
    assert by_email["gone@example.com"]["unsubscribed"]
    assert by_email["new@example.com"]["status"] == "unconfirmed"


def test_the_export_can_be_only_one_status(mailing_list):
    response = api_client_for(mailing_list.owner).get(
        api_export(mailing_list), {"status": "unsubscribed"}
    )

    assert [row["email"] for row in read_back(response)] == ["gone@example.com"]


def test_an_unknown_status_is_refused(client, mailing_list):
    client.force_login(mailing_list.owner)

    assert client.get(web_export(mailing_list), {"status": "sometimes"}).status_code == 400
    response = api_client_for(mailing_list.owner).get(
        api_export(mailing_list), {"status": "sometimes"}
    )
    assert response.status_code == 400
    assert "status" in response.json()


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_escaped(client):
    mailing_list = MailingListFactory()
    SubscriberFactory(
        mailing_list=mailing_list,
        email="sheet@example.com",
        name='=HYPERLINK("http://evil.example")',
        fields={"note": "+1", "other": "@SUM(A1)", "minus": "-2", "tab": "\tx"},
    )
    client.force_login(mailing_list.owner)

    [row] = read_back(client.get(web_export(mailing_list)))

    assert row["name"] == '\'=HYPERLINK("http://evil.example")'
    assert (row["note"], row["other"], row["minus"], row["tab"]) == (
        "'+1",
        "'@SUM(A1)",
        "'-2",
        "'\tx",
    )


def test_another_user_gets_404_and_nobody_else_gets_in(client, mailing_list):
    stranger = UserFactory()
    client.force_login(stranger)

    assert client.get(web_export(mailing_list)).status_code == 404
    assert api_client_for(stranger).get(api_export(mailing_list)).status_code == 404
    client.logout()
    assert client.get(web_export(mailing_list)).status_code == 302


@pytest.mark.also_on_sqlite
def test_the_export_writes_the_same_bytes_on_every_database(client):
    mailing_list = MailingListFactory(name="Same Bytes")
    SubscriberFactory(
        mailing_list=mailing_list,
        email="koko@example.com",
        name='Koko "the" Gorilla',
        fields={"zoo": "=SF", "note": "a,b"},
        created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    SubscriberFactory(
        mailing_list=mailing_list,
        email="gone@example.com",
        confirmed=False,
        created=datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC),
        unsubscribed=datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    client.force_login(mailing_list.owner)

    body = b"".join(client.get(web_export(mailing_list)).streaming_content).decode()

    assert body == (
        '"email","name","status","created","confirmed","unsubscribed","note","zoo"\r\n'
        '"gone@example.com","","unsubscribed","2026-01-02T03:04:05.000600+00:00","false",'
        '"2026-02-03T04:05:06.000000+00:00","",""\r\n'
        '"koko@example.com","Koko ""the"" Gorilla","confirmed",'
        '"2026-01-02T03:04:05.000000+00:00","true","","a,b","\'=SF"\r\n'
    )
