"""The list owner's flows in a real headless Chromium, from registering to a sent message."""

import datetime
import re
import urllib.parse
import urllib.request
from pathlib import Path

import feedparser
import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from mailinglist.models import SubscriberMessage
from mailinglist.tests.browser import open_context
from mailinglist.tests.factories import MailingListFactory, SubscriberFactory
from mailinglist.tests.harness import confirmation_link, wait_until
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.slow


@pytest.fixture
def browser_page(new_browser_page):
    return new_browser_page()


def test_an_owner_registers_creates_a_list_and_sends_a_message(
    live_server, smtp_sink, start_celery_worker, browser_page, new_browser_page, tmp_path
):
    worker = start_celery_worker(smtp_sink.port, link_domain=live_server.url)
    owner = browser_page

    owner.goto(live_server.url + "/user/register")
    expect(owner.get_by_role("heading", name="Create an account")).to_be_visible()
    owner.get_by_label("Username").fill("koko")
    owner.get_by_label("Email").fill("koko@example.com")
    # Crispy marks required fields with "*": "Password" must not also match the confirmation.
    owner.get_by_role("textbox", name=re.compile(r"^Password\W*$")).fill(
        "a banana-shaped passphrase"
    )
    owner.get_by_label("Password confirmation").fill("a banana-shaped passphrase")
    owner.get_by_role("button", name="Register").click()

    expect(owner).to_have_url(live_server.url + "/mailinglist/")
    expect(owner.get_by_role("heading", name="Your mailing lists")).to_be_visible()
    expect(owner.get_by_text("You have no mailing lists yet")).to_be_visible()
    expect(owner.get_by_role("button", name="Log out koko")).to_be_visible()

    owner.get_by_role("link", name="New mailing list").click()
    owner.get_by_label("Name").fill("Banana Facts")
    owner.get_by_role("button", name="Create").click()

    expect(owner).to_have_url(re.compile(r"/mailinglist/[0-9a-f-]{36}/manage$"))
    expect(owner.get_by_role("heading", name="Banana Facts")).to_be_visible()
    expect(owner.get_by_text("No subscribers yet")).to_be_visible()
    subscribe_link = owner.get_by_text("Public subscribe page:").get_by_role("link")
    expect(subscribe_link).to_have_text(
        re.compile(re.escape(live_server.url) + r"/mailinglist/[0-9a-f-]{36}/subscribe$")
    )
    manage_url = owner.url

    # A reader, in a browser of their own, subscribes and confirms through the e-mail's link.
    reader = new_browser_page()
    reader.goto(subscribe_link.get_attribute("href"))
    expect(reader.get_by_role("heading", name="Subscribe to Banana Facts")).to_be_visible()
    reader.get_by_label("Your e-mail address").fill("reader@example.com")
    reader.get_by_role("button", name="Subscribe").click()
    expect(reader.get_by_text("Thank you for subscribing to Banana Facts")).to_be_visible()
    [confirmation] = wait_until(
        lambda: smtp_sink.received_by("reader@example.com"), message="the confirmation e-mail"
    )
    reader.goto(confirmation_link(confirmation, live_server.url))
    reader.get_by_role("button", name="Confirm my subscription").click()
    expect(reader.get_by_role("heading", name="You are subscribed to Banana Facts")).to_be_visible()
    # With no worker running, the message page is sure to open while the message is still
    # waiting, so the owner watches it finish through the page's polling and reload.
    worker.stop()

    owner.reload()
    expect(owner.get_by_text("1 confirmed of 1")).to_be_visible()
    expect(owner.get_by_role("listitem").filter(has_text="reader@example.com")).to_contain_text(
        "confirmed"
    )

    owner.get_by_role("link", name="Send new message").click()
    expect(owner.get_by_role("heading", name="New message to Banana Facts")).to_be_visible()
    owner.get_by_label("Subject").fill("Ripe today")
    owner.get_by_label("Body").fill("# Good news\n\nBananas are **yellow**.\n\n- ripe\n- sweet\n")
    owner.get_by_role("button", name="Preview").click()

    preview = owner.locator("#preview")
    expect(preview.get_by_role("heading", name="Good news")).to_be_visible()
    expect(preview.locator("strong")).to_have_text("yellow")
    expect(preview.get_by_role("listitem")).to_have_text(["ripe", "sweet"])
    expect(preview).not_to_contain_text("**")
    # The preview keeps what was typed, so what is sent is exactly what was previewed.
    expect(owner.get_by_label("Subject")).to_have_value("Ripe today")
    owner.get_by_role("button", name="Send…").click()
    expect(owner.get_by_text("It goes to 1 confirmed subscriber of Banana Facts")).to_be_visible()
    owner.get_by_role("button", name="Send now to 1").click()

    expect(owner).to_have_url(re.compile(r"/mailinglist/message/[0-9a-f-]{36}$"))
    expect(owner.get_by_role("heading", name="Ripe today", exact=True)).to_be_visible()
    message_body = owner.locator("#message-body")
    expect(message_body.get_by_role("heading", name="Good news")).to_be_visible()
    expect(message_body.locator("strong")).to_have_text("yellow")
    expect(owner.get_by_role("heading", name="Delivery: Sending")).to_be_visible()
    expect(
        owner.get_by_text("Each recipient is listed here once their copy is on its way")
    ).to_be_visible()

    start_celery_worker(smtp_sink.port, link_domain=live_server.url)
    expect(owner.get_by_role("heading", name="Delivery: Finished")).to_be_visible(timeout=60_000)
    expect(owner.get_by_role("row", name=re.compile("reader@example.com"))).to_contain_text("Sent")
    expect(owner.get_by_role("img", name="100% of the copies have an outcome")).to_be_visible()
    owner.screenshot(path=tmp_path / "message-page.png", full_page=True)

    [delivered] = [m for m in smtp_sink.received_by("reader@example.com") if m is not confirmation]
    assert delivered["Subject"] == "Ripe today"

    owner.get_by_role("link", name="← Banana Facts").click()
    expect(owner).to_have_url(manage_url)
    expect(owner.get_by_role("link", name="Ripe today")).to_be_visible()

    owner.get_by_role("button", name="Log out koko").click()
    expect(owner).to_have_url(live_server.url + "/user/login")
    expect(owner.get_by_role("link", name="Log in")).to_be_visible()
    owner.goto(manage_url)
    expect(owner).to_have_url(re.compile(r"/user/login\?next="))


