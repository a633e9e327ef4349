"""Reading subscriber CSV files as spreadsheets and mailing-list tools export them.

open_csv reads a sample from the start of a stream to find the encoding, the delimiter and
the header; CsvReader.rows() then reads on through the rest one block at a time, so memory
stays flat whatever the size of the file, and the stream is read once, forward only.
"""

import codecs
import csv
import functools
import io
import itertools
import json
import re
import unicodedata
from collections.abc import Container, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import charset_normalizer
from charset_normalizer.utils import is_multi_byte_encoding
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from mailinglist.models import Subscriber
from mailinglist.validators import (
    MAX_CUSTOM_FIELD_LENGTH,
    MAX_CUSTOM_FIELDS,
    validate_sendable_address,
)

SAMPLE_BYTES = 64 * 1024
BLOCK_BYTES = 64 * 1024
# A subscriber's row is at most some 60 KB (50 custom fields of 1,000 characters); a longer
# line or cell means the file is not a list of people, and would only cost memory.
MAX_LINE_CHARS = 1024 * 1024
MAX_CELL_CHARS = 128 * 1024
csv.field_size_limit(MAX_CELL_CHARS)

MAX_ADDRESS_LENGTH = Subscriber._meta.get_field("email").max_length or 254
MAX_NAME_LENGTH = Subscriber._meta.get_field("name").max_length or 200

# Headers are compared by their letters and digits only, so "E-Mail-Adresse",
# "email_address" and "Email Address" are alike.
ADDRESS_HEADERS = {
    "email",
    "emailaddress",
    "mail",
    "mailaddress",
    "emailadresse",
    "mailadresse",
    "adresseemail",
    "adressemail",
    "courriel",
    "adressecourriel",
    "correo",
    "correoelectronico",
    "emailadres",
    "epost",
    "epostadresse",
    "epostadress",
    "电子邮件",
    "电子邮箱",
    "邮箱",
    "邮件地址",
}
NAME_HEADERS = {"name", "fullname", "displayname", "nomcomplet", "nombrecompleto", "姓名"}
FIRST_NAME_HEADERS = {"firstname", "fname", "givenname", "forename", "vorname", "prenom"}
LAST_NAME_HEADERS = {"lastname", "lname", "surname", "familyname", "nachname", "nom"}

# What the tool that exported the file recorded about its own handling of the person
# (ids, consent times and IP addresses, ratings, geo-IP guesses, status, staff notes and
# tags) rather than anything a message would address them with. A column is dropped only
# in that tool's own export, recognised by headers no one else writes, so that an owner's
# own "Status" or "Notes" column is kept.
LISTMONK_SIGNATURE = {"uuid", "attributes"}
LISTMONK_BOOKKEEPING = {"uuid", "status", "createdat", "updatedat"}
MAILCHIMP_SIGNATURE = {"leid", "euid", "memberrating"}
MAILCHIMP_BOOKKEEPING = {
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
    "notes",
    "tags",
    "unsubtime",
    "unsubcampaigntitle",
    "unsubcampaignid",
    "unsubreason",
    "unsubreasonother",
    "cleantime",
    "cleancampaigntitle",
    "cleancampaignid",
}

# Plain ASCII addresses, nearly every address in a real list, that Django's validator and
# validate_sendable_address both accept (test_csv_reading proves it on tricky addresses);
# anything else goes through those validators themselves.
SIMPLE_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+'-]+(?:\.[A-Za-z0-9_%+'-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
BINARY_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
IN_WORD_CHARACTER = re.compile(r"(?<=[^\W\d_])[^\x00-\x7f](?=[^\W\d_])")
LINE_BREAK = re.compile(r"\r\n|\r|\n")
SEPARATOR_HINT = re.compile(r"sep=([,;\t])\r?\n?")
DELIMITERS = (",", ";", "\t")

BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", 0),
    (codecs.BOM_UTF32_LE, "utf-32-le", len(codecs.BOM_UTF32_LE)),
    (codecs.BOM_UTF32_BE, "utf-32-be", len(codecs.BOM_UTF32_BE)),
    (codecs.BOM_UTF16_LE, "utf-16-le", len(codecs.BOM_UTF16_LE)),
    (codecs.BOM_UTF16_BE, "utf-16-be", len(codecs.BOM_UTF16_BE)),
)
# charset-normalizer cannot tell the Latin-alphabet code pages apart on a list of names.
# The first of these that reads the sample with the fewest oddities wins: Windows-1252 is
# what Excel writes in Western Europe and the Americas, Mac Roman what older Mac Excel
# writes, Windows-1250 what Excel writes in Central Europe.
LATIN_CODE_PAGES = ("cp1252", "mac-roman", "cp1250")
SPREADSHEET_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive, such as an Excel (.xlsx) or OpenDocument workbook"),
    (b"\xd0\xcf\x11\xe0", "an Excel (.xls) workbook"),
    (b"%PDF", "a PDF document"),
)
SAVE_AS_CSV = "In your spreadsheet, choose Save As › CSV UTF-8, and upload that file."


