"""The e-mails subscribers get: rendered from Django templates, sent with Django's mail API.

A list message's copies share one rendering (SharedCopy); the delivery engine
decides who gets one and when.
"""

import json
import re
import secrets
import uuid
from collections.abc import Mapping
from email.policy import compat32
from email.utils import formataddr, formatdate
from typing import Any, AnyStr, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpEmailBackend
from django.core.mail.message import forbid_multi_line_headers, sanitize_address
from django.db.models.functions import Lower
from django.template.loader import get_template, render_to_string
from django.urls import reverse
from django.utils import translation

from mailinglist.merge_tags import NOBODY, MergeValues, MessageTemplate
from mailinglist.models import MailingList, Message, Subscriber, SubscriberMessage
from mailinglist.tokens import (
    confirmation_token_generator,
    make_bounce_address,
    make_message_view_token,
    unsubscribe_token_generator,
)

# Names a copy's delivery row; bounce reports quote it back.
DELIVERY_HEADER = "X-Mail-Ape-Delivery"


def absolute_url(path: str) -> str:
    return settings.MAILING_LIST_LINK_DOMAIN.rstrip("/") + path


def _unsubscribe_url(token: str) -> str:
    return absolute_url(reverse("mailinglist:unsubscribe", kwargs={"token": token}))


def _manage_url(token: str) -> str:
    """The "manage your subscription" page, which takes the unsubscribe token."""
    return absolute_url(reverse("mailinglist:manage_subscription", kwargs={"token": token}))


def unsubscribe_link(subscriber: Subscriber) -> str:
    return _unsubscribe_url(unsubscribe_token_generator.make_token(subscriber))


def view_in_browser_link(message: Message) -> str:
    """The message's page in the list's archive, or, with the archive off, its signed page."""
    if message.mailing_list.archive:
        return absolute_url(
            reverse(
                "mailinglist:archived_message",
                kwargs={"mailinglist_pk": message.mailing_list_id, "pk": message.pk},
            )
        )
    token = make_message_view_token(message.pk)
    return absolute_url(reverse("mailinglist:view_in_browser", kwargs={"token": token}))


def confirmation_link(subscriber: Subscriber) -> str:
    token = confirmation_token_generator.make_token(subscriber)
    return absolute_url(reverse("mailinglist:confirm_subscription", kwargs={"token": token}))


class EmailTemplateContext(dict[str, Any]):
    """What every subscriber e-mail template can count on."""

    def __init__(self, subscriber: Subscriber, **extra: Any) -> None:
        token = unsubscribe_token_generator.make_token(subscriber)
        super().__init__(
            subscriber=subscriber,
            mailing_list=subscriber.mailing_list,
            unsubscribe_link=_unsubscribe_url(token),
            manage_link=_manage_url(token),
            **extra,
        )


def _link_host() -> str:
    return urlsplit(settings.MAILING_LIST_LINK_DOMAIN).hostname or "localhost"


