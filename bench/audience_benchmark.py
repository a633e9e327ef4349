"""How fast Mail Ape brings an audience in and out, next to PostgreSQL's own COPY.

    .venv/bin/python bench/audience_benchmark.py [--rows 1000000] [--small 10]

Everything is real and local: PostgreSQL (a scratch database made and dropped
here), Redis, one Celery worker process and one `runserver` started here with
DEBUG off. It measures, in one run:

- import: a CSV file of --rows rows (email, name, two custom fields; 1 % of the
  addresses again in capitals further down, 0.5 % invalid) POSTed to the API's
  import endpoint over HTTP, until the job reports "finished", beside COPY of the
  same clean rows straight into the subscriber table (the table emptied before
  each, so both fill the same indexes from the same start); the worker's peak RSS;
- export: the web export of the imported list read to its end over HTTP, beside
  COPY (SELECT … ORDER BY email) TO STDOUT of the same columns; the web
  process's peak RSS;
- pages: the manage page and the API's subscriber list (first page, a middle
  page by its number, the same middle page as its predecessor's rel="next" link
  names it, a search) for the --rows list and for a --small list: medians of 7
  requests each, and the ratio (the goal is at most 2).
"""

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DJANGO_DIR = ROOT / "django"
BENCH_DIR = ROOT / "bench"
sys.path[:0] = [str(BENCH_DIR), str(DJANGO_DIR)]

from delivery_benchmark import (  # noqa: E402
    drop_database,
    postgres_settings,
    scratch_database,
    unreachable_servers,
)

from mailinglist.tests.harness import (  # noqa: E402
    BackgroundProcess,
    CeleryWorker,
    free_port,
    wait_until,
)

PASSWORD = "benchmark-password"  # noqa: S105
REQUESTS_PER_PAGE = 7


def audience_file(rows, path):
    """Write the import file; returns (its rows, the clean rows as COPY takes them)."""
    random.seed(20261202)
    duplicates = rows // 100
    invalid = rows // 200
    unique = rows - duplicates - invalid
    clean = []
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("email,name,company,city\r\n")
        for number in range(unique):
            email = f"reader{number}@example.com"
            name = f"Reader {number}"
            company, city = f"Company {number % 977}", f"City {number % 113}"
            out.write(f"{email},{name},{company},{city}\r\n")
            clean.append((email, name, company, city))
        for _ in range(duplicates):
            out.write(f"READER{random.randrange(unique)}@EXAMPLE.COM,Again,,\r\n")
        for number in range(invalid):
            out.write(f"not-an-address-{number},Nobody,,\r\n")
    return rows, clean


def copy_baseline(connection, mailing_list_id, clean):
    """COPY the clean rows into the subscriber table; returns the seconds it took."""
    data = io.StringIO()
    for email, name, company, city in clean:
        data.write(
            f'{uuid.uuid4()},{email},{name},"{{""company"": ""{company}"", ""city"": '
            f'""{city}""}}",t,{mailing_list_id},2026-12-02 00:00:00+00\n'
        )
    data.seek(0)
    with connection.cursor() as cursor:
        started = time.monotonic()
        cursor.copy_expert(
            "COPY mailinglist_subscriber (id, email, name, fields, confirmed, mailing_list_id, "
            "created) FROM STDIN WITH (FORMAT csv)",
            data,
        )
        connection.commit()
        return time.monotonic() - started


def empty_subscriber_table(connection):
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE mailinglist_subscriber CASCADE")
    connection.commit()


class WebServer(BackgroundProcess):
    """`runserver --noreload` on the benchmark's settings and database."""

    def __init__(self, log_path, env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(log_path, env)

    def start(self):
        self.launch(
            [
                sys.executable,
                "manage.py",
                "runserver",
                "--noreload",
                "--skip-checks",
                f"127.0.0.1:{self.port}",
            ]
        )
        wait_until(self._answers, timeout=60, message="runserver")
        return self

    def _answers(self):
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{self.url}/health", timeout=5) as answer,  # noqa: S310
        ):
            return answer.status == 200
        return False


