"""Reading one mailed bounce report: the recipients it says failed, and the copy it quotes.

RFC 3464 delivery-status parts are read first; flufl.bounce's detectors then catch the
formats that have none (qmail, classic Exim, Yahoo and the like). Auto-replies are told
apart from bounces. Nothing here touches the database or settings, and no input, however
broken, makes read_report raise.
"""

import codecs
import email
import html
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.header import Header, decode_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses

from flufl.bounce import all_failures

log = logging.getLogger(__name__)

MAX_REPORT_BYTES = 10 * 1024 * 1024

# flufl.bounce's heuristics match dozens of patterns against every body line (seconds per
# megabyte); what a report says sits at its top, and the rest is the quoted original.
_HEURISTIC_BYTES = 256 * 1024
# The notification's words and a quoted header block come first in a text part; reading
# further into a large one only costs time.
_TEXT_BYTES = 1024 * 1024
_DIAGNOSTIC_CHARS = 1000
# RFC 5321's limits (64 + 1 + 255); anything longer is debris, not an address.
_LONGEST_ADDRESS = 320

DELIVERY_HEADER = "X-Mail-Ape-Delivery"
_STATUS_TYPES = {"message/delivery-status", "message/global-delivery-status"}
_QUOTED_MESSAGE_TYPES = {"message/rfc822", "message/global", "message/global-headers"}
_RECIPIENT_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To")

