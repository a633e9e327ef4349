"""Visitors subscribe, confirm and unsubscribe through Apache and mod_wsgi while a message goes out.

    .venv/bin/python bench/load_test.py [--visitors 50] [--seconds 60] [--recipients 3000]

Mail Ape is served as the image serves it: Debian's Apache 2 and mod_wsgi with
apache/mailape.apache.conf and a virtualenv of /usr/bin/python3 (.ci/production-web,
which deploy-check uses too), production settings, on a free loopback port. It
uses a scratch PostgreSQL database made and dropped here, Redis as the Celery
broker on a queue of its own, a real Celery worker (`celery -A config worker`, two
processes as on a server) and an SMTP sink that keeps what it receives. Every
request carries what the load balancer adds (X-Forwarded-For, X-Forwarded-Proto),
and Apache runs with MAIL_APE_TRUSTED_PROXY_HOPS=1, so each visitor has an address
of its own as behind AWS's load balancer; the subscribe limits keep their defaults.

Beforehand a list gets --recipients confirmed readers, and every mod_wsgi process
loads Django; the owner's message to the readers is saved as the visitors start, so
delivery and web traffic share the machine.
For --seconds, each of --visitors visitors, over and over, with a new address each
time: opens the subscribe page of a second list, sends its form (CSRF token and
all), opens the thank-you page, reads its confirmation e-mail from the sink, opens
the confirmation page and presses its button, waits for a message of that list and
unsubscribes with a cookie-less POST of List-Unsubscribe=One-Click to the URL in its
List-Unsubscribe header (RFC 8058). The owner sends that list a short message
through the API every --news-every seconds while someone waits for one.

It prints requests per second and p50/p99 latency per kind of request, the delay
of the confirmation e-mails, the errors (an answer of 400 or more other than 429,
an answer the visitor could not go on with, or a connection error) and the 429s
separately, checks in the database that every subscription, confirmation and
unsubscription a visitor completed is recorded ("lost: 0" or the lost ones) and
that every message finished, and counts the readers' copies in the sink. The exit
status is 1 if there were errors, if anything was lost or unfinished, or if no
visitor got through a whole visit, and 2 if PostgreSQL, Redis or Apache is missing.
"""

import argparse
import contextlib
import http.client
import json
import logging
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_WEB = ROOT / ".ci" / "production-web"
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "django")]

# The benchmark's servers, list of readers and message; the tests' servers and helpers.
from delivery_benchmark import (  # noqa: E402
    MESSAGE_BODY,
    drop_database,
    make_list_with_subscribers,
    postgres_settings,
    scratch_database,
    unreachable_servers,
)

from mailinglist.tests.harness import (  # noqa: E402
    CeleryWorker,
    SmtpSink,
    confirmation_link,
    free_port,
    wait_until,
)

SITE = "lists.example.com"
LINK_DOMAIN = f"https://{SITE}"
VISITOR_DOMAIN = "visitors.example.net"
NEWS_SUBJECT = "Banana news"
# The owner's address, and the one that warms the site up, outside the visitors'
# range (198.18.0.0/15, RFC 2544).
OWNER_CLIENT_ADDRESS = "198.51.100.7"
WARM_UP_CLIENT_ADDRESS = "198.51.100.8"
# More requests at once than apache/mailape.apache.conf has mod_wsgi threads (2 x 4).
WARM_UP_REQUESTS = 16
# Apache closes a kept-alive connection after 5 idle seconds (KeepAliveTimeout); a
# browser that waited longer opens a new one rather than race the close.
IDLE_SECONDS_BEFORE_RECONNECT = 3
# How a connection the server closed before answering shows itself to http.client.
CLOSED_UNREAD = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