def request(url, headers, data=None, method="GET"):
    """One HTTP request, its body read to the end; returns (status, body, seconds)."""
    started = time.monotonic()
    call = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    with urllib.request.urlopen(call, timeout=600) as answer:  # noqa: S310
        size = 0
        first = None
        while chunk := answer.read(1 << 16):
            size += len(chunk)
            if first is None:
                first = chunk
        return answer.status, first or b"", size, time.monotonic() - started


def multipart(path, status):
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="status"\r\n\r\n{status}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def measure_import(server, auth, mailing_list, path):
    """POST the file to the API and wait for the job to finish; returns seconds."""

    body, content_type = multipart(path, "confirmed")
    url = f"{server.url}/mailinglist/api/v1/mailinglist/{mailing_list.pk}/subscribers/import"
    started = time.monotonic()
    call = urllib.request.Request(  # noqa: S310
        url, data=body, headers={**auth, "Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(call, timeout=600) as answer:  # noqa: S310
        job_url = json.loads(answer.read())["url"]
    uploaded = time.monotonic() - started
    while True:
        poll = urllib.request.Request(job_url, headers=auth)  # noqa: S310
        with urllib.request.urlopen(poll, timeout=60) as answer:  # noqa: S310
            job = json.loads(answer.read())
        if job["status"] in ("finished", "failed"):
            return time.monotonic() - started, uploaded, job
        time.sleep(0.2)


def copy_out_seconds(connection, mailing_list_id):
    class Counter(io.RawIOBase):
        size = 0

        def write(self, data):
            self.size += len(data)
            return len(data)

    # COPY takes no parameters; the id is a UUID, which cannot carry SQL.
    list_id = uuid.UUID(str(mailing_list_id))
    query = (
        "COPY (SELECT email, name, confirmed, unsubscribed, created, fields "  # noqa: S608
        f"FROM mailinglist_subscriber WHERE mailing_list_id = '{list_id}' ORDER BY email, id) "
        "TO STDOUT WITH (FORMAT csv)"
    )
    with connection.cursor() as cursor:
        started = time.monotonic()
        cursor.copy_expert(query, Counter())
        return time.monotonic() - started


def median_seconds(url, headers):
    times = []
    for _ in range(REQUESTS_PER_PAGE):
        status, _, _, seconds = request(url, headers)
        assert status == 200, (url, status)
        times.append(seconds)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10)
    args = parser.parse_args()

    pg = postgres_settings()
    redis_url = os.environ.get("MAIL_APE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    unreachable = unreachable_servers(pg, redis_url)
    if unreachable:
        print("The benchmark needs, and did not find:", *unreachable, sep="\n- ")
        return 2
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    database = f"mailape_bench_{tag.replace('-', '_')}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench_settings",
        DJANGO_DB_NAME=database,
        MAIL_APE_TEST_REDIS_URL=redis_url,
        MAIL_APE_CELERY_EAGER="0",
        MAIL_APE_CELERY_QUEUE=f"mailape-bench-{tag}",
        MAIL_APE_CACHE_PREFIX=f"mailape-bench-{tag}",
        MAIL_APE_API_USER_RATE="1000000/minute",
        DJANGO_LOG_LEVEL="WARNING",
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(DJANGO_DIR)])}
    scratch_database(pg, database)
    work = Path(tempfile.mkdtemp(prefix="mailape-audience-bench-"))
    worker = server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        from mailinglist.api.pagination import subscriber_cursor
        from mailinglist.models import MailingList, Subscriber
        from user.models import User

        call_command("migrate", verbosity=0)
        owner = User.objects.create_user("bench", "bench@example.com", PASSWORD)
        auth = {
            "Authorization": "Basic "
            + __import__("base64").b64encode(f"bench:{PASSWORD}".encode()).decode()
        }
        big, baseline_list, small = (
            MailingList.objects.create(name=name, owner=owner)
            for name in ("Big list", "COPY baseline", "Small list")
        )
        rows, clean = audience_file(args.rows, work / "audience.csv")
        size_mb = (work / "audience.csv").stat().st_size / 1e6
        print(
            f"Audience benchmark: {os.cpu_count()} cores, {rows:,} rows ({size_mb:.1f} MB), "
            f"PostgreSQL + Redis + 1 Celery worker + runserver; logs in {work}",
            flush=True,
        )

        copy_in = copy_baseline(connection, baseline_list.pk, clean)
        empty_subscriber_table(connection)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE mailinglist_subscriber")

        worker = CeleryWorker(env, work / "worker.log", concurrency=1).start()
        server = WebServer(work / "runserver.log", env).start()
        seconds, uploaded, job = measure_import(server, auth, big, work / "audience.csv")
        worker_peak = worker.peak_rss()[0]
        assert job["status"] == "finished", job
        stored = Subscriber.objects.filter(mailing_list=big).count()
        assert stored == len(clean), (stored, len(clean))
        copy_rate, import_rate = len(clean) / copy_in, rows / seconds
        print(
            f"import    {rows:>9,} rows: {import_rate:>9,.0f} rows/s ({seconds:.1f} s from "
            f'the POST to "finished", {uploaded:.1f} s of it the upload); counts {job["counts"]}'
            f"\n    COPY of the {len(clean):,} clean rows: {copy_rate:,.0f} rows/s "
            f"({copy_in:.1f} s)\n    {import_rate / copy_rate:.2f} × COPY (goal ≥ 0.5); "
            f"worker peak RSS {worker_peak:.0f} MB (goal < 250)",
            flush=True,
        )

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE mailinglist_subscriber")
        Subscriber.objects.bulk_create(
            Subscriber(mailing_list=small, email=f"small{n}@example.com", confirmed=True)
            for n in range(args.small)
        )
        client = Client()
        client.force_login(owner)
        session = {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}

        copy_out = copy_out_seconds(connection, big.pk)
        status, _, export_bytes, export_seconds = request(
            f"{server.url}/mailinglist/{big.pk}/export", session
        )
        server_peak = server.peak_rss()[0]
        print(
            f"export    {stored:>9,} rows: {stored / export_seconds:>9,.0f} rows/s "
            f"({export_seconds:.1f} s, {export_bytes / 1e6:.0f} MB over HTTP)\n"
            f"    COPY … TO STDOUT: {stored / copy_out:,.0f} rows/s ({copy_out:.1f} s)\n"
            f"    {copy_out / export_seconds:.2f} × COPY (goal ≥ 0.5); web process peak RSS "
            f"{server_peak:.0f} MB",
            flush=True,
        )

        middle = max(1, stored // 100 // 2)
        subscribers = "/mailinglist/api/v1/mailinglist/{pk}/subscribers"
        # The cursors that the Link headers of the page before the middle one and of no
        # page at all (the start of the list) would give.
        ordered = Subscriber.objects.order_by("email", "pk")
        middle_cursor = subscriber_cursor(ordered.filter(mailing_list=big)[(middle - 1) * 100 - 1])
        start_cursor = subscriber_cursor(Subscriber(email="", pk=uuid.UUID(int=0)))
        pages = {
            "manage page": ("/mailinglist/{pk}/manage", None),
            "manage search": ("/mailinglist/{pk}/manage?q=er12", None),
            "API list": (subscribers, None),
            "API middle page": (f"{subscribers}?page={middle}", f"{subscribers}?page=1"),
            "API middle, next": (
                f"{subscribers}?cursor={middle_cursor}",
                f"{subscribers}?cursor={start_cursor}",
            ),
            "API search": (f"{subscribers}?search=er12", None),
        }
        for label, (path, small_path) in pages.items():
            headers = session if "API" not in label else auth
            big_seconds = median_seconds(server.url + path.format(pk=big.pk), headers)
            small_url = server.url + (small_path or path).format(pk=small.pk)
            small_seconds = median_seconds(small_url, headers)
            print(
                f"{label:<16} {stored:,} subscribers {big_seconds * 1000:7.1f} ms, "
                f"{args.small} subscribers {small_seconds * 1000:7.1f} ms: "
                f"{big_seconds / small_seconds:.2f} × (goal ≤ 2)",
                flush=True,
            )
    finally:
        for process in (server, worker):
            if process is not None:
                process.stop()
        from django.db import connections

        connections.close_all()
        drop_database(pg, database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
