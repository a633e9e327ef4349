"""One SMTP connection through a batch of copies, with the server's verdict on each."""

import logging
import smtplib
import time
from collections.abc import Iterable, Iterator

from django.core.mail.backends.base import BaseEmailBackend

from mailinglist import emails
from mailinglist.delivery.outcomes import SmtpFailure
from mailinglist.models import SubscriberMessage
from mailinglist.ratelimit import SharedSendRateLimiter

logger = logging.getLogger(__name__)

Verdict = tuple[SubscriberMessage, SmtpFailure | None]


def describe_refusal(
    error: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException,
) -> SmtpFailure:
    """The SMTP reply behind an exception, and whether it is permanent (5xx)."""
    reply: bytes | str
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()))
    else:
        code, reply = error.smtp_code, error.smtp_error
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return SmtpFailure(f"{code} {text}", 500 <= code < 600, code)


def send_each(
    mailer: emails.ListMessageMailer,
    rows: Iterable[SubscriberMessage],
    connection: BaseEmailBackend,
    send_until: float | None = None,
    rate_limiter: SharedSendRateLimiter | None = None,
) -> Iterator[Verdict]:
    """Send each row's copy over one SMTP connection, yielding (row, None) for each
    the server accepted and (row, SmtpFailure) for each it did not.

    Stops early, leaving the rest untried, once time.monotonic() passes send_until.
    A dropped connection is reopened and the copy tried again at once; if it
    drops again straight away the server is down, and the rest of the batch is
    reported as temporary failures.
    """
    remaining = iter(rows)
    for row in remaining:
        if send_until is not None and time.monotonic() >= send_until:
            return
        if rate_limiter is not None:
            rate_limiter.acquire()
        try:
            email = mailer.build(row)
        except ValueError as error:
            # An address no e-mail can be made for will not get better by waiting.
            yield row, SmtpFailure(f"invalid address: {error}", permanent=True)
            continue
        for reconnected in (False, True):
            try:
                emails.send_copy(connection, email)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
                yield row, describe_refusal(error)
            except OSError as error:
                connection.close()
                if not reconnected:
                    continue
                logger.warning("SMTP server unreachable, batch put off: %r", error)
                failure = SmtpFailure(f"connection: {error!r}", permanent=False)
                yield row, failure
                for other in remaining:
                    yield other, failure
                return
            else:
                yield row, None
            break
