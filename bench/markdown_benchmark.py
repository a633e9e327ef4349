"""How long Mail Ape takes to render hostile Markdown, at growing sizes up to the body limit.

    .venv/bin/python bench/markdown_benchmark.py

For each input known to make Markdown renderers or HTML sanitisers quadratic, it
renders 1/8, 1/4, 1/2 and all of the 512 KB body limit with render_markdown (the
renderer and the sanitiser together) and prints the seconds and the microseconds
per byte. Linear time shows as a flat last column; the ratio of the largest
size's cost per byte to the smallest's is printed last (1.0 is perfectly linear).
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "django"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.development_settings")

from mailinglist.markdown import render_markdown  # noqa: E402
from mailinglist.validators import MAX_MESSAGE_BODY_BYTES  # noqa: E402

HOSTILE = {
    "open brackets": "[",
    "character references": "&#x41;",
    "nested HTML": "<div>",
    "nested quotes": ">",
    "emphasis": "*a **b ",
    "unclosed links": "[a](",
    "table rows": "|x|y|\n",
    "newsletter text": (
        "This week's **banana facts**, for every reader: see [the archive]"
        "(https://example.com/a) and *enjoy*.\n\n- one\n- two\n\n> quote\n\n"
    ),
}


def repeated(unit, size):
    return (unit * (size // len(unit) + 1))[:size]


def main():
    sizes = [MAX_MESSAGE_BODY_BYTES // 8 * n for n in (1, 2, 4, 8)]
    print(f"render_markdown on inputs of {', '.join(f'{size // 1024} KB' for size in sizes)}")
    worst = 0.0
    for name, unit in HOSTILE.items():
        costs = []
        for size in sizes:
            text = repeated(unit, size)
            started = time.perf_counter()
            render_markdown(text)
            costs.append((time.perf_counter() - started, size))
        per_byte = [seconds / size * 1e6 for seconds, size in costs]
        growth = per_byte[-1] / per_byte[0]
        worst = max(worst, growth)
        print(
            f"{name:22}"
            + "".join(f"{seconds:8.2f} s" for seconds, _ in costs)
            + f"   µs per byte: {' '.join(f'{value:.2f}' for value in per_byte)}"
            + f"   growth {growth:.2f}"
        )
    print(f"largest growth of the cost per byte from 64 KB to 512 KB: {worst:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
