import mailbox
from email.message import EmailMessage

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def captured_email(settings, tmp_path):
    settings.MAIL_APE_DEV_MAILBOX = tmp_path / "mailbox"
    email = EmailMessage()
    email["To"] = "reader@example.com"
    email["Subject"] = "Ripe today"
    email.set_content("Bananas are yellow. http://localhost:8000/mailinglist/unsubscribe/x")
    email.add_alternative("<p>Bananas are <strong>yellow</strong>.</p>", subtype="html")
    return mailbox.Maildir(tmp_path / "mailbox", create=True).add(email)


def test_the_mailbox_lists_captured_emails(client, captured_email):
    page = client.get("/dev/mailbox/").content.decode()

    assert "Ripe today" in page
    assert "reader@example.com" in page


def test_an_email_shows_clickable_links_and_its_html_part_in_a_frame(client, captured_email):
    page = client.get(f"/dev/mailbox/{captured_email}").content.decode()
    html_part = client.get(f"/dev/mailbox/{captured_email}/html")

    assert '<a href="http://localhost:8000/mailinglist/unsubscribe/x"' in page
    assert html_part["X-Frame-Options"] == "SAMEORIGIN"
    assert b"<strong>yellow</strong>" in html_part.content


def test_an_unknown_email_answers_404(client, captured_email):
    assert client.get("/dev/mailbox/no-such-key").status_code == 404


def test_a_markdown_link_in_the_text_part_keeps_its_brackets(client, settings, tmp_path):
    settings.MAIL_APE_DEV_MAILBOX = tmp_path / "mailbox"
    email = EmailMessage()
    email["Subject"] = "Links"
    email.set_content("Read [our site](https://example.com/a?b=1&c=2). Or <https://example.org/x>.")
    key = mailbox.Maildir(tmp_path / "mailbox", create=True).add(email)

    page = client.get(f"/dev/mailbox/{key}").content.decode()

    assert (
        '[our site](<a href="https://example.com/a?b=1&amp;c=2">'
        "https://example.com/a?b=1&amp;c=2</a>)."
    ) in page
    assert '&lt;<a href="https://example.org/x">https://example.org/x</a>&gt;.' in page


def test_the_navigation_links_the_mailbox_only_where_it_is_mounted(
    client, settings, captured_email
):
    assert 'href="/dev/mailbox/"' in client.get("/user/login").content.decode()

    settings.MAIL_APE_DEV_MAILBOX = None

    assert "/dev/mailbox/" not in client.get("/user/login").content.decode()
