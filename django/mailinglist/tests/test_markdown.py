import pytest

from mailinglist.markdown import render_markdown


def test_it_renders_markdown():
    html = render_markdown("# Title\n\nSome **bold** and a [link](https://example.com).")

    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert 'href="https://example.com"' in html


@pytest.mark.parametrize(
    ("markdown", "forbidden"),
    [
        ("<script>alert('x')</script>", "<script"),
        ("[click](javascript:alert(1))", "javascript:"),
        ('<a href="javascript:alert(1)">click</a>', "javascript:"),
        ('<img src="x.png" onerror="alert(1)">', "onerror"),
        ('<p onclick="alert(1)">hi</p>', "onclick"),
        ('<div onmouseover="steal()">hover</div>', "onmouseover"),
        ("<iframe src='https://evil.example'></iframe>", "<iframe"),
        ("<style>body{display:none}</style>", "<style"),
    ],
)
def test_it_strips_what_could_run_in_a_browser(markdown, forbidden):
    assert forbidden not in render_markdown(markdown).lower()
