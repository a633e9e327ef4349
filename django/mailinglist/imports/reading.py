"""CSV files of subscribers read as real tools write them.

Spreadsheets, Mailchimp and listmonk export UTF-8 with or without a byte-order
mark, Windows code pages, or UTF-16; commas, semicolons or tabs; CRLF or LF;
quoted cells that hold delimiters, quotes and line breaks; columns in any order.
The reader finds the address and name columns by their usual headers and keeps
every other column as a custom field. It reads the stream once, forward, with a
small buffer, so a file of a million rows costs no more memory than one of ten.
"""

import codecs
import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from charset_normalizer import from_bytes
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from mailinglist.validators import (
    CUSTOM_FIELD_KEY,
    MAX_CUSTOM_FIELD_LENGTH,
    MAX_CUSTOM_FIELDS,
    validate_sendable_address,
)

SAMPLE_BYTES = 64 * 1024
# A cell can be at most this long: a CSV with an unclosed quote would otherwise
# swallow the rest of the file into one cell.
MAX_CELL_CHARACTERS = 100_000
MAX_ADDRESS_LENGTH = 254
MAX_NAME_LENGTH = 200
DELIMITERS = ",;\t"
WESTERN_WINDOWS = "cp1252"

EMAIL_HEADERS = {"email", "emailaddress", "mail", "emailadresse", "courriel", "correo", "邮箱"}
NAME_HEADERS = {"name", "fullname", "displayname", "姓名"}
FIRST_NAME_HEADERS = {"firstname", "givenname", "fname", "vorname", "prenom"}
LAST_NAME_HEADERS = {"lastname", "surname", "familyname", "lname", "nachname", "nom"}
# Columns listmonk and Mailchimp add about their own records of a person (ids,
# states, opt-in and change times, ratings, geolocation), which say nothing the
# list owner wrote about them and would only fill every subscriber with noise.
# listmonk's attributes column holds the person's own fields, as a JSON object.
BOOKKEEPING_HEADERS = {
    "uuid",
    "status",
    "createdat",
    "updatedat",
    "memberrating",
    "optintime",
    "optinip",
    "confirmtime",
    "confirmip",
    "latitude",
    "longitude",
    "gmtoff",
    "dstoff",
    "timezone",
    "cc",
    "region",
    "lastchanged",
    "leid",
    "euid",
}
ATTRIBUTES_HEADER = "attributes"

# Addresses this shape are valid for Django's validator and Mail Ape's alike; anything
# else is checked by both, which is slower but rare.
PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


class UnreadableFile(Exception):
    """The file cannot be read as CSV; str(error) is a sentence for the list owner."""


def compact(header: str) -> str:
    """A header as the lookups compare it: letters and digits only, in lower case."""
    return "".join(character for character in header.casefold() if character.isalnum())


def field_key(header: str) -> str:
    """The custom field a column becomes, named as a merge tag can name it."""
    unaccented = unicodedata.normalize("NFKD", header.casefold())
    key = re.sub(r"[^a-z0-9]+", "_", unaccented.encode("ascii", "ignore").decode()).strip("_")
    if key and key[0].isdigit():
        key = f"f_{key}"
    return key[:63].rstrip("_")


@dataclass(frozen=True)
class Columns:
    headers: list[str]
    email: int
    name: list[int]
    fields: dict[str, int]
    attributes: int | None = None

    def describe(self) -> list[dict[str, str]]:
        keys = {index: key for key, index in self.fields.items()}
        uses = []
        for index, header in enumerate(self.headers):
            if index == self.email:
                use, key = "email", ""
            elif index in self.name:
                use, key = "name", ""
            elif index in keys:
                use, key = "field", keys[index]
            elif index == self.attributes:
                use, key = "fields", ""
            else:
                use, key = "ignored", ""
            uses.append({"header": header, "use": use, "key": key})
        return uses

    @classmethod
    def find(cls, headers: list[str]) -> "Columns":
        compacted = [compact(header) for header in headers]
        email = next((i for i, header in enumerate(compacted) if header in EMAIL_HEADERS), None)
        if email is None:
            found = ", ".join(f"“{header}”" for header in headers if header) or "none"
            raise UnreadableFile(
                "No column holds e-mail addresses: the header row needs one called “email” "
                f"(or “Email Address”, “e-mail”…). Its columns are: {found}."
            )
        name = [i for i, header in enumerate(compacted) if header in NAME_HEADERS][:1]
        if not name:
            first = [i for i, header in enumerate(compacted) if header in FIRST_NAME_HEADERS]
            last = [i for i, header in enumerate(compacted) if header in LAST_NAME_HEADERS]
            name = first[:1] + last[:1]
        attributes = next(
            (i for i, header in enumerate(compacted) if header == ATTRIBUTES_HEADER), None
        )
        fields: dict[str, int] = {}
        for index, header in enumerate(headers):
            if (
                index in (email, attributes)
                or index in name
                or compacted[index] in BOOKKEEPING_HEADERS
                or not (key := field_key(header))
            ):
                continue
            unique, number = key, 2
            while unique in fields:
                unique, number = f"{key[:60]}_{number}", number + 1
            fields[unique] = index
        return cls(headers, email, name, fields, attributes)


@dataclass(frozen=True)
class ImportRow:
    line: int
    values: list[str]
    email: str
    name: str
    fields: dict[str, str]
    error: str


