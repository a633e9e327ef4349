"""Importing a CSV file of subscribers, on the web (upload, preview, start) and through
the API (one call), run by the import job."""

import csv
import io

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from mailinglist.imports import running
from mailinglist.models import SubscriberImport
from mailinglist.tests.api_helpers import api_client_for
from mailinglist.tests.factories import MailingListFactory, SubscriberFactory
from user.tests.factories import UserFactory

# The import runs on SQLite too: it is what `make run` uses.
pytestmark = [pytest.mark.django_db, pytest.mark.also_on_sqlite]

MAILCHIMP_STYLE = (
    "Email Address,First Name,Last Name,Company\r\n"
    "ape@example.com,Koko,Gorilla,Banana Co\r\n"
    "not an address,Bad,Row,\r\n"
    "APE@example.com,Koko,Again,Other\r\n"
    "chimp@example.com,Chim,Panzee,\r\n"
)


def csv_upload(text, name="audience.csv"):
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def upload_on_the_web(client, mailing_list, text, status="confirmed", opted_in=True):
    data = {"file": csv_upload(text), "status": status}
    if opted_in:
        data["opted_in"] = "on"
    return client.post(
        reverse("mailinglist:import_subscribers", kwargs={"pk": mailing_list.pk}), data
    )


def import_through_the_api(owner, mailing_list, text, status="confirmed"):
    return api_client_for(owner).post(
        reverse(
            "mailinglist:api-subscriber-import-create",
            kwargs={"mailing_list_pk": mailing_list.pk},
        ),
        {"file": csv_upload(text), "status": status},
        format="multipart",
    )


def emails_on(mailing_list):
    return sorted(mailing_list.subscriber_set.values_list("email", flat=True))


