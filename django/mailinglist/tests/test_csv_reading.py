"""CSV files as spreadsheets, Mailchimp and listmonk write them, read into rows to import."""

import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from mailinglist.imports.reading import UnreadableFile, address_error, open_csv
from mailinglist.validators import validate_sendable_address

CORPUS = Path(__file__).parent / "csv_corpus"


def read(name):
    with open(CORPUS / name, "rb") as stream:
        reader = open_csv(stream)
        return reader, list(reader.rows())


def test_a_mailchimp_export_gives_names_and_the_persons_own_columns_only():
    reader, rows = read("mailchimp_export.csv")

    assert [(row.email, row.name, row.fields) for row in rows] == [
        (
            "koko@example.com",
            "Koko Gorilla",
            {"company": "The Gorilla Foundation", "tags": '"vip"'},
        ),
        ("michael@example.com", "Michael", {"company": "Painters, Inc."}),
    ]
    uses = {column["header"]: column["use"] for column in reader.columns.describe()}
    assert uses["Email Address"] == "email"
    assert uses["First Name"] == uses["Last Name"] == "name"
    assert uses["OPTIN_TIME"] == uses["LEID"] == "ignored"


def test_a_listmonk_export_turns_its_attributes_into_custom_fields():
    _, rows = read("listmonk_export.csv")

    assert rows[0].email == "ape@example.com"
    assert rows[0].name == "Ape One"
    assert rows[0].fields == {"city": "Kinshasa", "plan": '{"tier": 2}', "shoe_size": "44"}
    assert rows[1].fields == {}
    assert all(not row.error for row in rows)


def test_a_semicolon_file_with_a_byte_order_mark_and_crlf_reads_cleanly():
    reader, rows = read("excel_semicolon_bom_crlf.csv")

    assert (reader.encoding, reader.delimiter) == ("utf-8-sig", ";")
    assert reader.columns.headers == ["E-Mail", "Name", "Stadt"]
    assert [(row.email, row.name, row.fields) for row in rows] == [
        ("zoe@example.com", "Zoë Müller", {"stadt": "Köln"}),
        ("lukas@example.com", "Lukas", {"stadt": "Frankfurt; am Main"}),
    ]


def test_quoted_cells_keep_their_newlines_commas_and_quotes_and_rows_know_their_line():
    _, rows = read("quoted_newlines.csv")

    assert rows[0].fields == {"notes": 'Likes\nkittens, and "All Ball"'}
    assert [(row.line, row.email) for row in rows] == [
        (2, "koko@example.com"),
        (4, "ndume@example.com"),
    ]


def test_windows_and_utf16_files_are_detected():
    reader, rows = read("tabs_windows1252.csv")
    assert reader.delimiter == "\t"
    assert [row.name for row in rows] == ["François Lefèvre", "René Ä"]
    assert rows[0].fields == {"city": "Côte-d’Ivoire"}

    reader, rows = read("utf16_excel.csv")
    assert reader.encoding == "utf-16"
    assert [(row.email, row.name) for row in rows] == [("utf16@example.com", "Åsa")]


def test_invalid_rows_say_why_and_duplicates_are_left_to_the_importer():
    _, rows = read("invalid_and_duplicates.csv")

    assert [(row.line, row.email, row.error) for row in rows] == [
        (2, "good@example.com", ""),
        (3, "not-an-address", "not an e-mail address Mail Ape can send to"),
        (4, "", "no address"),
        (5, "GOOD@example.com", ""),
        (7, "trailing.dot.@example.com", "not an e-mail address Mail Ape can send to"),
        (8, "spaced out@example.com", "not an e-mail address Mail Ape can send to"),
    ]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("no_email_column.csv", "No column holds e-mail addresses"),
        ("not_text.png", "not text Mail Ape can read"),
    ],
)
def test_a_file_it_cannot_import_is_refused_with_a_reason(name, says):
    with pytest.raises(UnreadableFile, match=says):
        read(name)


def test_an_empty_file_is_refused():
    with pytest.raises(UnreadableFile, match="empty"):
        open_csv(io.BytesIO(b"\r\n\r\n"))