def test_a_message_to_a_list_without_confirmed_subscribers_waits_as_a_draft(
    live_server, browser_page
):
    mailing_list = MailingListFactory(name="Quiet List")
    SubscriberFactory(mailing_list=mailing_list, email="pending@example.com", confirmed=False)
    owner = browser_page
    owner.goto(live_server.url + mailing_list.get_absolute_url())
    expect(owner).to_have_url(re.compile(r"/user/login\?next="))
    owner.get_by_label("Username").fill(mailing_list.owner.username)
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_role("button", name="Log in").click()
    expect(owner.get_by_text("0 confirmed of 1")).to_be_visible()

    owner.get_by_role("link", name="Send new message").click()
    owner.get_by_label("Subject").fill("Anyone there?")
    owner.get_by_label("Body").fill("Hello?")
    owner.get_by_role("button", name="Send…").click()

    expect(owner.get_by_text("Nobody would get it now")).to_be_visible()
    expect(owner.get_by_role("button", name=re.compile("Send now"))).to_have_count(0)
    owner.get_by_role("link", name="← Anyone there?").click()
    expect(owner.get_by_role("heading", name="Draft")).to_be_visible()


def test_no_page_breaks_its_content_security_policy(
    live_server, new_browser_page, django_user_model
):
    admin = django_user_model.objects.create_superuser("chief", "chief@example.com", PASSWORD)
    mailing_list = MailingListFactory(name="Banana Facts", owner=admin)
    SubscriberFactory(mailing_list=mailing_list, email="reader@example.com")
    page = new_browser_page()
    violations = []
    page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text
            and violations.append(f"{page.url}: {message.text}")
        ),
    )

    subscribe = reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk})
    for path in ["/user/login", "/user/register", subscribe]:
        page.goto(live_server.url + path)
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill("chief")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Mailing lists")).to_be_visible()
    page.goto(live_server.url + "/mailinglist/")
    page.goto(live_server.url + mailing_list.get_absolute_url())
    page.get_by_role("link", name="Send new message").click()
    page.get_by_label("Subject").fill("Ripe today")
    page.get_by_label("Body").fill("# Good news\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Send…").click()
    page.get_by_role("button", name="Send now to 1").click()
    sent_part = page.locator('#delivery-bar [data-part="sent"]')
    expect(sent_part).to_have_attribute("style", re.compile(r"width: 100%"))
    expect(page.locator("#rate-chart canvas")).to_have_count(1)
    page.goto(live_server.url + "/mailinglist/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Mail Ape API")

    assert violations == []