def test_the_web_import_shows_a_preview_and_writes_nothing_until_started(
    client, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory()
    client.force_login(mailing_list.owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = upload_on_the_web(client, mailing_list, MAILCHIMP_STYLE)
    page = client.get(response.url)

    assert page.status_code == 200
    assert page.context["subscriber_import"].status == SubscriberImport.Status.READY
    assert "4 rows, of which <strong>1</strong> cannot be imported" in page.content.decode()
    assert "custom field <code>company</code>" in page.content.decode()
    assert "Koko Gorilla" in page.content.decode()
    assert emails_on(mailing_list) == []


def test_starting_a_previewed_import_adds_the_rows_and_counts_what_happened(
    client, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory()
    client.force_login(mailing_list.owner)
    with django_capture_on_commit_callbacks(execute=True):
        import_page = upload_on_the_web(client, mailing_list, MAILCHIMP_STYLE).url
    subscriber_import = SubscriberImport.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("mailinglist:start_subscriber_import", kwargs={"pk": subscriber_import.pk})
        )
    page = client.get(import_page)

    assert emails_on(mailing_list) == ["ape@example.com", "chimp@example.com"]
    ape = mailing_list.subscriber_set.get(email="ape@example.com")
    assert (ape.name, ape.fields, ape.confirmed) == ("Koko Gorilla", {"company": "Banana Co"}, True)
    subscriber_import.refresh_from_db()
    assert subscriber_import.status == SubscriberImport.Status.FINISHED
    assert subscriber_import.counts() == {
        "rows": 4,
        "added": 2,
        "updated": 0,
        "duplicates": 1,
        "invalid": 1,
        "suppressed": 0,
    }
    assert page.context["progress"]["percent_done"] == 100
    assert mail.outbox == []


def test_the_rejected_rows_download_says_why_each_was_turned_away(
    client, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory()
    client.force_login(mailing_list.owner)
    with django_capture_on_commit_callbacks(execute=True):
        upload_on_the_web(client, mailing_list, MAILCHIMP_STYLE)
    subscriber_import = SubscriberImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        running.start(subscriber_import)

    response = client.get(
        reverse("mailinglist:subscriber_import_rejections", kwargs={"pk": subscriber_import.pk})
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert rows[0] == ["line", "reason", "Email Address", "First Name", "Last Name", "Company"]
    assert [(line, values[0]) for line, _, *values in rows[1:]] == [
        ("3", "not an address"),
        ("4", "APE@example.com"),
    ]
    assert "line 2" in rows[2][1]


def test_confirmed_needs_the_owners_word_that_people_agreed(client):
    mailing_list = MailingListFactory()
    client.force_login(mailing_list.owner)

    response = upload_on_the_web(client, mailing_list, MAILCHIMP_STYLE, opted_in=False)

    assert response.status_code == 200
    assert "needs your word" in response.content.decode()
    assert not SubscriberImport.objects.exists()


def test_a_file_that_is_not_csv_fails_with_a_reason_on_its_page(
    client, django_capture_on_commit_callbacks
):
    mailing_list = MailingListFactory()
    client.force_login(mailing_list.owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("mailinglist:import_subscribers", kwargs={"pk": mailing_list.pk}),
            {
                "file": SimpleUploadedFile("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
                "status": "unconfirmed",
            },
        )
    page = client.get(response.url)

    subscriber_import = SubscriberImport.objects.get()
    assert subscriber_import.status == SubscriberImport.Status.FAILED
    assert subscriber_import.error
    assert subscriber_import.error in page.content.decode()


def test_the_api_imports_in_one_call_and_reports_the_job(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = import_through_the_api(mailing_list.owner, mailing_list, MAILCHIMP_STYLE)
    job = api_client_for(mailing_list.owner).get(response.json()["url"]).json()

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert job["status"] == "finished"
    assert job["counts"] == {
        "rows": 4,
        "added": 2,
        "updated": 0,
        "duplicates": 1,
        "invalid": 1,
        "suppressed": 0,
    }
    errors = api_client_for(mailing_list.owner).get(job["errors_url"])
    assert b"not an address" in b"".join(errors.streaming_content)


def test_the_api_refuses_an_import_without_a_file_or_status():
    mailing_list = MailingListFactory()

    response = api_client_for(mailing_list.owner).post(
        reverse(
            "mailinglist:api-subscriber-import-create",
            kwargs={"mailing_list_pk": mailing_list.pk},
        ),
        {"status": "sometimes"},
        format="multipart",
    )

    assert response.status_code == 400
    assert set(response.json()) == {"file", "status"}


def test_an_existing_subscriber_is_updated_and_never_doubled(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()
    SubscriberFactory(
        mailing_list=mailing_list, email="Ape@Example.com", name="", fields={"city": "Congo"}
    )

    with django_capture_on_commit_callbacks(execute=True):
        import_through_the_api(
            mailing_list.owner, mailing_list, "email,name,company\nape@example.com,Koko,Banana Co\n"
        )

    [ape] = mailing_list.subscriber_set.all()
    assert (ape.email, ape.name) == ("Ape@Example.com", "Koko")
    assert ape.fields == {"city": "Congo", "company": "Banana Co"}
    assert SubscriberImport.objects.get().counts()["updated"] == 1


def test_an_unsubscribed_address_is_not_subscribed_again(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()
    SubscriberFactory(
        mailing_list=mailing_list,
        email="gone@example.com",
        confirmed=False,
        unsubscribed=timezone.now(),
    )

    with django_capture_on_commit_callbacks(execute=True):
        import_through_the_api(mailing_list.owner, mailing_list, "email\nGONE@example.com\n")

    gone = mailing_list.subscriber_set.get()
    assert (gone.confirmed, gone.status) == (False, "unsubscribed")
    assert SubscriberImport.objects.get().counts()["suppressed"] == 1


def test_an_unconfirmed_import_asks_each_new_address_to_confirm(
    django_capture_on_commit_callbacks,
):
    mailing_list = MailingListFactory(name="Banana Facts")
    SubscriberFactory(mailing_list=mailing_list, email="old@example.com", confirmed=True)

    with django_capture_on_commit_callbacks(execute=True):
        import_through_the_api(
            mailing_list.owner,
            mailing_list,
            "email\nnew1@example.com\nold@example.com\nnew2@example.com\n",
            status="unconfirmed",
        )

    assert sorted(email.to[0] for email in mail.outbox) == [
        "new1@example.com",
        "new2@example.com",
    ]
    assert all("Banana Facts" in email.subject for email in mail.outbox)
    assert mailing_list.subscriber_set.get(email="old@example.com").confirmed
    assert not mailing_list.subscriber_set.get(email="new1@example.com").confirmed


def big_file(rows):
    return "email,name\n" + "".join(f"reader{n}@example.com,Reader {n}\n" for n in range(rows))


def test_a_job_stopped_mid_way_carries_on_without_losing_or_doubling(
    monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.MAIL_APE_IMPORT_BATCH_ROWS = 10
    mailing_list = MailingListFactory()
    with django_capture_on_commit_callbacks(execute=False):
        import_through_the_api(mailing_list.owner, mailing_list, big_file(95) + big_file(5))
    subscriber_import = SubscriberImport.objects.get()
    real_write_batch = running.write_batch
    batches_before_the_crash = iter(range(3))

    def write_three_batches_then_die(job, rows):
        if next(batches_before_the_crash, None) is None:
            raise SystemExit("the worker died")
        return real_write_batch(job, rows)

    monkeypatch.setattr(running, "write_batch", write_three_batches_then_die)
    with pytest.raises(SystemExit):
        running.run(subscriber_import.pk)
    monkeypatch.setattr(running, "write_batch", real_write_batch)
    subscriber_import.refresh_from_db()
    assert (subscriber_import.status, subscriber_import.rows_done) == ("running", 30)

    running.run(subscriber_import.pk)

    subscriber_import.refresh_from_db()
    assert subscriber_import.status == SubscriberImport.Status.FINISHED
    assert mailing_list.subscriber_set.count() == 95
    assert subscriber_import.counts() == {
        "rows": 101,
        "added": 95,
        "updated": 0,
        "duplicates": 5,
        "invalid": 1,
        "suppressed": 0,
    }


def test_a_second_runner_of_the_same_job_writes_nothing(django_capture_on_commit_callbacks):
    mailing_list = MailingListFactory()
    with django_capture_on_commit_callbacks(execute=False):
        import_through_the_api(mailing_list.owner, mailing_list, big_file(3))
    subscriber_import = SubscriberImport.objects.get()
    subscriber_import.apply(running.ImportTransition.RUN)
    stale_view = SubscriberImport.objects.get()
    rows = list(running._open(subscriber_import).rows())
    assert running.write_batch(subscriber_import, rows)

    assert not running.write_batch(stale_view, rows)

    assert mailing_list.subscriber_set.count() == 3
    assert SubscriberImport.objects.get().counts()["added"] == 3


def test_the_sweep_queues_a_job_whose_worker_went_quiet(settings):
    settings.MAIL_APE_IMPORT_STALL_SECONDS = 60
    quiet = timezone.now() - timezone.timedelta(seconds=61)
    stalled = SubscriberImport.objects.create(
        mailing_list=MailingListFactory(), subscriber_status="confirmed", activity=quiet
    )
    SubscriberImport.objects.create(
        mailing_list=stalled.mailing_list, subscriber_status="confirmed", activity=timezone.now()
    )

    assert list(running.stalled_imports()) == [stalled]


@pytest.mark.parametrize(
    "name", ["subscriber_import", "subscriber_import_progress", "subscriber_import_rejections"]
)
def test_another_users_import_pages_answer_404(client, name):
    subscriber_import = SubscriberImport.objects.create(
        mailing_list=MailingListFactory(), subscriber_status="confirmed"
    )
    client.force_login(UserFactory())

    response = client.get(reverse(f"mailinglist:{name}", kwargs={"pk": subscriber_import.pk}))

    assert response.status_code == 404


def test_another_users_list_and_job_answer_404_in_the_api_and_on_the_web(client):
    mailing_list = MailingListFactory()
    subscriber_import = SubscriberImport.objects.create(
        mailing_list=mailing_list, subscriber_status="confirmed"
    )
    stranger = UserFactory()
    client.force_login(stranger)

    assert (
        import_through_the_api(stranger, mailing_list, "email\na@example.com\n").status_code == 404
    )
    assert (
        api_client_for(stranger)
        .get(reverse("mailinglist:api-subscriber-import", kwargs={"pk": subscriber_import.pk}))
        .status_code
        == 404
    )
    assert upload_on_the_web(client, mailing_list, "email\na@example.com\n").status_code == 404
    assert (
        client.post(
            reverse("mailinglist:start_subscriber_import", kwargs={"pk": subscriber_import.pk})
        ).status_code
        == 404
    )