SUBSCRIBE_PAGE = "GET subscribe page"
SUBSCRIBE_FORM = "POST subscribe form"
THANK_YOU_PAGE = "GET thank-you page"
CONFIRMATION_PAGE = "GET confirmation page"
CONFIRMATION_FORM = "POST confirmation"
ONE_CLICK_UNSUBSCRIBE = "POST one-click unsubscribe"
API_MESSAGE = "POST message (API)"
REQUEST_KINDS = (
    SUBSCRIBE_PAGE,
    SUBSCRIBE_FORM,
    THANK_YOU_PAGE,
    CONFIRMATION_PAGE,
    CONFIRMATION_FORM,
    ONE_CLICK_UNSUBSCRIBE,
    API_MESSAGE,
)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--visitors", type=int, default=50, help="concurrent visitors (50)")
    parser.add_argument("--seconds", type=float, default=60, help="how long they visit (60)")
    parser.add_argument(
        "--recipients", type=int, default=3000, help="readers the message goes out to (3000)"
    )
    parser.add_argument(
        "--news-every",
        type=float,
        default=2,
        help="seconds between the owner's messages to the visitors' list (2)",
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=2, help="Celery worker processes (2)"
    )
    parser.add_argument(
        "--finish-timeout",
        type=float,
        default=300,
        help="seconds the messages may take to finish after the visits (300)",
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/0", help="the Celery broker's Redis"
    )
    parser.add_argument("--keep-logs", type=Path, help="copy every log to this directory")
    return parser.parse_args()


class VisitorMailbox(SmtpSink):
    """The tests' SMTP sink, handing each visitor the mail sent to its address as it
    arrives; the readers' copies of the list message are only counted."""

    def __init__(self):
        super().__init__()
        self.inboxes = {}
        self.copies_for_readers = Counter()

    def inbox(self, address):
        """Where mail to address will arrive, as (monotonic time, message) pairs."""
        with self._lock:
            return self.inboxes.setdefault(address, queue.SimpleQueue())

    async def handle_DATA(self, server, session, envelope):
        arrived = time.monotonic()
        visitors = [r for r in envelope.rcpt_tos if r.endswith("@" + VISITOR_DOMAIN)]
        message = None
        if visitors:
            message = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        with self._lock:
            for recipient in envelope.rcpt_tos:
                if recipient in visitors:
                    self.inboxes.setdefault(recipient, queue.SimpleQueue()).put((arrived, message))
                else:
                    self.copies_for_readers[recipient] += 1
        return "250 Message accepted"


