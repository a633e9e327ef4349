"""Merge tags: a recipient's own name, address and custom fields in a message.

The grammar is small and strict, and nothing else is read: the owner's text never
goes through Django's template engine, so a tag cannot reach any other value, filter
or template tag.

- ``{{ name }}``, ``{{ email }}`` and ``{{ fields.<key> }}`` (a key as custom
  fields have them: lower-case letters, digits and underscores), each optionally
  followed by ``|default:"text"`` or ``|default:'text'`` (up to 200 characters on
  one line; a backslash before a quote or a backslash stands for that character).
  Spaces and tabs inside the braces, around ``|`` and after ``:`` are optional.
- Every ``{{`` and ``{%`` starts a tag: one that is not a merge tag is refused
  when the message is saved. ``\\{{`` and ``\\{%`` are a literal ``{{`` and ``{%``.
  Text that never passed that check (a subject, an older message) keeps what is
  refused as it is written.
- Tags are filled in everywhere in the body, code included. A missing or empty
  value shows the default, or nothing.
- In HTML a value is escaped; in a link's or an image's address it is also
  percent-encoded, so that it fills a piece of the address (a query value, a path
  segment), never its scheme or host. The text part gets the value as it is, a
  subject gets it on one line, cut to 200 characters.

The Markdown is rendered once per message, with an opaque word in each tag's place
that Markdown passes through unchanged in text, code, headings, tables and
addresses; the values go where those words came out. Parsing and filling take time
linear in the text.
"""

import html
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from mailinglist.markdown import render_markdown
from mailinglist.validators import CUSTOM_FIELD_KEY

# Each tag is filled in for each copy: a bound on the work one message makes.
MAX_MERGE_TAGS = 100
MAX_DEFAULT_LENGTH = 200
MAX_SUBJECT_VALUE_LENGTH = 200
# How much of a refused tag an error message quotes.
MAX_QUOTED_LENGTH = 80
MAX_REFUSED_QUOTED = 5

_TAG = re.compile(
    r"\{\{[ \t]*(?P<value>name|email|fields\.(?P<key>" + CUSTOM_FIELD_KEY.pattern + r"))[ \t]*"
    r"(?:\|[ \t]*default[ \t]*:[ \t]*"
    rf"""(?:"(?P<double>(?:[^"\\\r\n]|\\.){{0,{MAX_DEFAULT_LENGTH}}})"|"""
    rf"""'(?P<single>(?:[^'\\\r\n]|\\.){{0,{MAX_DEFAULT_LENGTH}}})')[ \t]*)?"""
    r"\}\}"
)
_OPENING = re.compile(r"\\?\{[{%]")
_QUOTED_ESCAPE = re.compile(r"""\\(["'\\])""")
_CLOSING = {"{{": "}}", "{%": "%}"}
# What would end or split a header line.
_LINE_BREAKING = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")
_HTML_TAG = re.compile(r"<[^>]*>")
_URL_ATTRIBUTE = re.compile(r'\s(?:href|src)="[^"]*"')


@dataclass(frozen=True)
class MergeValues:
    """What tags can reach: one recipient's name, address and custom fields."""

    name: str = ""
    email: str = ""
    fields: Mapping[str, object] = field(default_factory=dict)


# A reader who is nobody in particular: every tag shows its default.
NOBODY = MergeValues()


@dataclass(frozen=True)
class MergeTag:
    source: str
    value: str
    key: str
    default: str

    def fill(self, values: MergeValues) -> str:
        if self.value == "name":
            found: object = values.name
        elif self.value == "email":
            found = values.email
        else:
            found = values.fields.get(self.key)
        return str(found) if found else self.default

    @classmethod
    def from_match(cls, match: re.Match[str]) -> "MergeTag":
        quoted = match["double"] if match["double"] is not None else match["single"] or ""
        return cls(
            source=match.group(),
            value=match["value"].partition(".")[0],
            key=match["key"] or "",
            default=_QUOTED_ESCAPE.sub(r"\1", quoted),
        )


class MergeText:
    """Text as literal pieces with a tag between each two: pieces[0], tags[0], pieces[1], …"""

    def __init__(
        self, pieces: list[str], tags: list[MergeTag], refused: list[str], escapes: int
    ) -> None:
        self.pieces = pieces
        self.tags = tags
        self.refused = refused
        # Whether the text is just itself: no tags, and no braces written escaped.
        self.is_plain = not tags and not escapes

    @classmethod
    def parse(cls, text: str) -> "MergeText":
        pieces: list[str] = []
        tags: list[MergeTag] = []
        refused: list[str] = []
        piece: list[str] = []
        position = escapes = 0
        while opening := _OPENING.search(text, position):
            start, brace = opening.start(), opening.group()[-2:]
            piece.append(text[position:start])
            position = opening.end()
            if opening.group().startswith("\\"):
                piece.append(brace)
                escapes += 1
            elif tag := _TAG.match(text, start):
                pieces.append("".join(piece))
                piece = []
                tags.append(MergeTag.from_match(tag))
                position = tag.end()
            else:
                piece.append(brace)
                refused.append(_quote_refused(text, start, _CLOSING[brace]))
        piece.append(text[position:])
        pieces.append("".join(piece))
        return cls(pieces, tags, refused, escapes)

    def join(self, values: Iterable[str]) -> str:
        joined = [self.pieces[0]]
        for value, piece in zip(values, self.pieces[1:], strict=True):
            joined += (value, piece)
        return "".join(joined)

    def values(self, recipient: MergeValues) -> list[str]:
        return [tag.fill(recipient) for tag in self.tags]

    def fill(self, recipient: MergeValues) -> str:
        return self.join(self.values(recipient))