class UnreadableFile(Exception):
    """The file cannot be read as CSV; str(error) is a sentence for the list owner."""


@dataclass(frozen=True)
class Columns:
    """What each column of the file is: the header's cells, in the file's order, and the
    indexes of the columns that make each part of a subscriber. Any other column is
    ignored."""

    headers: list[str]
    email: int
    name: list[int]
    fields: dict[str, int]
    # listmonk's "attributes" column: every key of the JSON object in it is a custom field.
    attributes: int | None = None

    def describe(self) -> list[dict[str, str]]:
        """For the preview: each header and what it becomes. The key is the custom field's
        key, "*" for a column whose JSON object gives several, and "" for the others."""
        uses = {self.email: ("email", "")}
        uses.update((index, ("name", "")) for index in self.name)
        uses.update((index, ("field", key)) for key, index in self.fields.items())
        if self.attributes is not None:
            uses[self.attributes] = ("field", "*")
        described = []
        for index, header in enumerate(self.headers):
            use, key = uses.get(index, ("ignored", ""))
            described.append({"header": header, "use": use, "key": key})
        return described


@dataclass(frozen=True)
class ImportRow:
    """One data row: line is the file's line it starts on (the header's is 1), values its
    raw cells, and error why it cannot be stored, or "". The address is as written, so two
    rows may hold the same subscriber; telling them apart is the importer's work."""

    line: int
    values: list[str]
    email: str
    name: str
    fields: dict[str, str]
    error: str


def address_error(email: str) -> str:
    """Why a subscriber could not have this address, or "" if it can: exactly what the
    Subscriber model accepts."""
    if not email:
        return "no address"
    if len(email) > MAX_ADDRESS_LENGTH:
        return f"address longer than {MAX_ADDRESS_LENGTH} characters"
    if SIMPLE_ADDRESS.fullmatch(email):
        return ""
    try:
        validate_email(email)
    except ValidationError:
        return "not an e-mail address"
    try:
        validate_sendable_address(email)
    except ValidationError:
        return "Mail Ape cannot send to this address as it is written"
    return ""


class CsvReader:
    """A CSV file whose encoding, delimiter and columns are known; rows() reads it, once."""

    def __init__(
        self, blocks: Iterator[bytes], encoding: str, delimiter: str, columns: Columns, skip: int
    ):
        self.encoding = encoding
        self.delimiter = delimiter
        self.columns = columns
        self._blocks = blocks
        # The header, and Excel's "sep=" line above it if there is one.
        self._skip = skip
        self._name = tuple(columns.name)
        self._fields = tuple(columns.fields.items())

    def rows(self) -> Iterator[ImportRow]:
        """Every data row, in order; lines without any text are skipped."""
        records = csv.reader(_decoded_lines(self._blocks, self.encoding), delimiter=self.delimiter)
        skip = self._skip
        last_line = 0
        try:
            for values in records:
                line = last_line + 1
                last_line = records.line_num
                if skip:
                    if not _is_blank(values):
                        skip -= 1
                    continue
                row = self._row(line, values)
                if row is not None:
                    yield row
        except csv.Error:
            raise UnreadableFile(
                f"Line {last_line + 1} starts a cell longer than {MAX_CELL_CHARS:,} "
                "characters: this does not look like a list of subscribers."
            ) from None

    def _row(self, line: int, values: list[str]) -> ImportRow | None:
        count = len(values)
        email_index = self.columns.email
        email = values[email_index].strip() if email_index < count else ""
        if not email and _is_blank(values):
            return None
        error = address_error(email)
        name = " ".join(filter(None, [values[i].strip() for i in self._name if i < count]))
        if name and not name.isprintable():
            name = " ".join(name.split())
            if CONTROL_CHARACTER.search(name):
                error = error or "name with control characters"
        if len(name) > MAX_NAME_LENGTH:
            error = error or f"name longer than {MAX_NAME_LENGTH} characters"
        fields = {}
        for key, index in self._fields:
            if index < count:
                value = values[index].strip()
                if value:
                    fields[key] = value
        attributes = self.columns.attributes
        if attributes is not None and attributes < count:
            attributes_error = _add_attributes(fields, values[attributes])
            error = error or attributes_error
        return ImportRow(line, values, email, name, fields, error or _fields_error(fields))