def address_error(address: str) -> str:
    """Why address cannot be a subscriber's, or "" if it can."""
    if not address:
        return "no address"
    if len(address) > MAX_ADDRESS_LENGTH:
        return "the address is too long"
    if PLAIN_ADDRESS.fullmatch(address):
        return ""
    try:
        validate_email(address)
        validate_sendable_address(address)
    except ValidationError:
        return "not an e-mail address Mail Ape can send to"
    return ""


class _Replay(io.RawIOBase):
    """The bytes already read for detection, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self.head = memoryview(head)
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        if self.head:
            size = min(len(target), len(self.head))
            target[:size] = self.head[:size]
            self.head = self.head[size:]
            return size
        data = self.rest.read(len(target))
        target[: len(data)] = data
        return len(data)


class _CountingLines:
    """Lines of text for csv.reader, counting them so each row knows its line."""

    def __init__(self, text: io.TextIOBase) -> None:
        self.text = text
        self.line = 0

    def __iter__(self) -> "_CountingLines":
        return self

    def __next__(self) -> str:
        line = self.text.readline()
        if not line:
            raise StopIteration
        self.line += 1
        # A NUL would make csv refuse the whole file; in a cell it is only a bad value.
        return line.replace("\0", "\ufffd")


def detect_encoding(sample: bytes, complete: bool) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if b"\0" not in sample:
        matches = from_bytes(sample)
        best = matches.best()
        if best is not None and best.encoding not in ("utf_8", "utf_16", "utf_32"):
            # A sample can fit several code pages equally well; Western European
            # Windows (Excel's default in most of the world) is the likeliest then.
            tied = {
                match.encoding
                for match in matches
                if (match.chaos, match.coherence) == (best.chaos, best.coherence)
            }
            return WESTERN_WINDOWS if WESTERN_WINDOWS in tied else best.encoding
    raise UnreadableFile(
        "This file is not text Mail Ape can read: save it as CSV (UTF-8 is best) and "
        "upload it again."
    )


class CsvReader:
    def __init__(self, stream: BinaryIO) -> None:
        sample = stream.read(SAMPLE_BYTES)
        self.encoding = detect_encoding(sample, complete=len(sample) < SAMPLE_BYTES)
        self.text = io.TextIOWrapper(
            io.BufferedReader(_Replay(sample, stream)),
            encoding=self.encoding,
            newline="",
        )
        self.lines = _CountingLines(self.text)
        try:
            header_line = self._header_line()
        except UnicodeDecodeError:
            raise self._undecodable() from None
        self.delimiter = max(DELIMITERS, key=header_line.count)
        self.reader = csv.reader(self.lines, delimiter=self.delimiter, strict=False)
        headers = next(csv.reader([header_line], delimiter=self.delimiter), [])
        self.columns = Columns.find([header.strip() for header in headers])

    def _header_line(self) -> str:
        for line in self.lines:
            if line.strip():
                return line
        raise UnreadableFile("The file is empty: it needs a header row and a row per person.")

    def _undecodable(self) -> UnreadableFile:
        return UnreadableFile(
            f"Around line {self.lines.line + 1}, the file is not {self.encoding} text like "
            "the lines before: "
            "save the file as CSV in UTF-8 and upload it again."
        )

    def rows(self) -> Iterator[ImportRow]:
        csv.field_size_limit(MAX_CELL_CHARACTERS)
        while True:
            first_line = self.lines.line + 1
            try:
                values = next(self.reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise self._undecodable() from None
            except csv.Error as error:
                raise UnreadableFile(
                    f"Line {first_line} cannot be read as CSV ({error}); check its quotes."
                ) from None
            if any(value.strip() for value in values):
                yield self.row(first_line, values)

    def row(self, line: int, values: list[str]) -> ImportRow:
        columns = self.columns

        def cell(index: int) -> str:
            return values[index].strip() if index < len(values) else ""

        email = cell(columns.email)
        name = " ".join(part for part in (cell(index) for index in columns.name) if part)
        fields = {key: value for key, index in columns.fields.items() if (value := cell(index))}
        error = address_error(email)
        if columns.attributes is not None and (attributes := cell(columns.attributes)):
            error = error or self._add_attributes(fields, attributes)
        if not error and len(name) > MAX_NAME_LENGTH:
            error = "the name is too long"
        if not error and any(ord(character) < 32 for character in name):
            error = "the name has a line break"
        if not error and len(fields) > MAX_CUSTOM_FIELDS:
            error = f"more than {MAX_CUSTOM_FIELDS} custom fields"
        if not error and any(len(value) > MAX_CUSTOM_FIELD_LENGTH for value in fields.values()):
            error = f"a custom field longer than {MAX_CUSTOM_FIELD_LENGTH} characters"
        return ImportRow(line, values, email, name, fields, error)

    @staticmethod
    def _add_attributes(fields: dict[str, str], attributes: str) -> str:
        """Add listmonk's attributes (a JSON object) to fields; the error, if any."""
        try:
            parsed = json.loads(attributes)
        except ValueError:
            return "its attributes are not JSON"
        if not isinstance(parsed, dict):
            return "its attributes are not a JSON object"
        for name, value in parsed.items():
            key = field_key(str(name))
            if not CUSTOM_FIELD_KEY.fullmatch(key) or value in (None, ""):
                continue
            fields.setdefault(
                key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            )
        return ""


def open_csv(stream: BinaryIO) -> CsvReader:
    """Detect the file's encoding, delimiter and columns; raises UnreadableFile."""
    return CsvReader(stream)