def _quote_refused(text: str, start: int, closing: str) -> str:
    end = text.find(closing, start + 2, start + MAX_QUOTED_LENGTH)
    line_end = text.find("\n", start, start + MAX_QUOTED_LENGTH)
    if end != -1 and (line_end == -1 or end < line_end):
        return text[start : end + len(closing)]
    stop = line_end if line_end != -1 else start + MAX_QUOTED_LENGTH // 2
    return text[start:stop].rstrip() + "…"


def header_safe(value: str) -> str:
    """The value on one line, and short enough that no word of it makes the line too long
    for SMTP: whatever would break a header line becomes a space."""
    return _LINE_BREAKING.sub(" ", value)[:MAX_SUBJECT_VALUE_LENGTH]


@dataclass(frozen=True)
class HtmlSlot:
    """Where one tag's value goes in the rendered HTML, and whether inside an address."""

    tag: int
    in_address: bool


class MergeHtml:
    """A body's Markdown rendered once, with a slot wherever a tag's value goes."""

    def __init__(self, pieces: list[str], slots: list[HtmlSlot]) -> None:
        self.pieces = pieces
        self.slots = slots

    @classmethod
    def render(cls, text: MergeText) -> "MergeHtml":
        word = f"mailapetag{secrets.token_hex(8)}x"
        markdown = text.join(f"{word}{number}x" for number in range(len(text.tags)))
        rendered = render_markdown(markdown)
        addresses = [
            (tag.start() + attribute.start(), tag.start() + attribute.end())
            for tag in _HTML_TAG.finditer(rendered)
            for attribute in _URL_ATTRIBUTE.finditer(tag.group())
        ]
        pieces, slots = [], []
        position, address = 0, 0
        for found in re.finditer(re.escape(word) + r"(\d+)x", rendered):
            while address < len(addresses) and addresses[address][1] <= found.start():
                address += 1
            in_address = address < len(addresses) and addresses[address][0] < found.start()
            pieces.append(rendered[position : found.start()])
            slots.append(HtmlSlot(int(found[1]), in_address))
            position = found.end()
        pieces.append(rendered[position:])
        return cls(pieces, slots)

    def values(self, tag_values: list[str]) -> list[str]:
        """Each slot's value, escaped for where it is, from each tag's value."""
        return [_html_value(tag_values[slot.tag], slot.in_address) for slot in self.slots]

    def join(self, values: Iterable[str]) -> str:
        joined = [self.pieces[0]]
        for value, piece in zip(values, self.pieces[1:], strict=True):
            joined += (value, piece)
        return "".join(joined)

    def fill(self, tag_values: list[str]) -> str:
        return self.join(self.values(tag_values))


def _html_value(value: str, in_address: bool) -> str:
    return html.escape(quote(value, safe="") if in_address else value)


class MessageTemplate:
    """A message's subject and body with their tags found, the body's Markdown rendered once."""

    def __init__(self, subject: str, body: str) -> None:
        self.subject = MergeText.parse(subject)
        self.text = MergeText.parse(body)
        self.html = None if self.text.is_plain else MergeHtml.render(self.text)
        self.is_plain = self.subject.is_plain and self.text.is_plain

    def subject_for(self, recipient: MergeValues) -> str:
        return _filled_subject(self.subject, recipient)


def _filled_subject(subject: MergeText, recipient: MergeValues) -> str:
    return subject.join(header_safe(value) for value in subject.values(recipient))


class ShownMessage(Protocol):
    subject: str
    body: str
    html: str


def subject_with_defaults(subject: str) -> str:
    return _filled_subject(MergeText.parse(subject), NOBODY)


def show_with_defaults(message: ShownMessage) -> ShownMessage:
    """Set the message's subject and HTML to what a reader who is nobody in particular
    sees, for a page or a feed that shows it; the stored HTML serves a body without tags."""
    template = MessageTemplate(message.subject, message.body)
    message.subject = template.subject_for(NOBODY)
    if template.html is not None:
        message.html = template.html.fill(template.text.values(NOBODY))
    return message


def validate_merge_tags(value: str) -> None:
    """Refuse anything that looks like a tag but is not one of the merge tags."""
    text = MergeText.parse(value)
    if text.refused:
        raise ValidationError(
            _(
                "%(refused)s: not a merge tag. Merge tags are {{ name }}, {{ email }} and "
                '{{ fields.<key> }}, each with an optional |default:"text"; write \\{{ for a '
                "literal {{."
            ),
            code="merge_tag",
            params={"refused": ", ".join(list(dict.fromkeys(text.refused))[:MAX_REFUSED_QUOTED])},
        )
    if len(text.tags) > MAX_MERGE_TAGS:
        raise ValidationError(
            _("The message has %(count)s merge tags; it can have at most %(limit)s."),
            code="too_many_merge_tags",
            params={"count": len(text.tags), "limit": MAX_MERGE_TAGS},
        )
