from django import template
from django.utils.html import format_html

register = template.Library()

WIDTH = 120
HEIGHT = 32
# Room for the stroke, so that a flat line at the top or bottom is not cut in half.
MARGIN = 2


@register.simple_tag
def sparkline(values, label):
    """A small line chart of values as an inline SVG image, label its text equivalent."""
    values = list(values)
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    spread = (high - low) or 1
    step = (WIDTH - 2 * MARGIN) / (len(values) - 1)
    points = " ".join(
        f"{MARGIN + index * step:.1f},"
        f"{HEIGHT - MARGIN - (value - low) / spread * (HEIGHT - 2 * MARGIN):.1f}"
        for index, value in enumerate(values)
    )
    return format_html(
        '<svg class="sparkline" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="{}"><title>{}</title><polyline points="{}" fill="none" '
        'stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/></svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        label,
        label,
        points,
    )
