"""Merge tags: each reader's own name, address and custom fields in a message, and
nothing else; pages and feeds show the defaults."""

import re
from email import policy
from email.parser import BytesParser
from types import SimpleNamespace

import feedparser
import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from mailinglist import emails, merge_tags
from mailinglist.delivery import sending
from mailinglist.delivery.claims import claim_batch
from mailinglist.models import Message
from mailinglist.tests.api_helpers import api_client_for
from mailinglist.tests.factories import (
    DraftFactory,
    MailingListFactory,
    MessageFactory,
    SubscriberFactory,
    pending_deliveries_for,
)

pytestmark = pytest.mark.django_db

APE = merge_tags.MergeValues(
    name="Ape", email="ape@example.com", fields={"company": "Bananas & Co", "city": ""}
)


def filled_text(body, recipient=APE):
    return merge_tags.MergeText.parse(body).fill(recipient)


def filled_html(body, recipient=APE):
    template = merge_tags.MessageTemplate("Subject", body)
    return template.html.fill(template.text.values(recipient))


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("Hi {{ name }}!", "Hi Ape!"),
        ("{{ email }}", "ape@example.com"),
        ("At {{ fields.company }}", "At Bananas & Co"),
        ("{{name}}", "Ape"),
        ('{{  name | default : "friend"  }}', "Ape"),
        ('{{ fields.city|default:"your city" }}', "your city"),
        ("{{ fields.pet|default:'your pet' }}", "your pet"),
        ('{{ fields.pet|default:"the \\"best\\" one" }}', 'the "best" one'),
        ("{{ fields.pet|default:'it\\'s a \\\\' }}", "it's a \\"),
        ("[{{ fields.pet }}]", "[]"),
        ("\\{{ name }} is how you write {{ name }}", "{{ name }} is how you write Ape"),
        ("{ {name} } and }} stay", "{ {name} } and }} stay"),
    ],
)
def test_each_tag_shows_the_readers_value_or_its_default(body, text):
    merge_tags.validate_merge_tags(body)

    assert filled_text(body) == text


def test_a_reader_with_nothing_gets_every_default_and_nothing_else():
    body = '{{ name|default:"friend" }}, {{ email }}{{ fields.company }}.'

    assert filled_text(body, merge_tags.NOBODY) == "friend, ."


@pytest.mark.parametrize(
    "tag",
    [
        "{{ subscriber.mailing_list.owner.password }}",
        "{{ settings.SECRET_KEY }}",
        "{{ message.mailing_list.owner.email }}",
        "{% load static %}",
        "{% debug %}",
        "{{ name|safe }}",
        '{{ name|default:"x"|upper }}',
        "{{ name|default:friend }}",
        "{{ Name }}",
        "{{ fields.Company }}",
        "{{ fields.company.upper }}",
        "{{ fields.__class__ }}",
        "{{ fields }}",
        "{{{ name }}}",
        "{{ name",
    ],
)
def test_it_refuses_anything_else_that_looks_like_a_tag_and_names_it(tag):
    with pytest.raises(ValidationError) as refused:
        merge_tags.validate_merge_tags(f"Hello {tag} there")

    assert tag.rstrip("}") in refused.value.messages[0]


def test_it_refuses_more_tags_than_a_copy_should_carry():
    with pytest.raises(ValidationError, match="at most 100"):
        merge_tags.validate_merge_tags("{{ name }}" * 101)


def test_the_message_form_names_the_refused_tag(client):
    mailing_list = MailingListFactory()
    client.force_login(mailing_list.owner)

    page = client.post(
        reverse("mailinglist:create_message", kwargs={"mailinglist_pk": mailing_list.pk}),
        {"subject": "Hi", "body": "Your key: {{ settings.SECRET_KEY }}", "draft": "1"},
    )

    assert page.status_code == 200
    assert "{{ settings.SECRET_KEY }}: not a merge tag" in page.content.decode()
    assert not Message.objects.exists()


def test_the_api_answers_400_on_body_naming_the_refused_tag(django_capture_on_commit_callbacks):
    mailing_list = SubscriberFactory().mailing_list

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(mailing_list.owner).post(
            reverse("mailinglist:api-message-list", kwargs={"mailing_list_pk": mailing_list.pk}),
            {"subject": "Hi", "body": "{% load static %}{{ name }}"},
            format="json",
        )

    assert response.status_code == 400
    assert "{% load static %}" in response.json()["body"][0]
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("body", "html"),
    [
        ("# Hi {{ name }}", "<h1>Hi Ape</h1>"),
        ("`{{ name }}`", "<code>Ape</code>"),
        ("*{{ fields.company }}*", "<em>Bananas &amp; Co</em>"),
        ("| who |\n|---|\n| {{ name }} |", "<td>Ape</td>"),
        (
            "[yours](https://example.com/?u={{ email }}&c={{ fields.company }})",
            'href="https://example.com/?u=ape%40example.com&amp;c=Bananas%20%26%20Co"',
        ),
        (
            "<https://example.com/{{ name }}>",
            '<a href="https://example.com/Ape" rel="noopener noreferrer">'
            "https://example.com/Ape</a>",
        ),
        ('{{ fields.pet|default:"<b>cat</b>" }}', "&lt;b&gt;cat&lt;/b&gt;"),
        ("\\{{ name }}", "<p>{{ name }}</p>"),
    ],
)
def test_tags_come_through_markdown_wherever_they_are(body, html):
    assert html in filled_html(body)


