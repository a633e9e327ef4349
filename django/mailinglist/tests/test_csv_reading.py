"""Reading subscriber CSV files as spreadsheets and mailing-list tools write them."""

import codecs
import io
import random
import tracemalloc
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from mailinglist.imports.reading import (
    SIMPLE_ADDRESS,
    UnreadableFile,
    address_error,
    open_csv,
)
from mailinglist.validators import CUSTOM_FIELD_KEY, validate_sendable_address

CORPUS = Path(__file__).parent / "csv_corpus"


class TrickleStream:
    """A forward-only binary stream, as the importer gives the reader, that hands out at
    most `piece` bytes a call and notes how much it was asked for."""

    def __init__(self, data, piece=64 * 1024):
        self.data = data
        self.piece = piece
        self.position = 0
        self.largest_request = 0

    def read(self, size=-1):
        self.largest_request = max(self.largest_request, size)
        assert size > 0, "the reader asked for the whole stream"
        end = self.position + min(size, self.piece)
        part = self.data[self.position : end]
        self.position = end
        return part


class GeneratedCsv:
    """A large CSV file made as it is read, so that only the reader could hold it all."""

    def __init__(self, rows):
        self.lines = (
            f"person.{number}@example.com,Person {number},Company {number % 100},{'x' * 40}\r\n"
            for number in range(rows)
        )
        self.pending = b"email,name,company,notes\r\n"
        self.size = 0
        self.largest_request = 0

    def read(self, size):
        self.largest_request = max(self.largest_request, size)
        while len(self.pending) < size:
            line = next(self.lines, None)
            if line is None:
                break
            self.pending += line.encode()
        part, self.pending = self.pending[:size], self.pending[size:]
        self.size += len(part)
        return part


def read_corpus(name):
    with (CORPUS / name).open("rb") as file:
        reader = open_csv(file)
        return reader, list(reader.rows())


def read_bytes(data, piece=64 * 1024):
    reader = open_csv(TrickleStream(data, piece))
    return reader, list(reader.rows())


def read_everything(data):
    return list(open_csv(io.BytesIO(data)).rows())


def unreadable(data):
    with pytest.raises(UnreadableFile) as caught:
        read_everything(data)
    return str(caught.value)


def described(reader):
    return [
        (column["header"], column["use"], column["key"]) for column in reader.columns.describe()
    ]


def test_it_reads_an_excel_file_with_a_bom_semicolons_and_crlf():
    reader, rows = read_corpus("excel_semicolon_bom.csv")

    assert reader.delimiter == ";"
    assert reader.columns.headers[0] == "E-Mail-Adresse"
    assert [(row.email, row.name, row.fields, row.error) for row in rows] == [
        (
            "juergen.mueller@example.de",
            "Jürgen Müller",
            {"firma": "Müller & Söhne GmbH", "strasse": "Hauptstraße 1"},
            "",
        ),
        ("anna@example.at", "Anna Gruber", {"firma": "Gruber; Partner"}, ""),
    ]


def test_it_reads_tabs_and_a_full_name_column():
    reader, rows = read_corpus("tab_separated.tsv")

    assert reader.delimiter == "\t"
    assert [(row.email, row.name, row.fields) for row in rows] == [
        ("tab@example.com", "Tabitha Tabs", {"company_inc": "Tabs, Inc.", "city": "Tabor"})
    ]


def test_quoted_cells_keep_commas_quotes_and_newlines_and_rows_know_their_first_line():
    _, rows = read_corpus("quoted_cells.csv")

    assert [(row.line, row.email) for row in rows] == [
        (2, "first@example.com"),
        (5, "second@example.com"),
        (8, "third@example.com"),
    ]
    assert rows[0].name == "First, Person"
    assert rows[0].fields == {"address": "1 Main Street\nSpringfield", "quote": 'She said "hello"'}
    assert rows[1].fields["address"] == "Line one\nLine two\nLine three"
    assert rows[2].fields == {"quote": 'a "quoted", comma-ful cell'}