def list_headers(
    context: Mapping[str, Any], message_id_local_part: str | uuid.UUID
) -> dict[str, str]:
    """Headers that let mail clients thread, file and one-click unsubscribe list mail."""
    mailing_list = context["mailing_list"]
    unsubscribe = f"<{context['unsubscribe_link']}>"
    if settings.MAIL_APE_UNSUBSCRIBE_MAILTO:
        unsubscribe += f", <mailto:{settings.MAIL_APE_UNSUBSCRIBE_MAILTO}?subject=unsubscribe>"
    host = _link_host()
    reply_to = {"Reply-To": mailing_list.reply_to} if mailing_list.reply_to else {}
    return {
        **reply_to,
        "Content-Language": mailing_list.language,
        "Message-ID": f"<{message_id_local_part}@{host}>",
        # RFC 2919: the name may be an encoded word, the id in angle brackets may not.
        "List-Id": formataddr((mailing_list.name, f"{mailing_list.pk}.{host}"), "utf-8"),
        "List-Unsubscribe": unsubscribe,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def delivery_headers(delivery_id: str) -> dict[str, str]:
    """Headers that bring a copy's delivery id back in providers' reports about it:
    Amazon SES quotes the headers, Postmark, SendGrid and Mailgun return these as
    the event's metadata (all under the key "mailape")."""
    headers = {
        DELIVERY_HEADER: delivery_id,
        "X-PM-Metadata-mailape": delivery_id,
        "X-SMTPAPI": json.dumps({"unique_args": {"mailape": delivery_id}}, separators=(",", ":")),
        "X-Mailgun-Variables": json.dumps({"mailape": delivery_id}, separators=(",", ":")),
    }
    if settings.MAIL_APE_SES_CONFIGURATION_SET:
        headers["X-SES-CONFIGURATION-SET"] = settings.MAIL_APE_SES_CONFIGURATION_SET
    return headers


class EnvelopedEmail(EmailMultiAlternatives):
    """A list message's copy, whose envelope sender may differ from its From address."""

    envelope_from = ""


def _email(
    subject: str, text: str, html: str, sender: str, recipient: str, headers: dict[str, str]
) -> EnvelopedEmail:
    email = EnvelopedEmail(
        subject=subject,
        body=text,
        from_email=sender,
        to=[recipient],
        headers=headers,
    )
    email.attach_alternative(html, "text/html")
    return email


def send_confirmation_email_to(subscriber_id: uuid.UUID | str) -> None:
    """Send the confirmation e-mail, unless the subscriber is gone or confirmed meanwhile."""
    subscriber = (
        Subscriber.objects.select_related("mailing_list")
        .filter(pk=subscriber_id, confirmed=False)
        .first()
    )
    if subscriber is not None:
        send_confirmation_email(subscriber)


def send_confirmation_email(subscriber: Subscriber) -> None:
    confirmation_email(subscriber).send()


def confirmation_email(subscriber: Subscriber) -> EmailMultiAlternatives:
    context = EmailTemplateContext(subscriber, confirmation_link=confirmation_link(subscriber))
    with translation.override(subscriber.mailing_list.language):
        subject = render_to_string("mailinglist/email/confirmation-subject.txt", context)
        text = render_to_string("mailinglist/email/confirmation-body.txt", context)
        html = render_to_string("mailinglist/email/confirmation-body.html", context)
    return _email(
        subject=" ".join(subject.split()),
        text=text,
        html=html,
        sender=subscriber.mailing_list.sender,
        recipient=subscriber.email,
        headers=list_headers(context, f"confirm-{subscriber.pk}"),
    )


class ListMessageMailer:
    """Builds the copies of one list message.

    The Markdown and both templates are rendered once, for a stand-in recipient
    whose address, unsubscribe link, Message-ID, Date and merge tag values are
    placeholders; the MIME message made from them is serialised once too, and
    each copy only swaps the placeholders for its recipient's values. A template
    that looks at the subscriber, or an encoding that would split a placeholder,
    makes every copy go the slower way: rendered and serialised per recipient; so
    does a recipient whose values would not fit in the shared bytes as they are.
    """

    def __init__(self, message: Message, subject_prefix: str = "") -> None:
        self.message = message
        self.mailing_list: MailingList = message.mailing_list
        self.subject_prefix = subject_prefix
        self.template = MessageTemplate(message.subject, message.body)
        self.sender = self.mailing_list.sender
        self.view_in_browser_link = view_in_browser_link(message)
        self.text_template = get_template("mailinglist/email/message-body.txt")
        self.html_template = get_template("mailinglist/email/message-body.html")
        self.envelope_from = sanitize_address(
            settings.MAIL_APE_FROM_EMAIL, settings.DEFAULT_CHARSET
        )
        with translation.override(self.mailing_list.language):
            self.shared_copy = SharedCopy.render(self)

    def context(
        self,
        subscriber: object,
        unsubscribe_link: str,
        manage_link: str,
        body_text: str,
        body_html: str,
    ) -> dict[str, Any]:
        """The same names EmailTemplateContext provides, for any subscriber-like value."""
        return {
            "subscriber": subscriber,
            "mailing_list": self.mailing_list,
            "unsubscribe_link": unsubscribe_link,
            "manage_link": manage_link,
            "message": self.message,
            "body_text": body_text,
            "body_html": body_html,
            "view_in_browser_link": self.view_in_browser_link,
        }

    def filled(self, recipient: MergeValues) -> tuple[str, str, str]:
        """The subject, the text body and the HTML body with recipient's values in the tags."""
        template = self.template
        text_values = template.text.values(recipient)
        html = self.message.html if template.html is None else template.html.fill(text_values)
        subject = self.subject_prefix + template.subject_for(recipient)
        return subject, template.text.join(text_values), html

    def envelope_sender(self, delivery_id: uuid.UUID) -> str:
        """The copy's envelope sender: a VERP address naming it, when bounces are read."""
        if not settings.MAIL_APE_BOUNCE_ADDRESS:
            return self.envelope_from
        return make_bounce_address(delivery_id, settings.MAIL_APE_BOUNCE_ADDRESS)

    def envelope(self, subscriber_message: SubscriberMessage) -> "Envelope":
        """What SMTP carries of the row's copy, the same as envelope_of(build(row)) but
        made without an e-mail object where the shared copy serves."""
        if self.shared_copy is not None:
            subscriber = subscriber_message.subscriber
            recipient = NOBODY if self.template.is_plain else merge_values(subscriber)
            envelope = self.shared_copy.envelope(subscriber_message, recipient)
            if envelope is not None:
                return _checked(envelope)
        return envelope_of(self.build(subscriber_message))

    def build(self, subscriber_message: SubscriberMessage) -> EmailMultiAlternatives:
        subscriber = subscriber_message.subscriber
        subscriber.mailing_list = self.mailing_list
        recipient = NOBODY if self.template.is_plain else merge_values(subscriber)
        if self.shared_copy is not None:
            copy = self.shared_copy.personalise(subscriber_message, recipient)
            if copy is not None:
                return copy
        subject, body_text, body_html = self.filled(recipient)
        context = EmailTemplateContext(
            subscriber,
            message=self.message,
            body_text=body_text,
            body_html=body_html,
            view_in_browser_link=self.view_in_browser_link,
        )
        with translation.override(self.mailing_list.language):
            text = self.text_template.render(context)
            html = self.html_template.render(context)
        email = _email(
            subject=subject,
            text=text,
            html=html,
            sender=self.sender,
            recipient=subscriber.email,
            headers=list_headers(context, subscriber_message.pk)
            | delivery_headers(str(subscriber_message.pk)),
        )
        email.envelope_from = self.envelope_sender(subscriber_message.pk)
        return email


def merge_values(subscriber: Subscriber) -> MergeValues:
    """What the subscriber's merge tags show; one query for a subscriber loaded without them."""
    if {"name", "fields"} & subscriber.get_deferred_fields():
        name, fields = Subscriber.objects.filter(pk=subscriber.pk).values_list(
            "name", "fields"
        ).first() or ("", {})
        subscriber.name, subscriber.fields = name, fields
    return MergeValues(subscriber.name, subscriber.email, subscriber.fields)


class _SubscriberStandIn:
    """Takes the subscriber's place in a shared rendering and notes any use of it."""

    def __init__(self) -> None:
        self.used = False

    def _note_use(self) -> None:
        self.used = True

    def __getattr__(self, name: str) -> Any:
        self._note_use()
        raise AttributeError(name)

    def __getitem__(self, key: object) -> Any:
        self._note_use()
        raise KeyError(key)

    def __str__(self) -> str:
        self._note_use()
        return ""

    def __bool__(self) -> bool:
        self._note_use()
        return True


# A value with a line break or another control character would need the bytes
# around it rewritten, not just patched.
_UNPATCHABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
# RFC 5322's limit on a line of a message, CRLF not counted.
MAX_LINE_BYTES = 998
_SUBJECT_HEADER = "Subject"
# How the MIME message's own serialisation writes a header.
_HEADER_POLICY = compat32.clone(linesep="\r\n")


# A Subject header that fits on one line of 78 characters is written as it is.
_UNFOLDED_SUBJECT_LENGTH = 78 - len(f"{_SUBJECT_HEADER}: ")


def _subject_header_value(subject: str) -> bytes:
    """The Subject header's value as a copy serialised on its own would carry it."""
    if len(subject) <= _UNFOLDED_SUBJECT_LENGTH and subject.isascii() and subject.isprintable():
        return subject.encode()
    name, value = forbid_multi_line_headers(_SUBJECT_HEADER, subject, settings.DEFAULT_CHARSET)
    return _HEADER_POLICY.fold_binary(name, value)[len(name) + 2 : -2]


def _cut(
    data: AnyStr, placeholders: Mapping[str, AnyStr], separator: AnyStr
) -> tuple[list[AnyStr], list[str]]:
    """data in pieces around each placeholder in it, and which field each one stood for."""
    field_for = {value: field for field, value in placeholders.items() if value in data}
    if not field_for:
        return [data], []
    pattern = re.compile(separator.join(re.escape(value) for value in field_for))
    return pattern.split(data), [field_for[match.group()] for match in pattern.finditer(data)]


def _patch(pieces: list[AnyStr], fields: list[str], values: Mapping[str, AnyStr]) -> AnyStr:
    joined = [pieces[0]]
    for field, piece in zip(fields, pieces[1:], strict=True):
        joined += (values[field], piece)
    return pieces[0][:0].join(joined)


class SharedCopy:
    """One serialised copy of a list message with a placeholder for each per-recipient value."""

    def __init__(
        self,
        mailer: ListMessageMailer,
        data: tuple[list[bytes], list[str]],
        text: tuple[list[str], list[str]],
        html: tuple[list[str], list[str]],
        links_around_token: dict[str, list[str]],
        tag_fields: tuple[list[str], list[str]],
    ) -> None:
        self.mailer = mailer
        self.links_around_token = links_around_token
        self.pieces, self.fields = data
        self.text_pieces, self.text_fields = text
        self.html_pieces, self.html_fields = html
        self.text_tag_fields, self.html_tag_fields = tag_fields
        self.longest_tagged_line, self.most_fields_on_a_tagged_line = self._tagged_lines(
            {*self.text_tag_fields, *self.html_tag_fields}
        )

    @classmethod
    def render(cls, mailer: ListMessageMailer) -> "SharedCopy | None":
        """The shared copy, or None when copies must be rendered one by one."""
        tag = secrets.token_hex(8)
        placeholders = {
            "to": f"mailape-recipient-{tag}@placeholder.invalid",
            "date": f"mailape-date-{tag}",
            "message_id": f"mailape-message-id-{tag}",
            "delivery": f"mailape-delivery-{tag}",
            "unsubscribe_link": f"mailape-unsubscribe-link-{tag}",
            "manage_link": f"mailape-manage-link-{tag}",
        }
        template = mailer.template
        # Not ASCII, so that a part with a tag goes 8bit and takes any value as it is.
        text_tags = {
            f"text-{number}": f"mailape-text-{number}-{tag}\u00b7"
            for number in range(len(template.text.tags))
        }
        html_tags = {
            f"html-{number}": f"mailape-html-{number}-{tag}\u00b7"
            for number in range(len(template.html.slots if template.html else []))
        }
        subject = mailer.subject_prefix + mailer.message.subject
        if not template.subject.is_plain:
            subject = placeholders["subject"] = f"mailape-subject-{tag}"
        body_html = (
            mailer.message.html if template.html is None else template.html.join(html_tags.values())
        )
        stand_in = _SubscriberStandIn()
        context = mailer.context(
            stand_in,
            placeholders["unsubscribe_link"],
            placeholders["manage_link"],
            template.text.join(text_tags.values()),
            body_html,
        )
        text = mailer.text_template.render(context)
        html = mailer.html_template.render(context)
        if stand_in.used:
            return None
        headers = list_headers(context, placeholders["message_id"])
        headers |= delivery_headers(placeholders["delivery"])
        headers["Date"] = placeholders["date"]
        email = _email(subject, text, html, mailer.sender, placeholders["to"], headers)
        data = email.message().as_bytes(linesep="\r\n")
        placeholders |= text_tags | html_tags
        expected = dict.fromkeys(placeholders, 1) | {
            "delivery": sum(value.count(placeholders["delivery"]) for value in headers.values()),
            "unsubscribe_link": 1
            + text.count(placeholders["unsubscribe_link"])
            + html.count(placeholders["unsubscribe_link"]),
            "manage_link": text.count(placeholders["manage_link"])
            + html.count(placeholders["manage_link"]),
        }
        if any(data.count(placeholders[field].encode()) != n for field, n in expected.items()):
            return None
        # Tokens are URL-safe, so each path is reversed once and each token put in it.
        token_placeholder = f"mailape-token-{tag}"
        links_around_token = {
            field: url(token_placeholder).split(token_placeholder)
            for field, url in (("unsubscribe_link", _unsubscribe_url), ("manage_link", _manage_url))
        }
        encoded = {field: value.encode() for field, value in placeholders.items()}
        return cls(
            mailer,
            _cut(data, encoded, b"|"),
            _cut(text, placeholders, "|"),
            _cut(html, placeholders, "|"),
            links_around_token,
            (list(text_tags), list(html_tags)),
        )

    def _tagged_lines(self, tag_fields: set[str]) -> tuple[int, int]:
        """The longest line with a tag on it, without its placeholders, and the most
        placeholders such a line has."""
        longest = most = length = on_line = 0
        tagged = False
        for number, piece in enumerate(self.pieces):
            *ended, last = piece.split(b"\r\n")
            if ended:
                if tagged:
                    longest, most = max(longest, length + len(ended[0])), max(most, on_line)
                length, on_line, tagged = len(last), 0, False
            else:
                length += len(last)
            if number < len(self.fields):
                on_line += 1
                tagged = tagged or self.fields[number] in tag_fields
        if tagged:
            longest, most = max(longest, length), max(most, on_line)
        return longest, most

    def envelope(
        self, subscriber_message: SubscriberMessage, recipient: MergeValues
    ) -> "Envelope | None":
        """Only what SMTP carries of the recipient's copy: the same bytes personalise()
        makes, without the e-mail object other backends need; None where it is None."""
        filled = self._fill(subscriber_message, recipient)
        if filled is None:
            return None
        return Envelope(
            self.mailer.envelope_sender(subscriber_message.pk),
            filled.address,
            _patch(self.pieces, self.fields, filled.encoded),
        )

    def personalise(
        self, subscriber_message: SubscriberMessage, recipient: MergeValues
    ) -> "PersonalisedEmail | None":
        """The recipient's copy, or None if their values do not fit in the shared bytes."""
        filled = self._fill(subscriber_message, recipient)
        if filled is None:
            return None
        mailer = self.mailer
        context = {
            "mailing_list": mailer.mailing_list,
            "unsubscribe_link": filled.values["unsubscribe_link"],
        }
        return PersonalisedEmail(
            _patch(self.pieces, self.fields, filled.encoded),
            envelope_from=mailer.envelope_sender(subscriber_message.pk),
            envelope_to=filled.address,
            subject=filled.subject,
            sender=mailer.sender,
            text=_patch(self.text_pieces, self.text_fields, filled.values),
            html=_patch(self.html_pieces, self.html_fields, filled.values),
            recipient=subscriber_message.subscriber.email,
            headers=list_headers(context, subscriber_message.pk)
            | delivery_headers(str(subscriber_message.pk)),
        )

    def _fill(
        self, subscriber_message: SubscriberMessage, recipient: MergeValues
    ) -> "_FilledValues | None":
        mailer = self.mailer
        subscriber = subscriber_message.subscriber
        address = _header_address(subscriber.email)
        token = unsubscribe_token_generator.make_token(subscriber)
        links = {
            field: prefix + token + suffix
            for field, (prefix, suffix) in self.links_around_token.items()
        }
        values = {
            "to": address,
            "date": formatdate(localtime=settings.EMAIL_USE_LOCALTIME),
            "message_id": str(subscriber_message.pk),
            "delivery": str(subscriber_message.pk),
            **links,
        }
        encoded = {field: value.encode("ascii") for field, value in values.items()}
        subject = mailer.subject_prefix + mailer.message.subject
        template = mailer.template
        if not template.is_plain:
            text_values = template.text.values(recipient)
            if any(_UNPATCHABLE.search(value) for value in text_values):
                return None
            tag_values = dict(zip(self.text_tag_fields, text_values, strict=True))
            if template.html is not None:
                html_values = template.html.values(text_values)
                tag_values.update(zip(self.html_tag_fields, html_values, strict=True))
            encoded |= {field: value.encode() for field, value in tag_values.items()}
            longest_value = max(map(len, encoded.values()))
            if (
                self.longest_tagged_line + self.most_fields_on_a_tagged_line * longest_value
                > MAX_LINE_BYTES
            ):
                return None
            values |= tag_values
            if not template.subject.is_plain:
                subject = mailer.subject_prefix + template.subject_for(recipient)
                encoded["subject"] = _subject_header_value(subject)
        return _FilledValues(address, values, encoded, subject)


class _FilledValues(NamedTuple):
    """A recipient's values for a SharedCopy's placeholders."""

    address: str
    values: dict[str, str]
    encoded: dict[str, bytes]
    subject: str


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(\.{_ATOM})*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


def _header_address(email: str) -> str:
    """The address as Django would write it in To and the envelope, without its slow parser."""
    if _PLAIN_ADDRESS.fullmatch(email):
        return email
    return sanitize_address(email, settings.DEFAULT_CHARSET)


class PreparedMIMEMessage:
    """The finished bytes of a copy, in the shape Django's mail backends ask message() for."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:
        return self.data if linesep == "\r\n" else self.data.replace(b"\r\n", linesep.encode())

    def as_string(self, unixfrom: bool = False, linesep: str = "\n") -> str:
        return self.as_bytes(linesep=linesep).decode()

    def get_charset(self) -> None:
        return None


class PersonalisedEmail(EnvelopedEmail):
    """A copy whose MIME bytes were made from a SharedCopy; every backend sends those bytes."""

    def __init__(
        self,
        data: bytes,
        envelope_from: str,
        envelope_to: str,
        subject: str,
        sender: str,
        text: str,
        html: str,
        recipient: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(
            subject=subject,
            body=text,
            from_email=sender,
            to=[recipient],
            headers=headers,
            alternatives=[(html, "text/html")],
        )
        self.data = data
        self.envelope_from = envelope_from
        self.envelope_to = envelope_to

    def message(self) -> Any:
        return PreparedMIMEMessage(self.data)


def smtp_connection() -> BaseEmailBackend:
    return get_connection()


class Envelope(NamedTuple):
    """What SMTP carries for a copy to one recipient."""

    sender: str
    recipient: str
    data: bytes


def envelope_of(email: EmailMultiAlternatives) -> Envelope:
    """A one-recipient copy's envelope and bytes, as Django's SMTP backend would send them.

    Raises ValueError for an address SMTP cannot carry as it is.
    """
    if isinstance(email, PersonalisedEmail):
        envelope = Envelope(email.envelope_from, email.envelope_to, email.data)
    else:
        encoding = email.encoding or settings.DEFAULT_CHARSET
        [recipient] = [sanitize_address(to, encoding) for to in email.recipients()]
        sender = getattr(email, "envelope_from", "") or email.from_email
        envelope = Envelope(
            sanitize_address(sender, encoding),
            recipient,
            email.message().as_bytes(linesep="\r\n"),
        )
    return _checked(envelope)


def _checked(envelope: Envelope) -> Envelope:
    for address in (envelope.sender, envelope.recipient):
        if not address.isascii() or "\r" in address or "\n" in address:
            raise ValueError(f"{address!r} cannot go in an SMTP envelope")
    return envelope


def send_copy(connection: BaseEmailBackend, email: EmailMultiAlternatives) -> None:
    """Send one copy over connection, opening it if need be."""
    connection.open()
    if (
        isinstance(connection, SmtpEmailBackend)
        and connection.connection is not None
        and isinstance(email, EnvelopedEmail)
        and email.envelope_from
    ):
        # Django's backend would parse both addresses again for every copy.
        envelope = envelope_of(email)
        connection.connection.sendmail(envelope.sender, [envelope.recipient], envelope.data)
    else:
        connection.send_messages([email])


def send_test_copies(message_id: uuid.UUID | str, addresses: list[str]) -> None:
    """Send each address a copy built as the real ones are, its subject marked [Test].

    An address on the list gets the copy its subscriber would; any other gets the
    copy of a subscriber who is not saved, whose unsubscribe link leads nowhere. No
    delivery row is made: a test is in no figure.
    """
    message = Message.objects.select_related("mailing_list").filter(pk=message_id).first()
    if message is None:
        return
    mailer = ListMessageMailer(message, subject_prefix="[Test] ")
    on_the_list = {
        subscriber.email.lower(): subscriber
        for subscriber in message.mailing_list.subscriber_set.annotate(
            address=Lower("email")
        ).filter(address__in=[address.lower() for address in addresses])
    }
    connection = smtp_connection()
    try:
        for address in addresses:
            subscriber = on_the_list.get(address.lower()) or Subscriber(
                email=address, mailing_list=message.mailing_list
            )
            send_copy(
                connection, mailer.build(SubscriberMessage(message=message, subscriber=subscriber))
            )
    finally:
        connection.close()