class PostForm(HTMLParser):
    """What a browser submits from the first form on a page that posts: its fields,
    and which of them takes an e-mail address."""

    def __init__(self, page):
        super().__init__()
        self.fields = {}
        self.email_field = None
        self.found = False
        self._inside = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and not self.found and (attributes.get("method") or "").lower() == "post":
            self.found = self._inside = True
        elif tag == "input" and self._inside and attributes.get("name"):
            if attributes.get("type") == "email":
                self.email_field = attributes["name"]
            else:
                self.fields[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str


class VisitEnded(Exception):
    """This visit cannot go on; the visitor starts another, if there is time."""


class RateLimited(VisitEnded):
    def __init__(self, retry_after):
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Tally:
    """What one client saw; merged over every client at the end."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # (wall-clock start, seconds) of every answered request, to set the requests made
    # while the message went out against the later ones.
    timeline: list[tuple[float, float]] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    rate_limited: Counter = field(default_factory=Counter)
    # Requests sent again because Apache had closed the kept-alive connection unread.
    resent: int = 0
    confirmation_delays: list[float] = field(default_factory=list)
    subscribed: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    cut_short: Counter = field(default_factory=Counter)

    def merge(self, other):
        for kind, values in other.latencies.items():
            self.latencies[kind].extend(values)
        self.timeline.extend(other.timeline)
        self.errors.update(other.errors)
        self.rate_limited.update(other.rate_limited)
        self.resent += other.resent
        self.confirmation_delays.extend(other.confirmation_delays)
        self.subscribed.extend(other.subscribed)
        self.confirmed.extend(other.confirmed)
        self.unsubscribed.extend(other.unsubscribed)
        self.cut_short.update(other.cut_short)


class Browser:
    """One client's kept-alive HTTP connection to Apache, sending what the load balancer
    adds to every request, and keeping its cookies."""

    def __init__(self, port, client_address, tally):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.client_address = client_address
        self.tally = tally
        self.cookies = {}
        self.last_used = 0.0

    def request(self, kind, method, path, *, expect, body=None, headers=(), with_cookies=True):
        all_headers = {
            "Host": SITE,
            "X-Forwarded-For": self.client_address,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Port": "443",
            "User-Agent": "Mail Ape load test",
            **dict(headers),
        }
        if with_cookies and self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if time.monotonic() - self.last_used > IDLE_SECONDS_BEFORE_RECONNECT:
            self.connection.close()
        started_at, started = time.time(), time.perf_counter()
        try:
            try:
                response, text = self._exchange(method, path, body, all_headers)
            except CLOSED_UNREAD as error:
                if not error.connection_was_reused:
                    raise
                # Apache's event MPM closes kept-alive connections when its threads run
                # short, and a request that meets the close was never read: like a
                # browser, send it again on a new connection.
                self.tally.resent += 1
                response, text = self._exchange(method, path, body, all_headers)
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            self.tally.errors[(kind, f"connection error: {type(error).__name__}: {error}")] += 1
            raise VisitEnded(kind) from error
        finally:
            self.last_used = time.monotonic()
        seconds = time.perf_counter() - started
        self.tally.latencies[kind].append(seconds)
        self.tally.timeline.append((started_at, seconds))
        if with_cookies:
            for header in response.headers.get_all("Set-Cookie") or ():
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        answer = Answer(response.status, response.headers, text)
        if answer.status == 429:
            self.tally.rate_limited[kind] += 1
            retry_after = answer.headers.get("Retry-After", "")
            raise RateLimited(int(retry_after) if retry_after.isdigit() else 1)
        if answer.status != expect:
            self.tally.errors[(kind, f"{answer.status} where {expect} was expected")] += 1
            raise VisitEnded(kind)
        return answer

    def _exchange(self, method, path, body, headers):
        reused = self.connection.sock is not None
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            return response, response.read().decode("utf-8", "replace")
        except CLOSED_UNREAD as error:
            self.connection.close()
            error.connection_was_reused = reused
            raise

    def post_form(self, kind, path, fields, *, expect):
        return self.request(
            kind,
            "POST",
            path,
            expect=expect,
            body=urlencode(fields),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": LINK_DOMAIN,
                "Referer": LINK_DOMAIN + path,
            },
        )

    def form_on(self, kind, page, path):
        form = PostForm(page.text)
        if not form.found:
            self.tally.errors[(kind, f"no form that posts on {path}")] += 1
            raise VisitEnded(kind)
        return form


def path_on_site(url):
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != SITE:
        raise ValueError(f"{url} is not on {SITE}")
    return parts.path + (f"?{parts.query}" if parts.query else "")


def one_click_url(list_unsubscribe):
    return next(
        url for url in re.findall(r"<([^>]+)>", list_unsubscribe or "") if url.startswith("https:")
    )


@dataclass
class LoadRun:
    """What every client of the run shares: where Apache listens, when the run ends,
    the mail sink, the subscribe page, and whether a visitor waits for a list message."""

    port: int
    deadline: float
    mailbox: VisitorMailbox
    subscribe_path: str
    news_wanted: threading.Event


class Visitor(threading.Thread):
    def __init__(self, number, load_run):
        super().__init__(name=f"visitor-{number}", daemon=True)
        self.number = number
        self.load_run = load_run
        self.tally = Tally()
        # Addresses from 198.18.0.0/15, set aside for benchmarks (RFC 2544).
        self.client_address = f"198.18.{number // 250}.{number % 250 + 1}"

    def run(self):
        browser = Browser(self.load_run.port, self.client_address, self.tally)
        visit_number = 0
        while time.monotonic() < self.load_run.deadline:
            visit_number += 1
            address = f"visitor{self.number}-{visit_number}@{VISITOR_DOMAIN}"
            try:
                self.subscribe_confirm_unsubscribe(browser, address)
            except RateLimited as limited:
                time.sleep(
                    max(0, min(limited.retry_after, self.load_run.deadline - time.monotonic()))
                )
            except VisitEnded:
                pass
            except Exception as error:
                # A page or an e-mail without what the visit needs next (a redirect, a
                # link, a header) is the app's error, not a reason to stop visiting.
                self.tally.errors[("visit", f"{type(error).__name__}: {error}")] += 1

    def next_mail(self, inbox, waiting_for):
        remaining = self.load_run.deadline - time.monotonic()
        try:
            return inbox.get(timeout=max(remaining, 0.001))
        except queue.Empty:
            self.tally.cut_short[waiting_for] += 1
            raise VisitEnded(waiting_for) from None

    def subscribe_confirm_unsubscribe(self, browser, address):
        inbox = self.load_run.mailbox.inbox(address)
        path = self.load_run.subscribe_path
        page = browser.request(SUBSCRIBE_PAGE, "GET", path, expect=200)
        form = browser.form_on(SUBSCRIBE_PAGE, page, path)
        if form.email_field is None:
            self.tally.errors[(SUBSCRIBE_PAGE, "the subscribe form has no e-mail field")] += 1
            raise VisitEnded(SUBSCRIBE_PAGE)
        sent = time.monotonic()
        answer = browser.post_form(
            SUBSCRIBE_FORM, path, {**form.fields, form.email_field: address}, expect=302
        )
        self.tally.subscribed.append(address)
        browser.request(THANK_YOU_PAGE, "GET", path_on_site(answer.headers["Location"]), expect=200)

        arrived, confirmation = self.next_mail(inbox, "the confirmation e-mail")
        self.tally.confirmation_delays.append(arrived - sent)
        path = path_on_site(confirmation_link(confirmation, LINK_DOMAIN))
        page = browser.request(CONFIRMATION_PAGE, "GET", path, expect=200)
        form = browser.form_on(CONFIRMATION_PAGE, page, path)
        browser.post_form(CONFIRMATION_FORM, path, form.fields, expect=200)
        self.tally.confirmed.append(address)

        self.load_run.news_wanted.set()
        news: EmailMessage | None = None
        while news is None or not str(news["Subject"]).startswith(NEWS_SUBJECT):
            _, news = self.next_mail(inbox, "a message of the list")
        # A mail client's one-click unsubscribe: no cookies, no CSRF token (RFC 8058).
        browser.request(
            ONE_CLICK_UNSUBSCRIBE,
            "POST",
            path_on_site(one_click_url(news["List-Unsubscribe"])),
            expect=200,
            body="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            with_cookies=False,
        )
        self.tally.unsubscribed.append(address)


class Owner(threading.Thread):
    """Sends the visitors' list a short message through the API whenever someone has
    confirmed since the last one, at most every interval seconds."""

    def __init__(self, load_run, interval, list_id, token):
        super().__init__(name="owner", daemon=True)
        self.load_run = load_run
        self.interval = interval
        self.path = f"/mailinglist/api/v1/mailinglist/{list_id}/messages"
        self.token = token
        self.tally = Tally()
        self.message_ids = []

    def run(self):
        browser = Browser(self.load_run.port, OWNER_CLIENT_ADDRESS, self.tally)
        while time.monotonic() + self.interval < self.load_run.deadline:
            time.sleep(self.interval)
            if not self.load_run.news_wanted.is_set():
                continue
            self.load_run.news_wanted.clear()
            number = len(self.message_ids) + 1
            body = {"subject": f"{NEWS_SUBJECT} #{number}", "body": "More **bananas** soon."}
            with contextlib.suppress(VisitEnded):
                answer = browser.request(
                    API_MESSAGE,
                    "POST",
                    self.path,
                    expect=201,
                    body=json.dumps(body),
                    headers={
                        "Authorization": f"Token {self.token}",
                        "Content-Type": "application/json",
                    },
                    with_cookies=False,
                )
                self.message_ids.append(json.loads(answer.text)["id"])


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_summary(seconds):
    if not seconds:
        return "no requests"
    return (
        f"{len(seconds)} requests, p50 {percentile(seconds, 0.5) * 1000:.0f} ms,"
        f" p99 {percentile(seconds, 0.99) * 1000:.0f} ms"
    )


def settings_environment(pg, database, smtp_port, redis_url, queue_name, log_file):
    """Production settings for this machine; the SQS settings, which production
    requires, go unused with a Redis broker."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.production_settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": SITE,
        "DJANGO_DB_NAME": database,
        "DJANGO_DB_USER": pg["user"],
        "DJANGO_DB_PASSWORD": pg["password"],
        "DJANGO_DB_HOST": pg["host"],
        "DJANGO_DB_PORT": str(pg["port"]),
        "DJANGO_LOG_FILE": str(log_file),
        "MAIL_APE_FROM_EMAIL": f"news@{SITE}",
        "MAILING_LIST_LINK_DOMAIN": LINK_DOMAIN,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_HOST_PORT": str(smtp_port),
        "EMAIL_HOST_TLS": "false",
        "CELERY_BROKER_URL": redis_url,
        "MAIL_APE_CELERY_QUEUE": queue_name,
        "MAIL_APE_SQS_QUEUE_URL": "https://sqs.us-west-2.amazonaws.com/123456789012/unused",
        "AWS_DEFAULT_REGION": "us-west-2",
        "PYTHONUNBUFFERED": "1",
    }


