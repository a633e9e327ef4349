"""Headless Chromium for the browser tests: Debian's chromium, driven by Playwright."""

import urllib.parse
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    # Tests run as root, where Chromium refuses to start sandboxed.
    "--no-sandbox",
    "--disable-gpu",
    # Without these Chromium reaches out to Google's servers at start-up and stalls offline.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def block_remote_requests(route):
    """Only the live server answers: anything remote (a CDN stylesheet) would hang offline."""
    if urllib.parse.urlsplit(route.request.url).hostname in LOCAL_HOSTS:
        route.continue_()
    else:
        route.abort()


def open_context(browser, **options):
    """A fresh context (its own cookies, like a separate person) that reaches only the
    live server."""
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    context.route("**/*", block_remote_requests)
    return context
