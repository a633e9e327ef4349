import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()

# An address ends before a space, an angle bracket, a quote or a bracket, so that the
# address in a Markdown link, [text](https://…), or in <https://…> is linked without
# the bracket around it.
WEB_ADDRESS = re.compile(r"https?://[^\s<>\[\]()\"']+")
TRAILING_PUNCTUATION = ".,;:!?"


@register.filter
def link_web_addresses(text):
    """text, escaped, with each http(s) address in it a link, the text around it as it was."""
    pieces = []
    end = 0
    for match in WEB_ADDRESS.finditer(text):
        address = match.group().rstrip(TRAILING_PUNCTUATION)
        pieces.append(escape(text[end : match.start()]))
        pieces.append(format_html('<a href="{}">{}</a>', address, address))
        end = match.start() + len(address)
    pieces.append(escape(text[end:]))
    return mark_safe("".join(pieces))  # noqa: S308 (every piece is escaped above)