def writable_by_apache(path):
    """Apache's children run as www-data when Apache is started by root."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, "www-data", "www-data")
    return path


def missing_prerequisites(pg, redis_url):
    missing = []
    if not all(
        Path(path).exists()
        for path in ("/usr/sbin/apache2", "/usr/lib/apache2/modules/mod_wsgi.so")
    ):
        missing.append("Apache with mod_wsgi: apt-get install apache2 libapache2-mod-wsgi-py3")
    return missing + unreachable_servers(pg, redis_url)


def drop_scratch_database(pg, name):
    from django.db import connections

    connections.close_all()
    drop_database(pg, name)


@contextlib.contextmanager
def apache_serving(root, environment):
    port = free_port()
    try:
        subprocess.run(
            [PRODUCTION_WEB, "start", root, str(port)],
            env=environment,
            check=True,
            capture_output=True,
            text=True,
        )
        yield port
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"Apache did not start:\n{error.stderr}") from None
    finally:
        subprocess.run([PRODUCTION_WEB, "stop", root], check=False)


@contextlib.contextmanager
def celery_worker(environment, log_path, concurrency):
    worker = CeleryWorker(environment, log_path, concurrency=concurrency)
    try:
        yield worker.start()
    finally:
        worker.stop()


def answers_health(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/health", headers={"Host": SITE})
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def warm_up(port, subscribe_path):
    """Each mod_wsgi daemon process loads Django on its first request; the figures are
    those of a site already running, so every process gets a request before the clock
    starts."""

    def open_subscribe_page(_):
        browser = Browser(port, WARM_UP_CLIENT_ADDRESS, Tally())
        browser.request(SUBSCRIBE_PAGE, "GET", subscribe_path, expect=200)

    with ThreadPoolExecutor(WARM_UP_REQUESTS) as pool:
        list(pool.map(open_subscribe_page, range(WARM_UP_REQUESTS)))


def make_lists(recipients):
    from rest_framework.authtoken.models import Token

    from mailinglist.models import MailingList

    readers_list = make_list_with_subscribers(recipients)
    news_list = MailingList.objects.create(name=NEWS_SUBJECT, owner=readers_list.owner)
    token = Token.objects.create(user=readers_list.owner)
    return readers_list, news_list, token.key


def wait_for_messages(message_ids, timeout):
    from mailinglist.models import Message

    deadline = time.monotonic() + timeout
    while True:
        messages = list(Message.objects.filter(pk__in=message_ids))
        if all(message.is_final for message in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


def lost_records(news_list, tally):
    """Every subscription, confirmation and unsubscription the visitors saw succeed,
    as the database should now have it; what it does not have."""
    from mailinglist.models import Subscriber

    subscribers = {s.email: s for s in Subscriber.objects.filter(mailing_list=news_list)}
    unsubscribed = set(tally.unsubscribed)
    lost = []
    for address in tally.subscribed:
        if address not in subscribers:
            lost.append(f"{address}: its subscription was accepted, but it is not on the list")
    for address in tally.confirmed:
        subscriber = subscribers.get(address)
        if address not in unsubscribed and subscriber and not subscriber.confirmed:
            lost.append(f"{address}: confirmed, but the list has it {subscriber.status}")
    for address in unsubscribed:
        subscriber = subscribers.get(address)
        if subscriber and (subscriber.confirmed or subscriber.unsubscribed is None):
            lost.append(f"{address}: unsubscribed, but the list has it {subscriber.status}")
    return lost


def print_requests(tally, seconds):
    print(
        f"{'request':<28}{'count':>7}{'per s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}{'429s':>6}"
    )
    errors_by_kind = Counter()
    for (kind, _), count in tally.errors.items():
        errors_by_kind[kind] += count
    every_latency = []
    for kind in REQUEST_KINDS:
        latencies = tally.latencies.get(kind, [])
        every_latency += latencies
        if not latencies and not errors_by_kind[kind]:
            continue
        p50, p99 = (
            (percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000)
            if latencies
            else (0, 0)
        )
        print(
            f"{kind:<28}{len(latencies):>7}{len(latencies) / seconds:>8.1f}{p50:>8.0f}{p99:>8.0f}"
            f"{errors_by_kind[kind]:>8}{tally.rate_limited[kind]:>6}"
        )
    if every_latency:
        print(
            f"{'all':<28}{len(every_latency):>7}{len(every_latency) / seconds:>8.1f}"
            f"{percentile(every_latency, 0.5) * 1000:>8.0f}"
            f"{percentile(every_latency, 0.99) * 1000:>8.0f}"
            f"{sum(tally.errors.values()):>8}{sum(tally.rate_limited.values()):>6}"
        )


def log_tail(path, lines=20):
    with contextlib.suppress(OSError):
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    return ""


def run(arguments, pg, scratch):
    from django.core.management import call_command

    mailbox = VisitorMailbox()
    queue_name = f"mailape-load-{os.getpid()}"
    database = f"mailape_load_{os.getpid()}"
    logs = scratch / "logs"
    web_logs = writable_by_apache(scratch / "web-logs")
    settings = settings_environment(
        pg, database, mailbox.port, arguments.redis_url, queue_name, logs / "script.log"
    )
    os.environ.update(settings)
    import django

    with contextlib.ExitStack() as stack:
        stack.enter_context(mailbox)
        scratch_database(pg, database)
        stack.callback(drop_scratch_database, pg, database)
        django.setup()
        # Production settings log INFO, and the sink's aiosmtpd logs every SMTP command
        # at INFO: writing that would be much of this process's work.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        call_command("migrate", verbosity=0)
        call_command("createcachetable")
        readers_list, news_list, token = make_lists(arguments.recipients)

        subprocess.run([PRODUCTION_WEB, "stage", scratch / "mailape"], check=True)
        apache_environment = {
            **os.environ,
            "DJANGO_LOG_FILE": str(web_logs / "mailape.log"),
            "MAIL_APE_TRUSTED_PROXY_HOPS": "1",
        }
        port = stack.enter_context(apache_serving(scratch / "mailape", apache_environment))
        # Registered before the worker starts, so it runs once the worker has stopped
        # and put back the tasks it held.
        stack.callback(forget_queue, arguments.redis_url, queue_name)
        stack.enter_context(
            celery_worker(
                {**os.environ, "DJANGO_LOG_FILE": str(logs / "worker-django.log")},
                logs / "worker.log",
                arguments.worker_concurrency,
            )
        )
        wait_until(lambda: answers_health(port), timeout=60, message="Apache to serve /health")
        subscribe_path = f"/mailinglist/{news_list.pk}/subscribe"
        warm_up(port, subscribe_path)

        from mailinglist.models import Message

        print(
            f"Mail Ape through Apache + mod_wsgi on 127.0.0.1:{port}: {arguments.visitors}"
            f" visitors for {arguments.seconds:g} s while a message goes out to"
            f" {arguments.recipients} readers",
            flush=True,
        )
        started = time.monotonic()
        load_run = LoadRun(
            port=port,
            deadline=started + arguments.seconds,
            mailbox=mailbox,
            subscribe_path=subscribe_path,
            news_wanted=threading.Event(),
        )
        readers_message = Message.objects.create(
            mailing_list=readers_list, subject="Ripe bananas", body=MESSAGE_BODY
        )
        owner = Owner(load_run, arguments.news_every, news_list.pk, token)
        visitors = [Visitor(number, load_run) for number in range(arguments.visitors)]
        for client in (owner, *visitors):
            client.start()
        for client in (owner, *visitors):
            client.join()
        web_seconds = time.monotonic() - started

        tally = Tally()
        for client in (owner, *visitors):
            tally.merge(client.tally)
        messages = wait_for_messages(
            [readers_message.pk, *owner.message_ids], arguments.finish_timeout
        )
        return report(
            arguments,
            tally,
            web_seconds,
            messages,
            readers_message,
            mailbox,
            news_list,
            owner,
            web_logs,
        )


def report(
    arguments, tally, web_seconds, messages, readers_message, mailbox, news_list, owner, web_logs
):
    print_requests(tally, web_seconds)
    if tally.confirmation_delays:
        print(
            "confirmation e-mail after the form was sent:"
            f" p50 {percentile(tally.confirmation_delays, 0.5):.2f} s,"
            f" p99 {percentile(tally.confirmation_delays, 0.99):.2f} s"
        )
    cut_short = ", ".join(f"{count} waiting for {what}" for what, count in tally.cut_short.items())
    print(
        f"visitors: {len(tally.subscribed)} subscribed, {len(tally.confirmed)} confirmed,"
        f" {len(tally.unsubscribed)} unsubscribed; cut short by the end: {cut_short or 'none'}"
    )
    errors = sum(tally.errors.values())
    print(f"errors: {errors}")
    for (kind, description), count in tally.errors.most_common(10):
        print(f"    {count} x {kind}: {description}")
    print(f"429 (rate limited): {sum(tally.rate_limited.values())}")
    print(f"sent again after Apache closed a kept-alive connection unread: {tally.resent}")
    if errors:
        print(f"last lines of the web log:\n{log_tail(web_logs / 'mailape.log')}")

    from mailinglist.models import MessageState

    unfinished = [m for m in messages if m.status != MessageState.FINISHED]
    readers_message = next(m for m in messages if m.pk == readers_message.pk)
    counts = readers_message.delivery_counts()
    copies = mailbox.copies_for_readers
    twice = sum(count - 1 for count in copies.values())
    if readers_message.finished:
        took = (readers_message.finished - readers_message.created).total_seconds()
        finished = (
            f"finished {took:.1f} s after it was saved ({counts['sent'] / took:.0f} e-mails/s)"
        )
        finished_at = readers_message.finished.timestamp()
        during = [seconds for at, seconds in tally.timeline if at < finished_at]
        after = [seconds for at, seconds in tally.timeline if at >= finished_at]
        print(
            f"requests while the message went out: {latency_summary(during)};"
            f" after it finished: {latency_summary(after)}"
        )
    else:
        finished = f"not finished: {readers_message.status}, {counts}"
    print(
        f"message to {arguments.recipients} readers: {finished}; the sink got copies for"
        f" {len(copies)} readers, {twice} of them twice or more"
    )
    print(
        f"messages to the visitors' list: {len(owner.message_ids)}, sent through the API;"
        f" unfinished messages: {len(unfinished)}"
    )
    lost = lost_records(news_list, tally)
    missing_copies = arguments.recipients - len(copies)
    print(f"lost: {len(lost) + max(missing_copies, 0)}")
    for line in lost[:20]:
        print(f"    {line}")
    if missing_copies > 0:
        print(f"    {missing_copies} readers got no copy of the message")

    whole_visits = len(tally.unsubscribed)
    if not whole_visits:
        print("No visitor got through a whole visit: nothing was measured end to end.")
    failed = errors or lost or missing_copies or unfinished or not whole_visits
    return 1 if failed else 0


def forget_queue(redis_url, queue_name):
    """Delete the run's Celery queue and Kombu's bindings of it from the shared Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"*{queue_name}"))
    if keys:
        client.delete(*keys)


def main():
    arguments = parse_arguments()
    pg = postgres_settings()
    missing = missing_prerequisites(pg, arguments.redis_url)
    if missing:
        print("Missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    # Stopped from outside (a test's timeout), it still stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="mailape-load-"))
    # Apache's children, as www-data, read the staged app under it.
    scratch.chmod(0o755)
    (scratch / "logs").mkdir()
    try:
        return run(arguments, pg, scratch)
    finally:
        if arguments.keep_logs:
            arguments.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in [*scratch.glob("*logs/*"), *scratch.glob("mailape/apache/log/*")]:
                shutil.copy(log, arguments.keep_logs / log.name)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