def test_a_value_fills_a_piece_of_a_link_never_its_scheme():
    dangerous = merge_tags.MergeValues(fields={"site": "javascript:alert(1)"})

    html = filled_html("[home]({{ fields.site }})", dangerous)

    assert 'href="javascript%3Aalert%281%29"' in html


@pytest.fixture
def mailing_list():
    mailing_list = MailingListFactory(name="Banana Facts", archive=True)
    SubscriberFactory(
        mailing_list=mailing_list,
        email="ape@example.com",
        name="<script>alert(1)</script>",
        fields={"company": "Ape & Sons"},
    )
    SubscriberFactory(mailing_list=mailing_list, email="bonobo@example.com", name="Bonobo")
    mail.outbox.clear()
    return mailing_list


BODY = 'Dear {{ name|default:"reader" }} of {{ fields.company|default:"no company" }}'


def copy_to(address):
    [email] = [email for email in mail.outbox if email.to == [address]]
    return email


def test_each_subscriber_gets_their_own_values_and_html_escaped(
    mailing_list, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        MessageFactory(mailing_list=mailing_list, subject="For {{ name }}", body=BODY)

    ape, bonobo = copy_to("ape@example.com"), copy_to("bonobo@example.com")
    assert ape.subject == "For <script>alert(1)</script>"
    assert "Dear <script>alert(1)</script> of Ape & Sons" in ape.body
    assert "Dear &lt;script&gt;alert(1)&lt;/script&gt; of Ape &amp; Sons" in ape.alternatives[0][0]
    assert "<script>" not in ape.alternatives[0][0]
    assert bonobo.subject == "For Bonobo"
    assert "Dear Bonobo of no company" in bonobo.body
    assert "Dear Bonobo of no company" in bonobo.alternatives[0][0]


def parsed(email_message):
    return BytesParser(policy=policy.default).parsebytes(
        email_message.message().as_bytes(linesep="\r\n")
    )


@pytest.mark.parametrize(
    ("name", "fields", "patched"),
    [
        ("Ape", {"company": "Bananas"}, True),
        ("José Müller", {"company": "Bücher & Söhne"}, True),
        ("", {}, True),
        # Values that would need the bytes around them rewritten: rendered alone.
        ("Ape", {"company": "two\nlines"}, False),
        ("Ape", {"company": "x" * 1000}, False),
    ],
)
def test_a_copy_patched_from_the_shared_one_matches_a_copy_rendered_alone(
    name, fields, patched, monkeypatch
):
    # Both copies' unsubscribe tokens are stamped in the same second.
    monkeypatch.setattr("mailinglist.tokens.time", SimpleNamespace(time=lambda: 1_800_000_000))
    subscriber = SubscriberFactory(name=name, fields=fields)
    message = MessageFactory(
        mailing_list=subscriber.mailing_list,
        subject='Hi {{ name|default:"you" }}, news from {{ fields.company }}',
        body=f"# {BODY}\n\n[link](https://example.com/?c={{{{ fields.company }}}})\n\n"
        "`{{ email }}` and \\{{ name }}",
    )
    pending_deliveries_for(message)
    row = message.subscribermessage_set.get()
    mailer = emails.ListMessageMailer(message)
    rendered_alone = emails.ListMessageMailer(message)
    rendered_alone.shared_copy = None
    assert mailer.shared_copy is not None

    copy = mailer.build(row)
    fast, slow = parsed(copy), parsed(rendered_alone.build(row))

    for header in ["Subject", "From", "To", "Message-ID", "List-Unsubscribe"]:
        assert str(fast[header]).strip() == str(slow[header]).strip()
    for part in ["plain", "html"]:
        assert (
            fast.get_body(preferencelist=(part,)).get_content()
            == slow.get_body(preferencelist=(part,)).get_content()
        )
    assert (name or "you") in str(fast["Subject"])
    assert isinstance(copy, emails.PersonalisedEmail) is patched
    assert max(map(len, copy.message().as_bytes(linesep="\r\n").split(b"\r\n"))) <= 998


def test_a_value_with_a_line_break_cannot_split_the_subject(django_capture_on_commit_callbacks):
    subscriber = SubscriberFactory(fields={"city": "Paris\r\nBcc: victim@example.com"})
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        MessageFactory(mailing_list=subscriber.mailing_list, subject="News for {{ fields.city }}")

    [email] = mail.outbox
    headers = parsed(email)
    assert headers["Subject"] == "News for Paris Bcc: victim@example.com"
    assert headers["Bcc"] is None
    assert email.recipients() == [subscriber.email]


def test_a_message_without_tags_keeps_the_stored_html_in_its_shared_copy():
    subscriber = SubscriberFactory()
    message = MessageFactory(mailing_list=subscriber.mailing_list, body="Hi **there**, {ape}")
    pending_deliveries_for(message)

    mailer = emails.ListMessageMailer(message)
    email = mailer.build(message.subscribermessage_set.get())

    assert mailer.template.is_plain
    assert mailer.shared_copy is not None
    assert message.html in email.alternatives[0][0]
    assert "Content-Transfer-Encoding: 7bit" in email.message().as_string()


def test_a_test_copy_fills_a_subscribers_values_and_defaults_for_anyone_else(
    mailing_list, django_capture_on_commit_callbacks
):
    client = api_client_for(mailing_list.owner)
    message = DraftFactory(mailing_list=mailing_list, subject="For {{ name }}", body=BODY)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("mailinglist:api-message-test", kwargs={"pk": message.pk}),
            {"emails": ["BONOBO@example.com", "stranger@example.com"]},
            format="json",
        )

    bonobo, stranger = copy_to("bonobo@example.com"), copy_to("stranger@example.com")
    assert bonobo.subject == "[Test] For Bonobo"
    assert "Dear Bonobo of no company" in bonobo.body
    assert stranger.subject == "[Test] For "
    assert "Dear reader of no company" in stranger.body
    assert "Dear reader of no company" in stranger.alternatives[0][0]


