"""The e-mails subscribers get: rendered from Django templates, sent with Django's mail API.

A list message's copies share one rendering (SharedCopy); the delivery engine
decides who gets one and when.
"""

import re
import secrets
import uuid
from collections.abc import Mapping
from email.utils import formataddr, formatdate
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpEmailBackend
from django.core.mail.message import sanitize_address
from django.db.models.functions import Lower
from django.template.loader import get_template, render_to_string
from django.urls import reverse

from mailinglist.models import MailingList, Message, Subscriber, SubscriberMessage
from mailinglist.tokens import (
    confirmation_token_generator,
    make_message_view_token,
    unsubscribe_token_generator,
)


def absolute_url(path: str) -> str:
    return settings.MAILING_LIST_LINK_DOMAIN.rstrip("/") + path


def _unsubscribe_url(token: str) -> str:
    return absolute_url(reverse("mailinglist:unsubscribe", kwargs={"token": token}))


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
        super().__init__(
            subscriber=subscriber,
            mailing_list=subscriber.mailing_list,
            unsubscribe_link=unsubscribe_link(subscriber),
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
        "Message-ID": f"<{message_id_local_part}@{host}>",
        # RFC 2919: the name may be an encoded word, the id in angle brackets may not.
        "List-Id": formataddr((mailing_list.name, f"{mailing_list.pk}.{host}"), "utf-8"),
        "List-Unsubscribe": unsubscribe,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _email(
    subject: str, text: str, html: str, sender: str, recipient: str, headers: dict[str, str]
) -> EmailMultiAlternatives:
    email = EmailMultiAlternatives(
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
    subject = render_to_string("mailinglist/email/confirmation-subject.txt", context)
    return _email(
        subject=" ".join(subject.split()),
        text=render_to_string("mailinglist/email/confirmation-body.txt", context),
        html=render_to_string("mailinglist/email/confirmation-body.html", context),
        sender=subscriber.mailing_list.sender,
        recipient=subscriber.email,
        headers=list_headers(context, f"confirm-{subscriber.pk}"),
    )


class ListMessageMailer:
    """Builds the copies of one list message.

    The Markdown and both templates are rendered once, for a stand-in recipient
    whose address, unsubscribe link, Message-ID and Date are placeholders; the
    MIME message made from them is serialised once too, and each copy only
    swaps the placeholders for its recipient's values. A template that looks at
    the subscriber, or an encoding that would split a placeholder, makes every
    copy go the slower way: rendered and serialised per recipient.
    """

    def __init__(self, message: Message, subject_prefix: str = "") -> None:
        self.message = message
        self.mailing_list: MailingList = message.mailing_list
        self.subject = subject_prefix + message.subject
        self.sender = self.mailing_list.sender
        self.body_html = message.html
        self.view_in_browser_link = view_in_browser_link(message)
        self.text_template = get_template("mailinglist/email/message-body.txt")
        self.html_template = get_template("mailinglist/email/message-body.html")
        self.envelope_from = sanitize_address(
            settings.MAIL_APE_FROM_EMAIL, settings.DEFAULT_CHARSET
        )
        self.shared_copy = SharedCopy.render(self)

    def context(self, subscriber: object, unsubscribe_link: str) -> dict[str, Any]:
        """The same names EmailTemplateContext provides, for any subscriber-like value."""
        return {
            "subscriber": subscriber,
            "mailing_list": self.mailing_list,
            "unsubscribe_link": unsubscribe_link,
            "message": self.message,
            "body_html": self.body_html,
            "view_in_browser_link": self.view_in_browser_link,
        }

    def build(self, subscriber_message: SubscriberMessage) -> EmailMultiAlternatives:
        subscriber = subscriber_message.subscriber
        subscriber.mailing_list = self.mailing_list
        if self.shared_copy is not None:
            return self.shared_copy.personalise(subscriber_message)
        context = EmailTemplateContext(
            subscriber,
            message=self.message,
            body_html=self.body_html,
            view_in_browser_link=self.view_in_browser_link,
        )
        return _email(
            subject=self.subject,
            text=self.text_template.render(context),
            html=self.html_template.render(context),
            sender=self.sender,
            recipient=subscriber.email,
            headers=list_headers(context, subscriber_message.pk),
        )


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


class SharedCopy:
    """One serialised copy of a list message with a placeholder for each per-recipient value."""

    def __init__(
        self,
        mailer: ListMessageMailer,
        pieces: list[bytes],
        fields: list[str],
        text: str,
        html: str,
        placeholders: dict[str, str],
        link_around_token: tuple[str, str],
    ) -> None:
        self.mailer = mailer
        self.link_around_token = link_around_token
        self.pieces = pieces
        self.fields = fields
        self.text = text
        self.html = html
        self.placeholders = placeholders

    @classmethod
    def render(cls, mailer: ListMessageMailer) -> "SharedCopy | None":
        """The shared copy, or None when copies must be rendered one by one."""
        tag = secrets.token_hex(8)
        placeholders = {
            "to": f"mailape-recipient-{tag}@placeholder.invalid",
            "date": f"mailape-date-{tag}",
            "message_id": f"mailape-message-id-{tag}",
            "unsubscribe_link": f"mailape-unsubscribe-link-{tag}",
        }
        stand_in = _SubscriberStandIn()
        context = mailer.context(stand_in, placeholders["unsubscribe_link"])
        text = mailer.text_template.render(context)
        html = mailer.html_template.render(context)
        if stand_in.used:
            return None
        headers = list_headers(context, placeholders["message_id"])
        headers["Date"] = placeholders["date"]
        email = _email(mailer.subject, text, html, mailer.sender, placeholders["to"], headers)
        data = email.message().as_bytes(linesep="\r\n")
        expected = {
            "to": 1,
            "date": 1,
            "message_id": 1,
            "unsubscribe_link": 1
            + text.count(placeholders["unsubscribe_link"])
            + html.count(placeholders["unsubscribe_link"]),
        }
        if any(data.count(placeholders[field].encode()) != n for field, n in expected.items()):
            return None
        # Tokens are URL-safe, so the path is reversed once and each token put in it.
        token_placeholder = f"mailape-token-{tag}"
        link_prefix, link_suffix = _unsubscribe_url(token_placeholder).split(token_placeholder)
        field_for = {value.encode(): field for field, value in placeholders.items()}
        pattern = re.compile(b"|".join(re.escape(value) for value in field_for))
        pieces = pattern.split(data)
        fields = [field_for[match.group()] for match in pattern.finditer(data)]
        return cls(mailer, pieces, fields, text, html, placeholders, (link_prefix, link_suffix))

    def personalise(self, subscriber_message: SubscriberMessage) -> "PersonalisedEmail":
        subscriber = subscriber_message.subscriber
        address = _header_address(subscriber.email)
        prefix, suffix = self.link_around_token
        link = prefix + unsubscribe_token_generator.make_token(subscriber) + suffix
        values = {
            "to": address,
            "date": formatdate(localtime=settings.EMAIL_USE_LOCALTIME),
            "message_id": str(subscriber_message.pk),
            "unsubscribe_link": link,
        }
        encoded = {field: value.encode("ascii") for field, value in values.items()}
        data = [self.pieces[0]]
        for field, piece in zip(self.fields, self.pieces[1:], strict=True):
            data += (encoded[field], piece)
        unsubscribe_placeholder = self.placeholders["unsubscribe_link"]
        context = {"mailing_list": self.mailer.mailing_list, "unsubscribe_link": link}
        return PersonalisedEmail(
            b"".join(data),
            envelope_from=self.mailer.envelope_from,
            envelope_to=address,
            subject=self.mailer.subject,
            sender=self.mailer.sender,
            text=self.text.replace(unsubscribe_placeholder, link),
            html=self.html.replace(unsubscribe_placeholder, link),
            recipient=subscriber.email,
            headers=list_headers(context, subscriber_message.pk),
        )


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


class PersonalisedEmail(EmailMultiAlternatives):
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


def send_copy(connection: BaseEmailBackend, email: EmailMultiAlternatives) -> None:
    """Send one copy over connection, opening it if need be."""
    connection.open()
    if (
        isinstance(email, PersonalisedEmail)
        and isinstance(connection, SmtpEmailBackend)
        and connection.connection is not None
    ):
        # Django's backend would parse both addresses again for every copy.
        connection.connection.sendmail(email.envelope_from, [email.envelope_to], email.data)
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
