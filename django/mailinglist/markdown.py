"""Markdown to HTML that is safe to show in a browser or a mail client, in linear time.

markdown-it-py parses CommonMark, with tables and strikethrough, in time linear in
the text and nests blocks at most 20 deep. Raw HTML in the Markdown is shown as
text: sanitising arbitrarily nested HTML takes time quadratic in its depth. nh3
then removes whatever Markdown itself can express that a browser would run.
"""

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    return nh3.clean(_markdown.render(text))
