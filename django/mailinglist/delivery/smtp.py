"""One SMTP connection through a batch of copies, with the server's verdict on each.

A server that offers PIPELINING (RFC 2920) is sent each copy's MAIL FROM, RCPT TO
and DATA in the same write as the content of the copy before it, so a copy costs
one round trip where smtplib's sendmail() waits for four replies.
"""

import logging
import re
import smtplib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpEmailBackend

from mailinglist import emails
from mailinglist.delivery.outcomes import SmtpFailure
from mailinglist.models import SubscriberMessage
from mailinglist.ratelimit import SharedSendRateLimiter

logger = logging.getLogger(__name__)

Verdict = tuple[SubscriberMessage, SmtpFailure | None]

_LINE_STARTING_WITH_A_PERIOD = re.compile(rb"(?m)^\.")
# An address with nothing for smtplib.quoteaddr() to take apart (no display name,
# comment, quote or angle bracket) goes between angle brackets as it is.
_BARE_ADDRESS = re.compile(r"[^\s<>()\",;:\\\[\]]+@[^\s<>()\",;:\\\[\]]+")
_ACCEPTED_RECIPIENT = (250, 251)


def describe_refusal(
    error: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException,
) -> SmtpFailure:
    """The SMTP reply behind an exception, and whether it is permanent (5xx)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()))
        return describe_reply(code, reply)
    return describe_reply(error.smtp_code, error.smtp_error)


def describe_reply(code: int, reply: bytes | str) -> SmtpFailure:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return SmtpFailure(f"{code} {text}", 500 <= code < 600, code)


class Copy(NamedTuple):
    row: SubscriberMessage
    envelope: emails.Envelope


class ConnectionLost(Exception):
    """The connection failed; settled copies got their verdict first, unsettled ones may
    or may not have reached the server and must be sent again."""

    def __init__(self, settled: list[Verdict], unsettled: list[Copy], error: OSError) -> None:
        super().__init__(error)
        self.settled = settled
        self.unsettled = unsettled
        self.error = error


class SmtpSession:
    """Copies handed to one open smtplib connection, pipelined when the server allows.

    send() returns the verdicts it came to, which may be the previous copy's: a
    pipelined copy's content goes out with the next copy's envelope, or at finish().
    """

    def __init__(self, client: smtplib.SMTP) -> None:
        client.ehlo_or_helo_if_needed()
        self.client = client
        self.pipelining = client.has_extn("pipelining")
        self.sizes = client.has_extn("size")
        # A copy whose DATA was answered 354: its content goes out with the next write.
        self.awaiting_content: Copy | None = None
        self.reset_first = False

    def send(self, copy: Copy) -> list[Verdict]:
        if not self.pipelining:
            return [self._send_with_smtplib(copy)]
        envelope = self._envelope_commands(copy.envelope)
        previous, self.awaiting_content = self.awaiting_content, None
        reset, self.reset_first = self.reset_first, False
        settled: list[Verdict] = []
        unsettled = [sent for sent in (previous, copy) if sent is not None]
        try:
            self.client.send(
                (_content(previous.envelope.data) if previous else b"")
                + (b"RSET\r\n" if reset else b"")
                + envelope
            )
            if previous is not None:
                settled.append((previous.row, self._content_verdict()))
                unsettled.remove(previous)
            if reset:
                self.client.getreply()
            refusal = self._envelope_verdict()
        except OSError as error:
            raise ConnectionLost(settled, unsettled, error) from error
        if refusal is None:
            self.awaiting_content = copy
        else:
            settled.append((copy.row, refusal))
            self.reset_first = True
        return settled

    def finish(self) -> list[Verdict]:
        """Send what the last copy still waits for, leaving the connection ready for
        another session."""
        previous, self.awaiting_content = self.awaiting_content, None
        reset, self.reset_first = self.reset_first, False
        try:
            if previous is not None:
                self.client.send(_content(previous.envelope.data))
                return [(previous.row, self._content_verdict())]
            if reset:
                self.client.send(b"RSET\r\n")
                self.client.getreply()
        except OSError as error:
            raise ConnectionLost([], [previous] if previous else [], error) from error
        return []

    def _envelope_commands(self, envelope: emails.Envelope) -> bytes:
        size = f" SIZE={len(envelope.data)}" if self.sizes else ""
        return (
            f"MAIL FROM:{_smtp_path(envelope.sender)}{size}\r\n"
            f"RCPT TO:{_smtp_path(envelope.recipient)}\r\n"
            "DATA\r\n"
        ).encode("ascii")

    def _envelope_verdict(self) -> SmtpFailure | None:
        mail_from = self.client.getreply()
        rcpt_to = self.client.getreply()
        data = self.client.getreply()
        if mail_from[0] != 250:
            refusal = describe_reply(*mail_from)
        elif rcpt_to[0] not in _ACCEPTED_RECIPIENT:
            refusal = describe_reply(*rcpt_to)
        else:
            return None if data[0] == 354 else describe_reply(*data)
        if data[0] == 354:
            # The server waits for content that must not be sent; only dropping the
            # connection ends that transaction without delivering it.
            self.client.close()
        return refusal

    def _content_verdict(self) -> SmtpFailure | None:
        code, reply = self.client.getreply()
        return None if code == 250 else describe_reply(code, reply)

    def _send_with_smtplib(self, copy: Copy) -> Verdict:
        envelope = copy.envelope
        try:
            self.client.sendmail(envelope.sender, [envelope.recipient], envelope.data)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
            return copy.row, describe_refusal(error)
        except OSError as error:
            raise ConnectionLost([], [copy], error) from error
        return copy.row, None


def _smtp_path(address: str) -> str:
    """The address as smtplib.quoteaddr() writes it, without parsing the plain ones."""
    if _BARE_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _content(data: bytes) -> bytes:
    """A copy's bytes as DATA carries them: periods doubled at line starts, then the end."""
    # Most copies have no line to change, and the search is far cheaper than the substitution.
    if data.startswith(b".") or b"\n." in data:
        stuffed = _LINE_STARTING_WITH_A_PERIOD.sub(b"..", data)
    else:
        stuffed = data
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def open_session(connection: SmtpEmailBackend) -> SmtpSession:
    """A session on connection, opened (again) if need be; raises OSError if it can't be."""
    connection.open()
    if connection.connection is None:
        raise smtplib.SMTPServerDisconnected("the connection did not open")
    return SmtpSession(connection.connection)


