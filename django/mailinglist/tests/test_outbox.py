"""A broker outage never turns a saved form into an error, and nothing asked for is lost."""

import time

import pytest
from django.urls import reverse

from mailinglist.models import Message, Subscriber
from mailinglist.queueing import QueuedTask
from mailinglist.tests.api_helpers import api_client_for
from mailinglist.tests.factories import (
    DraftFactory,
    MailingListFactory,
    SubscriberFactory,
)
from mailinglist.tests.harness import wait_until

pytestmark = pytest.mark.slow


def test_work_asked_for_while_the_broker_is_down_goes_out_soon_after_it_is_back(
    client, smtp_sink, start_celery_worker, private_redis, celery_app_on_broker
):
    celery_app_on_broker(private_redis.url)
    start_celery_worker(
        smtp_sink.port, beat=True, CELERY_BROKER_URL=private_redis.url, MAIL_APE_RELAY_SECONDS=2
    )
    mailing_list = MailingListFactory(name="Banana Facts")
    for reader in ("one@example.com", "two@example.com"):
        SubscriberFactory(mailing_list=mailing_list, email=reader)
    owner_api = api_client_for(mailing_list.owner)
    client.force_login(mailing_list.owner)

    private_redis.kill()
    asked = time.monotonic()
    answers = [
        client.post(
            reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk}),
            {"email": "web@example.com"},
        ),
        owner_api.post(
            reverse("mailinglist:api-subscriber-list", kwargs={"mailing_list_pk": mailing_list.pk}),
            {"email": "api@example.com"},
            format="json",
        ),
        client.post(
            reverse(
                "mailinglist:send_message",
                kwargs={
                    "pk": DraftFactory(
                        mailing_list=mailing_list, subject="From the web", body="Ripe"
                    ).pk
                },
            ),
            {"send": "1"},
        ),
        owner_api.post(
            reverse("mailinglist:api-message-list", kwargs={"mailing_list_pk": mailing_list.pk}),
            {"subject": "From the API", "body": "Ripe"},
            format="json",
        ),
    ]
    # The pages answer at once; nobody waits for a broker that is not there.
    assert time.monotonic() - asked < 10
    assert [answer.status_code for answer in answers] == [302, 201, 302, 201]
    assert Subscriber.objects.filter(email__in=["web@example.com", "api@example.com"]).count() == 2
    assert Message.objects.count() == 2
    assert QueuedTask.objects.count() >= 4

    private_redis.start()
    back = time.monotonic()

    def everything_arrived():
        subjects = {(to, email["Subject"]) for to, email in smtp_sink.received()}
        return (
            smtp_sink.received_by("web@example.com")
            and smtp_sink.received_by("api@example.com")
            and {
                (reader, subject)
                for reader in ("one@example.com", "two@example.com")
                for subject in ("From the web", "From the API")
            }
            <= subjects
        )

    wait_until(everything_arrived, timeout=60, message="the work queued during the outage")
    assert time.monotonic() - back < 60
    wait_until(lambda: not QueuedTask.objects.exists(), timeout=10, message="an empty outbox")
