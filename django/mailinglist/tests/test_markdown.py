from html.parser import HTMLParser

import pytest

from mailinglist.markdown import render_markdown


class Elements(HTMLParser):
    """The tags and attributes a browser would build from some HTML."""

    def __init__(self, html):
        super().__init__()
        self.found = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def test_it_renders_markdown():
    html = render_markdown(
        "# Title\n\nSome **bold**, ~~old~~ and a [link](https://example.com).\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n```"
    )

    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert "<s>old</s>" in html or "<del>old</del>" in html
    assert 'href="https://example.com"' in html
    assert "<table>" in html
    assert "<code>code\n</code>" in html


def test_raw_html_is_shown_as_text():
    html = render_markdown("Press <b>here</b>")

    assert "&lt;b&gt;here&lt;/b&gt;" in html
    assert [tag for tag, _ in Elements(html).found] == ["p"]


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert('x')</script>",
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">click</a>',
        '<img src="x.png" onerror="alert(1)">',
        '<p onclick="alert(1)">hi</p>',
        '<div onmouseover="steal()">hover</div>',
        "<iframe src='https://evil.example'></iframe>",
        "<style>body{display:none}</style>",
        "![x](javascript:alert(1))",
    ],
)
def test_nothing_that_could_run_in_a_browser_becomes_an_element(markdown):
    elements = Elements(render_markdown(markdown)).found

    assert {tag for tag, _ in elements} <= {"p", "a", "img"}
    for _, attributes in elements:
        assert not any(name.startswith("on") for name in attributes)
        assert not any("javascript:" in (value or "") for value in attributes.values())


@pytest.mark.parametrize(
    "hostile",
    [
        "[" * 200_000,
        "&#x41;" * 85_000,
        "<div>" * 100_000,
        ">" * 500_000,
        "".join("  " * depth + "- a\n" for depth in range(600)),
    ],
    ids=["brackets", "entities", "nested html", "nested quotes", "nested lists"],
)
def test_hostile_input_at_the_size_limit_renders_to_plain_nested_html(hostile):
    html = render_markdown(hostile)

    assert html.startswith(("<p>", "<blockquote>", "<ul>"))
    assert html.count("<blockquote>") <= 20