def test_the_archive_feed_and_view_in_browser_page_show_the_defaults(
    client, mailing_list, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = MessageFactory(
            mailing_list=mailing_list,
            subject='News for {{ name|default:"you" }}',
            body=BODY + " at [{{ email }}](https://example.com/?u={{ email }})",
        )
    archive = reverse("mailinglist:archive", kwargs={"mailinglist_pk": mailing_list.pk})

    listing = client.get(archive).content.decode()
    page = client.get(f"{archive}/{message.pk}").content.decode()
    feed = feedparser.parse(client.get(f"{archive}/feed").content)

    for shown in [listing, page, feed.entries[0].title, feed.entries[0].summary]:
        assert "{{" not in shown
        assert "Bonobo" not in shown
        assert "alert(1)" not in shown
        assert "ape@example.com" not in shown
    assert "News for you" in listing
    assert "News for you" in page
    assert "Dear reader of no company at" in page
    assert 'href="https://example.com/?u="' in page
    assert feed.entries[0].title == "News for you"
    assert "Dear reader of no company" in feed.entries[0].summary


def test_a_view_in_browser_page_shows_the_defaults(
    client, mailing_list, django_capture_on_commit_callbacks
):
    mailing_list.archive = False
    mailing_list.save()
    with django_capture_on_commit_callbacks(execute=True):
        MessageFactory(mailing_list=mailing_list, subject="For {{ name }}", body=BODY)

    link = re.search(r"View it in your browser: (\S+)", copy_to("bonobo@example.com").body)[1]
    page = client.get(link.removeprefix("http://testserver")).content.decode()

    assert "/view/" in link
    assert "Dear reader of no company" in page
    assert "Bonobo" not in page
    assert "{{" not in page


def test_a_tagged_message_loads_each_batchs_names_in_one_query(django_assert_max_num_queries):
    mailing_list = MailingListFactory()
    for number in range(20):
        SubscriberFactory(mailing_list=mailing_list, name=f"Ape {number}")
    message = MessageFactory(mailing_list=mailing_list, body="Hello {{ name }}!")
    rows = claim_batch(message, 100, lease_seconds=60)
    mailer = emails.ListMessageMailer(message)

    with django_assert_max_num_queries(1):
        sending.load_merge_values(mailer, rows)
        bodies = [mailer.build(row).body for row in rows]

    assert {re.search(r"Hello Ape \d+!", body).group() for body in bodies} == {
        f"Hello Ape {number}!" for number in range(20)
    }


def test_the_preview_shows_the_fallbacks(client):
    mailing_list = MailingListFactory()
    client.force_login(mailing_list.owner)

    response = client.post(
        reverse("mailinglist:create_message", kwargs={"mailinglist_pk": mailing_list.pk}),
        {"subject": "Hi", "body": 'Dear {{ name|default:"friend" }},', "preview": "1"},
    )

    assert "Dear friend," in response.content.decode()
    assert not Message.objects.exists()


def test_a_subject_with_a_tag_that_reaches_elsewhere_is_refused_by_the_api():
    mailing_list = MailingListFactory()

    response = api_client_for(mailing_list.owner).post(
        reverse("mailinglist:api-message-list", kwargs={"mailing_list_pk": mailing_list.pk}),
        {"subject": "Hi {{ settings.SECRET_KEY }}", "body": "Hello", "status": "draft"},
        format="json",
    )

    assert response.status_code == 400
    assert "settings.SECRET_KEY" in response.json()["subject"][0]
