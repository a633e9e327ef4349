import nh3
from markdownify.templatetags.markdownify import markdownify


def render_markdown(text):
    """Markdown to HTML that is safe to show in a browser or a mail client."""
    return nh3.clean(markdownify(text))