def test_an_owner_drafts_tests_and_schedules_a_message_that_lands_in_the_archive(
    live_server, smtp_sink, start_celery_worker, browser_page
):
    start_celery_worker(
        smtp_sink.port, link_domain=live_server.url, beat=True, MAIL_APE_SCHEDULER_SECONDS=2
    )
    owner = UserFactory(email="koko@example.com")
    mailing_list = MailingListFactory(name="Banana Facts", owner=owner, archive=True)
    SubscriberFactory(mailing_list=mailing_list, email="reader@example.com")
    page = browser_page
    page.goto(live_server.url + mailing_list.get_absolute_url())
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("link", name="Send new message").click()
    page.get_by_label("Subject").fill("Ripe soon")
    page.get_by_label("Body").fill("Not *yet*.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", name="Draft")).to_be_visible()
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Body").fill("Bananas are **ripe** on Friday.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#message-body strong")).to_have_text("ripe")

    expect(page.get_by_label("Send a test to")).to_have_value("koko@example.com")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("A test copy is on its way to koko@example.com")).to_be_visible()
    [test_copy] = wait_until(
        lambda: smtp_sink.received_by("koko@example.com"), message="the test copy"
    )
    assert test_copy["Subject"] == "[Test] Ripe soon"
    assert not SubscriberMessage.objects.exists()
    assert smtp_sink.received_by("reader@example.com") == []

    page.get_by_role("link", name="Send…").click()
    send_at = timezone.now().replace(microsecond=0) + datetime.timedelta(minutes=1)
    page.get_by_label("Send at").fill(send_at.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_role("heading", name=re.compile("Scheduled: goes out"))).to_be_visible()

    [delivered] = wait_until(
        lambda: smtp_sink.received_by("reader@example.com"), timeout=120, message="the message"
    )
    arrived = timezone.now()
    assert delivered["Subject"] == "Ripe soon"
    assert send_at <= arrived < send_at + datetime.timedelta(seconds=20)
    page.reload()
    expect(
        page.get_by_role("heading", name=re.compile("Delivery: (Sending|Finished)"))
    ).to_be_visible()
    expect(page.locator("#late")).to_have_count(0)

    page.goto(live_server.url + f"/mailinglist/{mailing_list.pk}/archive")
    page.get_by_role("link", name="Ripe soon").click()
    expect(page.locator("article strong")).to_have_text("ripe")
    with urllib.request.urlopen(
        f"{live_server.url}/mailinglist/{mailing_list.pk}/archive/feed"
    ) as feed:  # noqa: S310
        entries = feedparser.parse(feed.read()).entries
    assert [entry.title for entry in entries] == ["Ripe soon"]


def test_an_owner_imports_a_csv_file_after_seeing_its_preview(
    live_server, smtp_sink, start_celery_worker, browser_page, tmp_path
):
    start_celery_worker(smtp_sink.port, link_domain=live_server.url)
    mailing_list = MailingListFactory(name="Banana Facts")
    rows = 20_000
    readers = tmp_path / "readers.csv"
    readers.write_text(
        "\ufeffEmail Address;First Name;Last Name;Favourite fruit\r\n"
        + "".join(f"reader{n}@example.com;Reader;No. {n};banana\r\n" for n in range(rows))
        + "not-an-address;Bad;Row;\r\n",
        encoding="utf-8",
    )
    page = browser_page
    page.goto(
        live_server.url + reverse("mailinglist:import_subscribers", kwargs={"pk": mailing_list.pk})
    )
    page.get_by_label("Username").fill(mailing_list.owner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_label("CSV file").set_input_files(readers)
    page.get_by_role("radio", name=re.compile("^Confirmed")).check()
    page.get_by_role("checkbox", name=re.compile("agreed to get this list")).check()
    page.get_by_role("button", name="Upload and preview").click()

    expect(page.locator("#import-summary")).to_contain_text(f"{rows + 1} rows", timeout=30_000)
    expect(page.locator("#import-summary")).to_contain_text("1 cannot be imported")
    expect(page.locator("#import-columns")).to_contain_text("favourite_fruit")
    expect(page.locator("#import-preview")).to_contain_text("Reader No. 0")
    assert mailing_list.subscriber_set.count() == 0

    page.get_by_role("button", name=re.compile("^Import")).click()
    bar = page.get_by_role("progressbar", name="Import progress").locator(".progress-bar")
    expect(bar).to_be_visible()
    expect(bar).to_have_text("100%", timeout=60_000)
    expect(bar).to_have_attribute("style", re.compile(r"width: 100%"))
    expect(page.locator("#import-status")).to_have_text("Finished")
    expect(page.locator("#count-added")).to_have_text(str(rows))
    expect(page.locator("#count-invalid")).to_have_text("1")
    assert mailing_list.subscriber_set.filter(confirmed=True).count() == rows
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download the rows")).click()
    assert "not-an-address" in Path(download.value.path()).read_text()


def test_the_manage_page_fits_a_phone_and_finds_adds_and_removes_subscribers(
    live_server, new_browser_page, chromium
):
    mailing_list = MailingListFactory(name="Banana Facts from the Very Long Named Plantation")
    SubscriberFactory(
        mailing_list=mailing_list,
        email="a-very-long-address-of-a-reader-with-patience@bananas.example.com",
        name="Koko",
    )
    SubscriberFactory(mailing_list=mailing_list, email="michael@gorillas.example", confirmed=False)
    context = open_context(chromium, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(live_server.url + mailing_list.get_absolute_url())
        page.get_by_label("Username").fill(mailing_list.owner.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text("1 confirmed of 2")).to_be_visible()

        page.locator("#add-subscriber summary").click()
        page.get_by_label("E-mail address").fill("new@bananas.example.com")
        page.get_by_label("Name").fill("New Ape")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_text("a confirmation e-mail is on its way")).to_be_visible()

        page.get_by_label("Address contains").fill("BANANAS")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#subscriber-list li")).to_have_count(2)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("#subscriber-list li").filter(has_text="new@bananas").get_by_role(
            "button", name="Remove"
        ).click()
        expect(page.get_by_text("Removed new@bananas.example.com")).to_be_visible()
        expect(page.locator("#subscriber-list li")).to_have_count(1)
        assert "q=BANANAS" in page.url
    finally:
        context.close()
