"""The public subscribe form cannot be used to flood inboxes or lists."""

import urllib.error

import pytest
from django.core import mail
from django.urls import reverse

from mailinglist.models import Subscriber
from mailinglist.tests.api_helpers import running_servers
from mailinglist.tests.factories import MailingListFactory
from mailinglist.tests.test_end_to_end import Browserless

pytestmark = pytest.mark.django_db


def subscribe(client, mailing_list, email, address="203.0.113.7", **fields):
    return client.post(
        reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk}),
        {"email": email, **fields},
        REMOTE_ADDR=address,
    )


def test_one_client_address_gets_a_friendly_429_after_its_share(client, settings):
    settings.MAIL_APE_SUBSCRIBE_RATE_PER_CLIENT = "3/hour"
    mailing_list = MailingListFactory()

    answers = [subscribe(client, mailing_list, f"reader{n}@example.com") for n in range(4)]
    elsewhere = subscribe(client, mailing_list, "other@example.com", address="198.51.100.1")

    assert [answer.status_code for answer in answers] == [302, 302, 302, 429]
    assert 3000 < int(answers[-1]["Retry-After"]) <= 3600
    assert b"Please try again in 60 minutes" in answers[-1].content
    assert elsewhere.status_code == 302
    assert Subscriber.objects.count() == 4


def test_one_list_gets_a_429_after_its_share_from_everyone(client, settings):
    settings.MAIL_APE_SUBSCRIBE_RATE_PER_LIST = "2/hour"
    bombed, quiet = MailingListFactory(), MailingListFactory()

    answers = [
        subscribe(client, bombed, f"reader{n}@example.com", address=f"192.0.2.{n}")
        for n in range(3)
    ]

    assert [answer.status_code for answer in answers] == [302, 302, 429]
    assert subscribe(client, quiet, "reader@example.com").status_code == 302


def test_one_address_gets_at_most_its_share_of_confirmations_from_all_lists(
    client, django_capture_on_commit_callbacks
):
    lists = [MailingListFactory() for _ in range(10)]

    with django_capture_on_commit_callbacks(execute=True):
        for number, mailing_list in enumerate(lists):
            subscribe(client, mailing_list, "Victim@example.com", address=f"192.0.2.{number}")

    assert len(mail.outbox) == 3
    assert {email.to[0] for email in mail.outbox} == {"Victim@example.com"}


def test_a_bot_that_fills_the_hidden_field_is_thanked_and_ignored(
    client, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory()

    with django_capture_on_commit_callbacks(execute=True):
        answer = subscribe(client, mailing_list, "bot@example.com", website="https://spam.example")

    assert answer.status_code == 302
    assert answer.url == reverse("mailinglist:subscriber_thankyou", kwargs={"pk": mailing_list.pk})
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


def test_the_hidden_field_is_hidden_from_people(client):
    page = client.get(
        reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": MailingListFactory().pk})
    )

    assert b'<div class="visually-hidden" aria-hidden="true">' in page.content
    assert b'name="website"' in page.content


@pytest.mark.slow
def test_two_web_processes_share_the_limits(transactional_db, tmp_path):
    mailing_list = MailingListFactory()
    path = reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk})

    with running_servers(tmp_path, count=2, MAIL_APE_SUBSCRIBE_RATE_PER_CLIENT="4/hour") as servers:
        statuses = []
        for number in range(5):
            server = servers[number % 2]
            try:
                status, _ = Browserless().submit(
                    server.url + path, {"email": f"reader{number}@example.com"}
                )
            except urllib.error.HTTPError as error:
                status = error.code
            statuses.append(status)

    assert statuses == [200, 200, 200, 200, 429]
    assert Subscriber.objects.count() == 4