def send_each(
    mailer: emails.ListMessageMailer,
    rows: Iterable[SubscriberMessage],
    connection: BaseEmailBackend,
    may_send: Callable[[], bool] | None = None,
    rate_limiter: SharedSendRateLimiter | None = None,
) -> Iterator[Verdict]:
    """Send each row's copy over one connection, yielding (row, None) for each the
    server accepted and (row, SmtpFailure) for each it did not.

    Stops early, leaving the rest untried, once may_send() says no. A dropped
    connection is reopened and the copies whose fate it left unknown are sent
    again at once (the same bytes, so the same Message-ID); if it drops again
    straight away the server is down, and they and the rest of the batch are
    reported as temporary failures.
    """
    remaining = iter(rows)
    smtp = connection if isinstance(connection, SmtpEmailBackend) else None
    session: SmtpSession | None = None
    for row in remaining:
        if may_send is not None and not may_send():
            break
        if rate_limiter is not None:
            rate_limiter.acquire()
        try:
            made = mailer.build(row) if smtp is None else Copy(row, mailer.envelope(row))
        except ValueError as error:
            # An address no e-mail can be made for will not get better by waiting.
            yield row, SmtpFailure(f"invalid address: {error}", permanent=True)
            continue
        if smtp is not None and isinstance(made, Copy):
            session, verdicts = _send_on(smtp, session, [made])
            gave_up = session is None
        else:
            assert isinstance(made, EmailMessage)
            verdicts, gave_up = _hand_to_backend(connection, row, made)
        yield from verdicts
        if gave_up:
            failure = verdicts[-1][1]
            yield from ((other, failure) for other in remaining)
            return
    if smtp is not None and session is not None:
        yield from _finish(smtp, session)


def _send_on(
    connection: SmtpEmailBackend, session: SmtpSession | None, copies: list[Copy]
) -> tuple[SmtpSession | None, list[Verdict]]:
    """Send copies on session, or on a new one if there is none or its connection drops.

    The session returned is None if the connection failed twice in a row; every
    copy whose fate was then unknown has a temporary failure among the verdicts.
    """
    waiting = deque(copies)
    verdicts: list[Verdict] = []
    for reconnected in (False, True):
        try:
            if session is None:
                session = open_session(connection)
            while waiting:
                verdicts += session.send(waiting.popleft())
            return session, verdicts
        except ConnectionLost as lost:
            verdicts += lost.settled
            waiting.extendleft(reversed(lost.unsettled))
            error: OSError = lost.error
        except OSError as refused:
            error = refused
        connection.close()
        session = None
        if reconnected:
            logger.warning("SMTP server unreachable, batch put off: %r", error)
            failure = SmtpFailure(f"connection: {error!r}", permanent=False)
            verdicts += [(copy.row, failure) for copy in waiting]
    return None, verdicts


def _finish(connection: SmtpEmailBackend, session: SmtpSession) -> Iterator[Verdict]:
    """The last copy's content, sent again on a new connection if the first one drops."""
    try:
        yield from session.finish()
        return
    except ConnectionLost as lost:
        yield from lost.settled
        unsettled = lost.unsettled
    connection.close()
    retried, verdicts = _send_on(connection, None, unsettled)
    yield from verdicts
    if retried is None:
        return
    try:
        yield from retried.finish()
    except ConnectionLost as lost:
        failure = SmtpFailure(f"connection: {lost.error!r}", permanent=False)
        yield from lost.settled
        yield from ((copy.row, failure) for copy in lost.unsettled)


def _hand_to_backend(
    connection: BaseEmailBackend, row: SubscriberMessage, email: EmailMessage
) -> tuple[list[Verdict], bool]:
    """A copy given to a backend that is not SMTP (an ESP's API, the development mailbox,
    the tests' outbox), tried again once if the connection fails; returns its verdict
    and whether the backend is to be given up on."""
    for reconnected in (False, True):
        try:
            connection.send_messages([email])
        except OSError as error:
            connection.close()
            if reconnected:
                logger.warning("E-mail backend unreachable, batch put off: %r", error)
                return [(row, SmtpFailure(f"connection: {error!r}", permanent=False))], True
        else:
            break
    return [(row, None)], False