def test_a_line_in_another_encoding_late_in_the_file_names_its_line():
    data = b"email\n" + b"a@example.com\n" * 20_000 + b"caf\xe9@example.com\n"
    reader = open_csv(io.BytesIO(data))

    with pytest.raises(UnreadableFile, match="Around line") as refusal:
        list(reader.rows())

    # Text is decoded a block at a time, so the line is where that block began.
    line = int(str(refusal.value).split("line ")[1].split(",")[0])
    assert 20_002 - 500 < line <= 20_002


def test_an_unclosed_quote_does_not_swallow_the_file_unseen():
    data = b'email,name\na@example.com,"Koko\n' + b"b@example.com,x\n" * 20_000

    with pytest.raises(UnreadableFile, match="Line 2 cannot be read"):
        list(open_csv(io.BytesIO(data)).rows())


def test_nul_bytes_and_over_long_values_make_bad_rows_not_crashes():
    data = (
        b"email,name,note\n"
        b"nul\x00@example.com,x,y\n"
        + b"long@example.com,"
        + b"n" * 201
        + b",y\n"
        + b"note@example.com,x,"
        + b"y" * 1001
        + b"\n"
    )

    rows = list(open_csv(io.BytesIO(data)).rows())

    assert [row.error for row in rows] == [
        "not an e-mail address Mail Ape can send to",
        "the name is too long",
        "a custom field longer than 1000 characters",
    ]


def test_repeated_and_odd_headers_become_distinct_merge_tag_names():
    data = "email,Company,company,2nd Phone,Ünïcode!,--\na@example.com,A,B,C,D,E\n".encode()

    [row] = open_csv(io.BytesIO(data)).rows()

    assert row.fields == {"company": "A", "company_2": "B", "f_2nd_phone": "C", "unicode": "D"}


class ReadCounter(io.RawIOBase):
    """A big generated file that notes the largest read asked of it."""

    def __init__(self, rows):
        super().__init__()
        self.lines = (f"reader{n}@example.com,Reader {n},{n % 9}\n".encode() for n in range(rows))
        self.pending = b"email,name,shelf\n"
        self.largest_read = 0

    def readable(self):
        return True

    def readinto(self, target):
        self.largest_read = max(self.largest_read, len(target))
        while len(self.pending) < len(target):
            line = next(self.lines, None)
            if line is None:
                break
            self.pending += line
        size = min(len(target), len(self.pending))
        target[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def test_a_50000_row_file_is_read_whole_in_small_pieces():
    source = ReadCounter(50_000)

    rows = sum(1 for row in open_csv(io.BufferedReader(source)).rows() if not row.error)

    assert rows == 50_000
    assert source.largest_read <= 64 * 1024


TRICKY_ADDRESSES = [
    "plain@example.com",
    "first.last+tag@sub.example.co.uk",
    "o'hara@example.com",
    "x@example.museum",
    '"quoted"@example.com',
    '"needless"@example.com',
    "a..b@example.com",
    ".lead@example.com",
    "trail.@example.com",
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    "user@localhost",
    "user@xn--bcher-kva.example",
    "user@bücher.example",
    "zoë@example.com",
    "用户@例子.广告",
    "sp ace@example.com",
    "user@-bad.example.com",
    "user@bad-.example.com",
    "user@" + "a" * 64 + ".example.com",
    "user@example.c",
    "user@example.123",
    "user@example..com",
    "user@.example.com",
    "user@example.com.",
    "@example.com",
    "user@",
    "no-at-sign",
    "a@b@example.com",
    "tab\t@example.com",
    "user@exa_mple.com",
    "UPPER@EXAMPLE.COM",
    "a" * 65 + "@example.com",
]


def full_validation_error(address):
    try:
        validate_email(address)
        validate_sendable_address(address)
    except ValidationError:
        return True
    return len(address) > 254


@pytest.mark.parametrize("address", TRICKY_ADDRESSES)
def test_the_fast_address_check_agrees_with_the_models_validators(address):
    assert bool(address_error(address)) == full_validation_error(address)