def test_it_reads_a_mailchimp_export_without_its_bookkeeping():
    reader, rows = read_corpus("mailchimp_subscribed.csv")

    assert described(reader)[:6] == [
        ("Email Address", "email", ""),
        ("First Name", "name", ""),
        ("Last Name", "name", ""),
        ("Company", "field", "company"),
        ("Birthday", "field", "birthday"),
        ("MEMBER_RATING", "ignored", ""),
    ]
    assert {use for _, use, _ in described(reader)[5:]} == {"ignored"}
    assert [(row.email, row.name, row.fields) for row in rows] == [
        (
            "ada@example.com",
            "Ada Lovelace",
            {"company": "Analytical Engines, Ltd.", "birthday": "12/10"},
        ),
        ("grace@example.org", "Grace Hopper", {}),
        ("linus@example.net", "Torvalds", {"company": "Kernel Org"}),
    ]


def test_an_owners_own_notes_and_status_columns_are_kept():
    _, rows = read_bytes(b"email,Status,Notes,Tags\nme@example.com,VIP,likes cats,a b\n")

    assert rows[0].fields == {"status": "VIP", "notes": "likes cats", "tags": "a b"}


def test_it_reads_a_listmonk_export_with_its_attributes_as_fields():
    reader, rows = read_corpus("listmonk_export.csv")

    assert described(reader) == [
        ("uuid", "ignored", ""),
        ("email", "email", ""),
        ("name", "name", ""),
        ("attributes", "field", "*"),
        ("status", "ignored", ""),
        ("created_at", "ignored", ""),
        ("updated_at", "ignored", ""),
    ]
    assert rows[0].email == "john@example.com"
    assert rows[0].name == "John Doe"
    assert rows[0].fields == {
        "city": "Bengaluru",
        "plan": "pro",
        "projects": "3",
        "vip": "true",
        "stack": '{"languages": ["go", "python"]}',
    }
    assert rows[0].error == ""
    assert (rows[1].fields, rows[1].error) == ({}, "")
    assert rows[2].error == "attributes that are not a JSON object"


def test_listmonk_attributes_that_are_not_json_are_a_row_error():
    _, rows = read_bytes(
        b"uuid,email,name,attributes,status\n1,a@example.com,A,{not json,enabled\n"
        b'2,b@example.com,B,"{""Home Town"": ""Oslo""}",enabled\n'
    )

    assert [(row.email, row.fields, row.error) for row in rows] == [
        ("a@example.com", {}, "attributes that are not JSON"),
        ("b@example.com", {"home_town": "Oslo"}, ""),
    ]


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("windows_1252.csv", "cp1252"),
        ("latin_1.csv", "cp1252"),
        ("windows_1250.csv", "cp1250"),
        ("mac_roman.csv", "mac-roman"),
        ("unicode_text_utf16.txt", "utf-16-le"),
        ("chinese_gb18030.csv", "gb18030"),
    ],
)
def test_it_detects_the_encoding_of_files_that_are_not_utf8(name, encoding):
    reader, rows = read_corpus(name)

    assert reader.encoding == encoding
    text = (CORPUS / name).read_bytes().decode(encoding).lstrip("\ufeff")
    for row in rows:
        assert row.name in text
        assert row.error == ""
        assert all(value in text for value in row.fields.values())


def test_it_reads_the_names_of_a_windows_1252_file_as_written():
    _, rows = read_corpus("windows_1252.csv")

    assert [row.name for row in rows] == ["José Núñez", "Zoë Lefèvre", "Søren Ærø"]
    assert rows[0].fields["notes"] == "“Prefers” Spanish – from Logroño"


def test_it_detects_utf16_without_a_byte_order_mark():
    text = "email\tname\r\nchloe@example.fr\tChloé Dubois\r\nmarta@example.es\tMarta Peña\r\n"

    reader, rows = read_bytes(text.encode("utf-16-le"))

    assert reader.encoding == "utf-16-le"
    assert [row.name for row in rows] == ["Chloé Dubois", "Marta Peña"]


def test_a_picture_is_refused_as_not_text():
    message = unreadable((CORPUS / "picture.png").read_bytes())

    assert message.startswith("This is not a text file.")