def open_csv(stream: BinaryIO) -> CsvReader:
    """Detect encoding (from a sample at the start), dialect and header; raise UnreadableFile."""
    sample = _read_sample(stream)
    complete = len(sample) < SAMPLE_BYTES
    if not sample.strip():
        raise UnreadableFile("The file is empty.")
    for signature, kind in SPREADSHEET_SIGNATURES:
        if sample.startswith(signature):
            raise UnreadableFile(f"This is {kind}, not a CSV file. {SAVE_AS_CSV}")
    encoding, start = _encoding(sample)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(
        sample[start:], final=complete
    )
    if len(BINARY_CHARACTER.findall(text)) > max(10, len(text) / 100):
        raise UnreadableFile(f"This is not a text file. {SAVE_AS_CSV}")
    hint = SEPARATOR_HINT.match(text)
    if hint:
        delimiter = hint[1]
        text = text[hint.end() :]
    else:
        delimiter = _delimiter(text, complete)
    header = next(
        filter(_is_present, csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)), None
    )
    if header is None or (not complete and not LINE_BREAK.search(text)):
        raise UnreadableFile("The file has no line of column headers.")
    blocks = _blocks(sample[start:], stream)
    return CsvReader(blocks, encoding, delimiter, _columns(header), 2 if hint else 1)


