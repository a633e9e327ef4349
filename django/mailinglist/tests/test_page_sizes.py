"""Every page, in headless Chromium on a phone (390 × 844) and on a laptop (1280 × 900):
nothing is wider than the screen, so no page scrolls sideways."""

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from mailinglist.delivery.states import DeliveryState, MessageState
from mailinglist.imports import running
from mailinglist.models import Message, Subscriber, SubscriberMessage, Suppression
from mailinglist.tests.browser import open_context
from mailinglist.tests.factories import (
    DraftFactory,
    MailingListFactory,
    SubscriberFactory,
)
from mailinglist.tokens import (
    confirmation_token_generator,
    make_message_view_token,
    unsubscribe_token_generator,
)
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.slow

SCREENS = {"phone": (390, 844), "laptop": (1280, 900)}
LONG_ADDRESS = "a-very-long-address-of-a-patient-reader-of-banana-news@plantations.example.com"


@pytest.fixture
def site(transactional_db, settings, tmp_path):
    """An owner's world with something on every page, long names and addresses included."""
    settings.MAIL_APE_DEV_MAILBOX = tmp_path / "mailbox"
    owner = UserFactory(username="koko")
    mailing_list = MailingListFactory(
        owner=owner,
        name="Banana Facts from the Very Long Named Plantation by the River",
        archive=True,
    )
    reader = SubscriberFactory(mailing_list=mailing_list, email=LONG_ADDRESS, name="Koko")
    waiting = SubscriberFactory(mailing_list=mailing_list, confirmed=False)
    late = SubscriberFactory(mailing_list=mailing_list, confirmed=False)
    expired_token = confirmation_token_generator.make_token(late, now=0)
    confirmed_since = SubscriberFactory(mailing_list=mailing_list, confirmed=False)
    used_token = confirmation_token_generator.make_token(confirmed_since)
    confirmed_since.confirm()
    for n in range(3):
        SubscriberFactory(mailing_list=mailing_list, email=f"fan{n}@bananas.example")
    Suppression.objects.create(owner=owner, email="gone@example.com", reason="hard_bounce")
    draft = DraftFactory(mailing_list=mailing_list, subject="A draft about plantains")
    sent = DraftFactory(mailing_list=mailing_list, subject="Bananas are berries")
    started = timezone.now() - datetime.timedelta(minutes=5)
    Message.objects.filter(pk=sent.pk).update(
        status=MessageState.FINISHED,
        queued=started,
        started=started,
        finished=started + datetime.timedelta(seconds=30),
        fanned_out=started,
    )
    for n, subscriber in enumerate(Subscriber.objects.filter(confirmed=True)):
        at = started + datetime.timedelta(seconds=n)
        SubscriberMessage.objects.create(
            message=sent,
            subscriber=subscriber,
            status=DeliveryState.SENT if n else DeliveryState.BOUNCED,
            attempts=1,
            last_attempt=at,
            sent=at if n else None,
            last_error="" if n else "550 5.1.1 <" + LONG_ADDRESS + ">: user unknown",
        )
    csv_file = SimpleUploadedFile("readers.csv", b"email,name\nnew@example.com,New\n")
    subscriber_import = running.receive(mailing_list, csv_file, "confirmed", preview=True)
    return {
        "owner": owner,
        "pages": [
            reverse("mailinglist:mailinglist_list"),
            reverse("mailinglist:create_mailinglist"),
            mailing_list.get_absolute_url(),
            reverse("mailinglist:mailinglist_settings", kwargs={"pk": mailing_list.pk}),
            reverse("mailinglist:delete_mailinglist", kwargs={"pk": mailing_list.pk}),
            reverse("mailinglist:mailinglist_figures", kwargs={"pk": mailing_list.pk}),
            reverse("mailinglist:import_subscribers", kwargs={"pk": mailing_list.pk}),
            subscriber_import.get_absolute_url(),
            reverse("mailinglist:create_message", kwargs={"mailinglist_pk": mailing_list.pk}),
            draft.get_absolute_url(),
            reverse("mailinglist:edit_message", kwargs={"pk": draft.pk}),
            reverse("mailinglist:send_message", kwargs={"pk": draft.pk}),
            sent.get_absolute_url(),
            reverse("mailinglist:subscriber_detail", kwargs={"pk": reader.pk}),
            reverse("mailinglist:suppression_list"),
            reverse("user:tokens"),
            reverse("user:settings"),
            reverse("user:password_change"),
            reverse("user:change_email"),
            reverse("user:delete_account"),
            reverse("mailinglist:api-docs"),
            "/dev/mailbox/",
        ],
        "public_pages": [
            reverse("user:login"),
            reverse("user:register"),
            reverse("user:password_reset"),
            reverse("user:password_reset_done"),
            reverse("user:account_deleted"),
            reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk}),
            reverse("mailinglist:subscriber_thankyou", kwargs={"pk": mailing_list.pk}),
            reverse(
                "mailinglist:confirm_subscription",
                kwargs={"token": confirmation_token_generator.make_token(waiting)},
            ),
            reverse("mailinglist:confirm_subscription", kwargs={"token": expired_token}),
            reverse("mailinglist:confirm_subscription", kwargs={"token": used_token}),
            reverse(
                "mailinglist:unsubscribe",
                kwargs={"token": unsubscribe_token_generator.make_token(reader)},
            ),
            reverse(
                "mailinglist:manage_subscription",
                kwargs={"token": unsubscribe_token_generator.make_token(reader)},
            ),
            reverse("mailinglist:archive", kwargs={"mailinglist_pk": mailing_list.pk}),
            reverse(
                "mailinglist:archived_message",
                kwargs={"mailinglist_pk": mailing_list.pk, "pk": sent.pk},
            ),
            reverse(
                "mailinglist:view_in_browser", kwargs={"token": make_message_view_token(sent.pk)}
            ),
            "/no-such-page",
        ],
    }


def widths(page, base_url, paths):
    """Each page's path with how wide its content is, once it has settled."""
    measured = []
    for path in paths:
        response = page.goto(base_url + path)
        assert response.status in (200, 404), f"{path} answered {response.status}"
        page.wait_for_load_state("networkidle")
        measured.append((path, page.evaluate("document.documentElement.scrollWidth")))
    return measured


@pytest.mark.parametrize("screen", SCREENS)
def test_no_page_is_wider_than_the_screen(live_server, chromium, site, screen):
    width, height = SCREENS[screen]
    context = open_context(chromium, viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        measured = widths(page, live_server.url, site["public_pages"])
        page.goto(live_server.url + reverse("user:login"))
        page.get_by_label("Username").fill(site["owner"].username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/mailinglist/")
        measured += widths(page, live_server.url, site["pages"])
    finally:
        context.close()

    too_wide = [(path, scroll_width) for path, scroll_width in measured if scroll_width > width]
    assert too_wide == []
    assert len(measured) == len(site["pages"]) + len(site["public_pages"])


def test_the_navigation_collapses_behind_a_menu_button_on_a_phone(live_server, chromium, site):
    context = open_context(chromium, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(live_server.url + reverse("user:login"))
        register = page.get_by_role("link", name="Register")
        assert not register.is_visible()
        page.get_by_role("button", name="Menu").click()
        register.wait_for(state="visible")
    finally:
        context.close()