def test_a_workbook_is_refused_with_a_way_to_save_it_as_csv():
    message = unreadable(b"PK\x03\x04\x14\x00\x06\x00\x08\x00[Content_Types].xml" + bytes(500))

    assert "Excel (.xlsx)" in message
    assert "CSV UTF-8" in message


def test_an_empty_file_is_refused():
    assert unreadable(b"") == "The file is empty."
    assert unreadable(b"\r\n\r\n  \n") == "The file is empty."


def test_a_file_without_an_address_column_is_refused_naming_its_headers():
    with (
        (CORPUS / "no_address_column.csv").open("rb") as file,
        pytest.raises(UnreadableFile) as caught,
    ):
        open_csv(file)

    assert "“name”, “phone”, “city”" in str(caught.value)


def test_a_file_without_headers_is_refused_saying_so():
    message = unreadable(b"ada@example.com,Ada\ngrace@example.com,Grace\n")

    assert "add a line of column headers" in message


@pytest.mark.parametrize(
    "header",
    [
        "email",
        "EMAIL",
        "E-Mail",
        "e_mail",
        "Email Address",
        "email_address",
        "Mail",
        "E-Mail-Adresse",
    ],
)
def test_it_finds_the_address_column_by_its_usual_headers(header):
    reader, rows = read_bytes(f"id,{header},city\n7,ape@example.com,Paris\n".encode())

    assert reader.columns.email == 1
    assert [(row.email, row.fields) for row in rows] == [
        ("ape@example.com", {"id": "7", "city": "Paris"})
    ]


def test_a_full_name_column_is_the_name_and_first_and_last_names_stay_fields():
    _, rows = read_bytes(
        b"First Name,Last Name,Name,Email\nAda,Lovelace,Countess Ada,ada@example.com\n"
    )

    assert rows[0].name == "Countess Ada"
    assert rows[0].fields == {"first_name": "Ada", "last_name": "Lovelace"}


def test_headers_become_merge_tag_keys_and_alike_headers_get_numbers():
    headers = ["Company Name", "company-name", "COMPANY NAME", "2nd Address", "Città", "", "x" * 80]
    header_line = ",".join(["email", *headers])

    reader, rows = read_bytes(f"{header_line}\nape@example.com,a,b,c,d,e,f,g\n".encode())

    keys = list(reader.columns.fields)
    assert keys == [
        "company_name",
        "company_name_2",
        "company_name_3",
        "f_2nd_address",
        "citta",
        "column_7",
        "x" * 63,
    ]
    assert all(CUSTOM_FIELD_KEY.fullmatch(key) for key in keys)
    assert list(rows[0].fields.values()) == ["a", "b", "c", "d", "e", "f", "g"]


def test_empty_custom_values_are_left_out():
    _, rows = read_bytes(b"email,city,plan\nape@example.com,  ,pro\nape2@example.com\n")

    assert [row.fields for row in rows] == [{"plan": "pro"}, {}]


def test_invalid_and_duplicate_rows_are_reported_per_row():
    _, rows = read_corpus("rows_with_problems.csv")

    assert [(row.line, row.email, row.error) for row in rows] == [
        (2, "good@example.com", ""),
        (3, "not-an-address", "not an e-mail address"),
        (4, "", "no address"),
        (5, "good@example.com", ""),
        (6, "GOOD@EXAMPLE.COM", ""),
        (8, "spaced@example.com", ""),
        (9, "user@localhost", ""),
        (10, "user@exämple.com", ""),
        (11, "jörg@example.com", "not an e-mail address"),
        (12, '"quoted"@example.com', "Mail Ape cannot send to this address as it is written"),
    ]


def test_values_longer_than_a_subscriber_holds_are_row_errors():
    many = ",".join(f"f{number}" for number in range(51))
    data = (
        f"email,name,company,{many}\n"
        f"long-name@example.com,{'N' * 201},,\n"
        f"long-value@example.com,Ann,{'c' * 1001}\n"
        f"many@example.com,Ann,,{','.join('v' * 51)}\n"
        f"fine@example.com,{'N' * 200},{'c' * 1000},{','.join('v' * 49)}\n"
        f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 60}.com,Too Long\n"
    )

    _, rows = read_bytes(data.encode())

    assert [row.error for row in rows] == [
        "name longer than 200 characters",
        "company longer than 1,000 characters",
        "more than 50 custom fields",
        "",
        "address longer than 254 characters",
    ]