def _read_sample(stream: BinaryIO) -> bytes:
    parts = []
    size = 0
    while size < SAMPLE_BYTES:
        part = stream.read(SAMPLE_BYTES - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _blocks(sample: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """The file's bytes: the sample already read, then the rest of the stream, then b""."""
    yield sample
    while block := stream.read(BLOCK_BYTES):
        yield block
    yield b""


def _encoding(sample: bytes) -> tuple[str, int]:
    """The codec that reads the file, and where its text starts after a byte-order mark."""
    for bom, encoding, length in BOMS:
        if sample.startswith(bom):
            return encoding, length
    # UTF-16 without a byte-order mark is valid ASCII with a NUL after each letter.
    if b"\x00" not in sample:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(sample)
        except UnicodeDecodeError:
            pass
        else:
            return "utf-8", 0
    guess = charset_normalizer.from_bytes(sample).best()
    if guess is None:
        raise UnreadableFile(f"This is not a text file. {SAVE_AS_CSV}")
    if guess.encoding == "ascii":
        return "utf-8", 0
    if not is_multi_byte_encoding(guess.encoding) and _is_latin(str(guess)):
        return _latin_code_page(sample, guess.encoding), 0
    return codecs.lookup(guess.encoding).name, 0


def _is_latin(text: str) -> bool:
    letters = [char for char in text if not char.isascii() and char.isalpha()]
    latin = sum(unicodedata.name(char, "").startswith("LATIN") for char in letters)
    return latin * 2 >= len(letters)


def _latin_code_page(sample: bytes, guess: str) -> str:
    readings = []
    for preference, encoding in enumerate((*LATIN_CODE_PAGES, guess)):
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(sample)
        except UnicodeDecodeError:
            continue
        readings.append((_oddities(text), preference, codecs.lookup(encoding).name))
    # Mac Roman gives every byte a character, so there is always a reading.
    return min(readings)[2]


def _oddities(text: str) -> int:
    """How many characters beyond ASCII sit inside a word as no word would have them: a
    symbol between letters ("£ódŸ", "Wi³ka") or a capital between small letters ("JŸrgen"),
    what reading a file in the wrong code page makes."""
    odd = 0
    for match in IN_WORD_CHARACTER.finditer(text):
        char = match[0]
        after = text[match.end()]
        if not char.isalpha() or (char.isupper() and after.islower()):
            odd += 1
    return odd


def _delimiter(text: str, complete: bool) -> str:
    """The delimiter that splits the header into the most columns that the rows then keep."""

    def fit(delimiter: str) -> tuple[bool, float, int]:
        parsed = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        records = list(itertools.islice(filter(_is_present, parsed), 100))
        if not complete and len(records) > 1:
            records.pop()
        width = len(records[0]) if records else 0
        rest = records[1:]
        steady = sum(len(values) == width for values in rest) / len(rest) if rest else 1.0
        return width > 1, steady, width

    return max(DELIMITERS, key=fit)


def _decoded_lines(blocks: Iterator[bytes], encoding: str) -> Iterator[str]:
    """The text's lines, each with its line break, decoded one block at a time."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines_before = 0
    partial = ""
    for block in blocks:
        final = not block
        try:
            text = partial + decoder.decode(block, final)
        except UnicodeDecodeError as error:
            readable = partial + error.object[: error.start].decode(encoding, "replace")
            line = lines_before + len(LINE_BREAK.findall(readable)) + 1
            raise UnreadableFile(
                f"Line {line} is not {encoding} text, though the lines before it are. {SAVE_AS_CSV}"
            ) from None
        lines = io.StringIO(text, newline="").readlines()
        # A line without its break, or a CR whose LF may come next, continues in the next block.
        partial = lines.pop() if lines and not final and not lines[-1].endswith("\n") else ""
        if len(partial) > MAX_LINE_CHARS:
            raise UnreadableFile(
                f"Line {lines_before + len(lines) + 1} is longer than {MAX_LINE_CHARS:,} "
                "characters: this does not look like a list of subscribers."
            )
        lines_before += len(lines)
        yield from lines


def _columns(header: list[str]) -> Columns:
    words = [_header_word(cell) for cell in header]
    email = next((index for index, word in enumerate(words) if word in ADDRESS_HEADERS), None)
    if email is None:
        raise UnreadableFile(_no_address_column(header))
    dropped = set()
    attributes = None
    if set(words) >= LISTMONK_SIGNATURE:
        dropped |= LISTMONK_BOOKKEEPING
        attributes = words.index("attributes")
    if MAILCHIMP_SIGNATURE & set(words):
        dropped |= MAILCHIMP_BOOKKEEPING
    full_name = [index for index, word in enumerate(words) if word in NAME_HEADERS][:1]
    first = [index for index, word in enumerate(words) if word in FIRST_NAME_HEADERS][:1]
    last = [index for index, word in enumerate(words) if word in LAST_NAME_HEADERS][:1]
    name = full_name or first + last
    taken = {email, *name, attributes}
    fields: dict[str, int] = {}
    for index, cell in enumerate(header):
        if index not in taken and words[index] not in dropped:
            key = _field_key(cell) or f"column_{index + 1}"
            fields[_unused_key(key, fields)] = index
    return Columns(header, email, name, fields, attributes)


def _no_address_column(header: list[str]) -> str:
    if any("@" in cell for cell in header):
        return (
            "The first line must name the columns (for example “email,name”), but it holds "
            "an address: add a line of column headers above it."
        )
    shown = ", ".join(f"“{cell.strip()[:40]}”" for cell in header[:10])
    more = f" and {len(header) - 10} more" if len(header) > 10 else ""
    return (
        f"No column holds e-mail addresses: the headers are {shown}{more}. Name the column "
        "of addresses “email” and upload the file again."
    )


def _header_word(header: str) -> str:
    """A header's letters and digits, case and accents aside: "E-Mail-Adresse" -> "emailadresse"."""
    return "".join(char for char in _unaccented(header) if char.isalnum())


def _unaccented(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text).casefold()
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@functools.lru_cache(maxsize=1024)
def _field_key(header: str) -> str:
    """A header made into a merge tag's name: "Company Name" -> "company_name", "2nd" -> "f_2nd";
    "" when nothing of it is left."""
    key = re.sub(r"[^a-z0-9]+", "_", _unaccented(header)).strip("_")
    if key[:1].isdigit():
        key = f"f_{key}"
    return key[:63].rstrip("_")


def _unused_key(key: str, taken: Container[str]) -> str:
    unused = key
    number = 1
    while unused in taken:
        number += 1
        suffix = f"_{number}"
        unused = key[: 63 - len(suffix)].rstrip("_") + suffix
    return unused


def _add_attributes(fields: dict[str, str], cell: str) -> str:
    """Add the custom fields of a listmonk attributes cell, a JSON object, to fields; the
    columns' own fields come first. Returns a row error, or ""."""
    if not cell.strip():
        return ""
    try:
        attributes = json.loads(cell)
    except (ValueError, RecursionError):
        return "attributes that are not JSON"
    if not isinstance(attributes, dict):
        return "attributes that are not a JSON object"
    for name, value in attributes.items():
        if value is None or value == "":
            continue
        try:
            text = (
                value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            )
        except RecursionError:
            return "attributes nested too deeply"
        if text:
            fields[_unused_key(_field_key(name) or "attribute", fields)] = text
    return ""


def _fields_error(fields: dict[str, str]) -> str:
    if len(fields) > MAX_CUSTOM_FIELDS:
        return f"more than {MAX_CUSTOM_FIELDS} custom fields"
    for key, value in fields.items():
        if len(value) > MAX_CUSTOM_FIELD_LENGTH:
            return f"{key} longer than {MAX_CUSTOM_FIELD_LENGTH:,} characters"
        if "\x00" in value:
            return f"{key} with a NUL character"
    return ""


def _is_blank(values: list[str]) -> bool:
    return not any(cell.strip() for cell in values)


def _is_present(values: list[str]) -> bool:
    return not _is_blank(values)
