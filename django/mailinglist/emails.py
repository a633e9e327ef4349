import smtplib
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import get_template, render_to_string
from django.urls import reverse

from mailinglist.tokens import confirmation_token_generator, unsubscribe_token_generator


def absolute_url(path):
    return settings.MAILING_LIST_LINK_DOMAIN.rstrip("/") + path


def unsubscribe_link(subscriber):
    token = unsubscribe_token_generator.make_token(subscriber)
    return absolute_url(reverse("mailinglist:unsubscribe", kwargs={"token": token}))


def confirmation_link(subscriber):
    token = confirmation_token_generator.make_token(subscriber)
    return absolute_url(reverse("mailinglist:confirm_subscription", kwargs={"token": token}))


class EmailTemplateContext(dict):
    """What every subscriber e-mail template can count on."""

    def __init__(self, subscriber, **extra):
        super().__init__(
            subscriber=subscriber,
            mailing_list=subscriber.mailing_list,
            unsubscribe_link=unsubscribe_link(subscriber),
            **extra,
        )


def _link_host():
    return urlsplit(settings.MAILING_LIST_LINK_DOMAIN).hostname or "localhost"


def list_headers(context, message_id_local_part):
    """Headers that let mail clients thread, file and one-click unsubscribe list mail."""
    mailing_list = context["mailing_list"]
    name = mailing_list.name.replace("\\", "\\\\").replace('"', '\\"')
    unsubscribe = f"<{context['unsubscribe_link']}>"
    if settings.MAIL_APE_UNSUBSCRIBE_MAILTO:
        unsubscribe += f", <mailto:{settings.MAIL_APE_UNSUBSCRIBE_MAILTO}?subject=unsubscribe>"
    host = _link_host()
    return {
        "Message-ID": f"<{message_id_local_part}@{host}>",
        "List-Id": f'"{name}" <{mailing_list.pk}.{host}>',
        "List-Unsubscribe": unsubscribe,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _email(subject, text, html, recipient, headers):
    email = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.MAIL_APE_FROM_EMAIL,
        to=[recipient],
        headers=headers,
    )
    email.attach_alternative(html, "text/html")
    return email


def send_confirmation_email(subscriber):
    context = EmailTemplateContext(subscriber, confirmation_link=confirmation_link(subscriber))
    subject = render_to_string("mailinglist/email/confirmation-subject.txt", context)
    email = _email(
        subject=" ".join(subject.split()),
        text=render_to_string("mailinglist/email/confirmation-body.txt", context),
        html=render_to_string("mailinglist/email/confirmation-body.html", context),
        recipient=subscriber.email,
        headers=list_headers(context, f"confirm-{subscriber.pk}"),
    )
    email.send()


class ListMessageMailer:
    """Builds the copies of one list message; the Markdown is rendered once, here."""

    def __init__(self, message):
        self.message = message
        self.body_html = message.body_html
        self.text_template = get_template("mailinglist/email/message-body.txt")
        self.html_template = get_template("mailinglist/email/message-body.html")

    def build(self, subscriber_message):
        subscriber = subscriber_message.subscriber
        subscriber.mailing_list = self.message.mailing_list
        context = EmailTemplateContext(subscriber, message=self.message, body_html=self.body_html)
        return _email(
            subject=self.message.subject,
            text=self.text_template.render(context),
            html=self.html_template.render(context),
            recipient=subscriber.email,
            headers=list_headers(context, subscriber_message.pk),
        )


def smtp_connection():
    return get_connection()


def _describe_refusal(error):
    """The SMTP reply behind an exception, and whether it is permanent (5xx)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()))
    else:
        code, reply = error.smtp_code, error.smtp_error
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return f"{code} {reply}", 500 <= code < 600


def send_batch(mailer, subscriber_messages, connection):
    """Send each copy over one SMTP connection; returns (sent, [(row, error, permanent)]).

    A dropped connection is reopened once; if it drops again straight away the
    server is down, and the rest of the batch waits for a retry.
    """
    sent, failed = [], []
    remaining = list(subscriber_messages)
    just_reconnected = False
    while remaining:
        row = remaining.pop(0)
        try:
            connection.open()
            connection.send_messages([mailer.build(row)])
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
            failed.append((row, *_describe_refusal(error)))
            just_reconnected = False
        except OSError as error:
            connection.close()
            failed.append((row, f"connection: {error!r}", False))
            if just_reconnected:
                failed.extend((other, f"connection: {error!r}", False) for other in remaining)
                break
            just_reconnected = True
        else:
            sent.append(row)
            just_reconnected = False
    return sent, failed