def test_nul_bytes_and_control_characters_are_row_errors_not_crashes():
    _, rows = read_bytes(
        b"email,name,city\nnul@example.com,Nul\x00Name,\nok@example.com,Ok,Ber\x00lin\n"
        b'spaced@example.com,"Two\r\n  Lines",\n'
    )

    assert [(row.name, row.error) for row in rows] == [
        ("Nul\x00Name", "name with control characters"),
        ("Ok", "city with a NUL character"),
        ("Two Lines", ""),
    ]


def test_blank_lines_and_rows_of_empty_cells_are_skipped():
    _, rows = read_bytes(b"\r\nemail,name\r\n\r\n,,\r\nape@example.com,Ape\r\n  \r\n")

    assert [(row.line, row.email) for row in rows] == [(5, "ape@example.com")]


def test_rows_shorter_or_longer_than_the_header_are_read():
    _, rows = read_bytes(b"name,email,city\nShort\nLong,long@example.com,Rome,extra\n")

    assert [(row.email, row.error, row.fields) for row in rows] == [
        ("", "no address", {}),
        ("long@example.com", "", {"city": "Rome"}),
    ]
    assert rows[1].values == ["Long", "long@example.com", "Rome", "extra"]


def test_excels_separator_line_is_followed():
    reader, rows = read_bytes(b"sep=;\r\nemail;name\r\nape@example.com;Ape, the\r\n")

    assert reader.delimiter == ";"
    assert [(row.line, row.email, row.name) for row in rows] == [(3, "ape@example.com", "Ape, the")]


def test_a_semicolon_file_with_commas_in_its_values_is_read_by_semicolons():
    reader, _ = read_bytes(b"email;name;company\na@example.com;Doe, Jane;Acme, Inc.\n")

    assert reader.delimiter == ";"


def test_old_mac_line_endings_are_lines():
    _, rows = read_bytes(b"email,name\rone@example.com,One\rtwo@example.com,Two\r")

    assert [(row.line, row.email) for row in rows] == [
        (2, "one@example.com"),
        (3, "two@example.com"),
    ]


def test_reading_in_tiny_pieces_gives_the_same_rows():
    data = (CORPUS / "quoted_cells.csv").read_bytes().replace(b"\n", b"\r\n") + (
        "fourth@example.com,Zoë Ærø,Straße 1,“quoted”\r\n".encode()
    )

    _, whole = read_bytes(data)
    _, trickled = read_bytes(data, piece=3)

    assert trickled == whole
    assert whole[-1].name == "Zoë Ærø"
    assert [row.line for row in whole] == [2, 5, 8, 9]


def test_bytes_that_are_not_utf8_after_the_sample_are_refused_naming_the_line():
    head = b"email,name\n" + b"".join(
        f"person{number}@example.com,Person {number}\n".encode() for number in range(3000)
    )
    data = head + "late@example.com,José\n".encode("cp1252")

    message = unreadable(data)

    assert message.startswith("Line 3002 is not utf-8 text")


def test_a_huge_cell_is_refused_not_a_crash():
    one_line = b"email,notes\nape@example.com," + b"x" * 10_000_000 + b"\n"
    many_lines = b'email,notes\nape@example.com,"' + b"xxxxxxxxx\n" * 1_000_000 + b'"\n'

    assert unreadable(one_line).startswith("Line 2 is longer than 1,048,576 characters")
    assert unreadable(many_lines).startswith("Line 2 starts a cell longer than 131,072 characters")


def test_a_large_file_is_read_in_full_with_flat_memory():
    stream = GeneratedCsv(rows=50_000)

    tracemalloc.start()
    try:
        reader = open_csv(stream)
        count = 0
        for row in reader.rows():
            count += 1
            assert row.error == ""
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 50_000
    assert row.email == "person.49999@example.com"
    assert row.line == 50_001
    assert stream.size > 4_000_000
    assert peak < 1_000_000
    assert stream.largest_request <= 64 * 1024


