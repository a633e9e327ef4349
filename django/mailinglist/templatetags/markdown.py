from django import template
from django.utils.safestring import mark_safe

from mailinglist.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    """Markdown as safe HTML, rendered as the list's messages are."""
    return mark_safe(render_markdown(text))  # noqa: S308 (render_markdown sanitises)