# The lookbehind and lookahead keep the code from matching inside an IP address.
_STATUS_CODE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
# The separator plain-text bounces (qmail, Yahoo, classic Exim, Sendmail) put before the
# copy of the message they return.
_QUOTE_MARKER = re.compile(
    r"^[ \t]*-{2,}.*?(copy of (the|your) message|original message|returned message"
    r"|unsent message|message follows|headers? follow).*$",
    re.IGNORECASE | re.MULTILINE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto[- ]?reply|autoresponse|abwesenheitsnotiz"
    r"|automatische antwort|r[ée]ponse automatique|respuesta autom[áa]tica",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Failure:
    address: str
    permanent: bool
    status: str
    diagnostic: str


@dataclass(frozen=True)
class Report:
    kind: str
    failures: tuple[Failure, ...]
    original_delivery_ids: tuple[str, ...]
    original_message_ids: tuple[str, ...]
    report_recipients: tuple[str, ...]


_UNREADABLE = Report("unknown", (), (), (), ())


def read_report(data: bytes) -> Report:
    """What one mailed message reports: kind "bounce" with its failures, "auto_reply", or
    "unknown"; the quoted original's delivery and message ids; and where it was sent."""
    try:
        return _read(bytes(data[:MAX_REPORT_BYTES]))
    except Exception:
        # A pipe transport that sees the command fail bounces the bounce; a report that
        # trips a bug in the email package is better counted as unreadable.
        log.exception("A bounce report could not be read")
        return _UNREADABLE


def _read(data: bytes) -> Report:
    message = email.message_from_bytes(data, policy=compat32)
    parts = list(_report_parts(message))
    notices: list[str] = []
    quoted: list[Message] = []
    for part in parts:
        content_type = part.get_content_type()
        if content_type in _QUOTED_MESSAGE_TYPES:
            quoted.extend(m for m in _payload_list(part) if isinstance(m, Message))
        elif content_type == "text/rfc822-headers":
            quoted.append(_headers_of(_part_text(part)))
        elif content_type == "text/plain":
            notice, copy = _split_at_quote(_part_text(part))
            notices.append(notice)
            if copy is not None:
                quoted.append(_headers_of(copy))
    if not notices:
        notices = [_html_text(part) for part in parts if part.get_content_type() == "text/html"]
    notice = "\n\n".join(notices)

    subject = _decoded_words(_header(message, "Subject"))
    failures, accounted = _status_failures(parts, notice)
    heuristic_message = (
        message
        if len(data) <= _HEURISTIC_BYTES
        else email.message_from_bytes(data[:_HEURISTIC_BYTES], policy=compat32)
    )
    failures.extend(_heuristic_failures(heuristic_message, accounted, notice, subject))

    if failures:
        kind = "bounce"
    elif _looks_automatic(message, subject):
        kind = "auto_reply"
    else:
        kind = "unknown"
    return Report(
        kind=kind,
        failures=tuple(failures),
        original_delivery_ids=_unique(
            _clean_value(v) for m in quoted for v in _all_headers(m, DELIVERY_HEADER)
        ),
        original_message_ids=_unique(
            _clean_message_id(v) for m in quoted for v in _all_headers(m, "Message-ID")
        ),
        report_recipients=_unique(
            (
                _clean_address(address)
                for name in _RECIPIENT_HEADERS
                for _, address in getaddresses(_all_headers(message, name))
            ),
            key=str.lower,
        ),
    )


def _report_parts(message: Message) -> Iterator[Message]:
    """Every part of the report, but nothing inside a quoted message: a copy of the
    original, or of an earlier report it quotes, says nothing about this delivery."""
    pending = [message]
    while pending:
        part = pending.pop()
        yield part
        if part.get_content_maintype() != "message" and part.is_multipart():
            pending.extend(reversed([p for p in _payload_list(part) if isinstance(p, Message)]))


def _status_failures(parts: list[Message], notice: str) -> tuple[list[Failure], set[str]]:
    """Failures of the RFC 3464 per-recipient blocks, and every recipient any block named,
    so that the heuristics add no verdict the report itself already gave."""
    failures: list[Failure] = []
    accounted: set[str] = set()
    for part in parts:
        if part.get_content_type() not in _STATUS_TYPES:
            continue
        for block in _status_blocks(part):
            # Original-Recipient is the address as the list sent to it, before any
            # forwarding, so it is the one a subscriber row holds.
            address = _clean_address(
                _header(block, "Original-Recipient") or _header(block, "Final-Recipient")
            )
            if not address or address.lower() in accounted:
                continue
            accounted.add(address.lower())
            action = _header(block, "Action").strip().lower()
            diagnostic = _one_line(_strip_type(_header(block, "Diagnostic-Code")))
            if not diagnostic:
                diagnostic = _one_line(_paragraph_about(notice, address))
            status = _status_code(_header(block, "Status"), diagnostic)
            if action.startswith("delayed"):
                failures.append(Failure(address, False, status, diagnostic))
            # OpenSMTPD writes "error" where RFC 3464 says "failed".
            elif action.startswith(("failed", "error")):
                permanent = not status.startswith("4")
                failures.append(Failure(address, permanent, status, diagnostic))
    return failures, accounted


def _status_blocks(part: Message) -> Iterator[Message]:
    """The header blocks of a delivery-status part. The email package splits
    message/delivery-status into blocks itself; the global (UTF-8) kind it reads as one
    message whose body holds the blocks after the first."""
    payload = part.get_payload()
    if isinstance(payload, str):
        yield from _blocks_of(_part_text(part))
        return
    for block in _payload_list(part):
        if not isinstance(block, Message):
            continue
        yield block
        rest = block.get_payload()
        if isinstance(rest, str) and rest.strip():
            yield from _blocks_of(rest[:_TEXT_BYTES])


def _blocks_of(text: str) -> Iterator[Message]:
    for chunk in re.split(r"\r?\n[ \t]*\r?\n", text):
        if chunk.strip():
            yield _headers_of(chunk)


def _heuristic_failures(
    message: Message, accounted: set[str], notice: str, subject: str
) -> list[Failure]:
    try:
        temporary, permanent = all_failures(message)
    except Exception:
        # Some detectors index into headers they assume are there; one that breaks ends
        # the scan, and the report is judged on what the RFC 3464 parts said.
        log.info("flufl.bounce could not read a bounce report", exc_info=True)
        return []
    verdicts = {address.decode("ascii", "replace"): False for address in temporary}
    verdicts.update({address.decode("ascii", "replace"): True for address in permanent})
    lowered = notice.lower()

    def place(address: str) -> tuple[int, str]:
        position = lowered.find(address.lower())
        return (position if position >= 0 else len(lowered), address)

    failures: list[Failure] = []
    for found in sorted(verdicts, key=place):
        address = _clean_address(found)
        if not address or address.lower() in accounted:
            continue
        accounted.add(address.lower())
        paragraph = _one_line(_paragraph_about(notice, address))
        failures.append(
            Failure(address, verdicts[found], _status_code("", paragraph), paragraph or subject)
        )
    return failures


def _paragraph_about(text: str, address: str) -> str:
    """The lines from the first one naming the address to the next blank line: where
    qmail, Exim and Yahoo put the remote server's reply."""
    lines = text.splitlines()
    needle = address.lower()
    for index, line in enumerate(lines):
        if needle in line.lower():
            paragraph = []
            for following in lines[index : index + 20]:
                if not following.strip():
                    break
                paragraph.append(following)
            return "\n".join(paragraph)
    return ""


def _status_code(status: str, diagnostic: str) -> str:
    """The Status field's enhanced code, else the one in the server's reply. Exim and
    others write a bare 5.0.0 whatever the server said, so a reply's more specific code
    of the same class wins over it."""
    stated = _STATUS_CODE.search(status)
    replied = _STATUS_CODE.search(diagnostic)
    if stated and not (
        replied and stated.group(2, 3) == ("0", "0") and replied.group(1) == stated.group(1)
    ):
        return ".".join(stated.groups())
    return ".".join(replied.groups()) if replied else ""


def _looks_automatic(message: Message, subject: str) -> bool:
    auto_submitted = _header(message, "Auto-Submitted").strip().lower()
    return (
        bool(auto_submitted and not auto_submitted.startswith("no"))
        or message.get("X-Autoreply") is not None
        or message.get("X-Autorespond") is not None
        or _header(message, "Precedence").strip().lower() == "auto_reply"
        or bool(_AUTO_REPLY_SUBJECT.search(subject))
    )


def _split_at_quote(text: str) -> tuple[str, str | None]:
    marker = _QUOTE_MARKER.search(text)
    if marker is None:
        return text, None
    return text[: marker.start()], text[marker.end() :].lstrip("\r\n")


def _payload_list(part: Message) -> list[object]:
    payload = part.get_payload()
    return list(payload) if isinstance(payload, list) else []


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    try:
        codecs.lookup(charset)
        return payload[:_TEXT_BYTES].decode(charset, "replace")
    except (LookupError, ValueError):
        return payload[:_TEXT_BYTES].decode("utf-8", "replace")


def _html_text(part: Message) -> str:
    return html.unescape(_TAG.sub(" ", _part_text(part)))


def _headers_of(text: str) -> Message:
    return HeaderParser(policy=compat32).parsestr(text.lstrip("\r\n"))


def _header(message: Message, name: str) -> str:
    return _header_text(message.get(name))


def _all_headers(message: Message, name: str) -> list[str]:
    return [_header_text(value) for value in message.get_all(name) or []]


def _header_text(value: object) -> str:
    """A header's value as text. With compat32, a value holding raw 8-bit bytes comes back
    as a Header of unknown-8bit chunks, which are most often UTF-8."""
    if value is None:
        return ""
    if isinstance(value, Header):
        return "".join(
            chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
            for chunk, _ in decode_header(value)
        )
    return str(value)


def _decoded_words(value: str) -> str:
    """A header with RFC 2047 encoded words (a subject, say) as the reader sees it."""
    try:
        chunks = decode_header(value)
    except Exception:
        return value
    text = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            text.append(chunk)
            continue
        try:
            text.append(chunk.decode(charset or "utf-8", "replace"))
        except (LookupError, ValueError):
            text.append(chunk.decode("utf-8", "replace"))
    return "".join(text)


def _strip_type(value: str) -> str:
    """A DSN field without its leading type ("rfc822;", "smtp;")."""
    kind, separator, rest = value.partition(";")
    if separator and kind.strip() and not re.search(r"[@<\s]", kind.strip()):
        return rest
    return value


def _clean_address(value: str) -> str:
    address = _strip_type(value).strip()
    if address.startswith("<") and ">" in address:
        address = address[1 : address.index(">")].strip()
    return address if len(address) <= _LONGEST_ADDRESS else ""


def _clean_message_id(value: str) -> str:
    bracketed = re.search(r"<([^<>]+)>", value)
    return (bracketed.group(1) if bracketed else value).strip()


def _clean_value(value: str) -> str:
    return " ".join(value.split())


def _one_line(text: str) -> str:
    line = " ".join(text[: _DIAGNOSTIC_CHARS * 4].split())
    return "".join(ch for ch in line if ch.isprintable())[:_DIAGNOSTIC_CHARS]


def _unique(values: Iterable[str], key: Callable[[str], str] = str) -> tuple[str, ...]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        if value and key(value) not in seen:
            seen.add(key(value))
            kept.append(value)
    return tuple(kept)