TRICKY_ADDRESSES = [
    "plain@example.com",
    "First.Last@Example.COM",
    "o'brien@example.ie",
    "user+tag@example.co.uk",
    "a_b-c%d@sub-domain.example.org",
    "x@example.museum",
    "1234567890@example.com",
    "user@xn--exmple-cua.com",
    "user@exämple.com",
    "user@例え.jp",
    "jörg@example.com",
    "用户@例子.广告",
    '"quoted"@example.com',
    '"with space"@example.com',
    '"a\\"b"@example.com',
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    "user@[2001:db8::1]",
    "user@[300.1.1.1]",
    "user@localhost",
    "user@example",
    "user@example.com.",
    "user.@example.com",
    ".user@example.com",
    "us..er@example.com",
    "user@example..com",
    "user@-example.com",
    "user@example-.com",
    "user@example.c",
    "user@example.123",
    "user@example.co-m",
    f"user@{'a' * 63}.com",
    f"user@{'a' * 64}.com",
    f"{'a' * 64}@example.com",
    f"{'a' * 65}@example.com",
    "user name@example.com",
    "user@exam ple.com",
    "user@@example.com",
    "user",
    "@example.com",
    "user@",
    "user\n@example.com",
    "user@example.com\n",
    "user\x00@example.com",
    "=?utf-8?q?abc?=@example.com",
    "=?utf-8?b?dXNlcg==?=@example.com",
    "a!b#c$d&e*f/g=h?i^j`k{l|m}n~o@example.com",
    "<user@example.com>",
    "User <user@example.com>",
    "user@example.com, other@example.com",
    "user@ex_ample.com",
    "user@example.com\u00a0",
    "usér@example.com",
    "user@EXAMPLE.COM",
    "USER@example.xn--p1ai",
    "user@sub.xn--p1ai",
    "(comment)user@example.com",
    "user(comment)@example.com",
]


def accepted_by_the_model(address):
    if len(address) > 254:
        return False
    try:
        validate_email(address)
        validate_sendable_address(address)
    except ValidationError:
        return False
    return True


def generated_addresses(count):
    """Wild addresses, and addresses one character away from plain ones."""
    randomness = random.Random(14)
    wild_local = "aZ09._%+-'!#$&*/=?^`{|}~\"() ,:;<>@[\\]é\u00a0\x00\n"
    wild_domain = "az09.-_[]:é例 "
    near_local = "aaaaZZ0099....__%+-'="
    near_domain = "aaaazz0099..-"
    for number in range(count):
        local, domain = (near_local, near_domain) if number % 2 else (wild_local, wild_domain)
        user = "".join(randomness.choices(local, k=randomness.randint(1, 8)))
        host = "".join(randomness.choices(domain, k=randomness.randint(1, 10)))
        top = randomness.choice(["com", "de", "c", "xn--p1ai", "co.uk", "co-m", "123", "com."])
        yield f"{user}@{host}.{top}"


def test_the_fast_address_check_agrees_with_the_models_validators():
    addresses = TRICKY_ADDRESSES + list(generated_addresses(5000))
    fast = [address for address in addresses if SIMPLE_ADDRESS.fullmatch(address)]

    assert [address for address in fast if not accepted_by_the_model(address)] == []
    assert [
        address
        for address in addresses
        if (address_error(address) == "") != accepted_by_the_model(address)
    ] == []
    # Both sides of the check are exercised.
    assert len(fast) > 200
    assert sum(not accepted_by_the_model(address) for address in addresses) > 1000


def test_utf8_and_bom_variants_read_alike():
    text = "email,name\r\nzoe@example.fr,Zoë\r\n"

    for data in (text.encode(), codecs.BOM_UTF8 + text.encode()):
        reader, rows = read_bytes(data)
        assert reader.columns.headers == ["email", "name"]
        assert [(row.email, row.name) for row in rows] == [("zoe@example.fr", "Zoë")]
