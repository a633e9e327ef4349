"""How fast Mail Ape delivers a message, next to two ceilings and to the book's design,
and how it comes back from workers killed mid-send.

    .venv/bin/python bench/delivery_benchmark.py --sizes 10000 100000 [--million]
        [--repeats 3] [--concurrency N] [--merge-tags] [--no-kills] [--kill-size 5000]

Everything is real and local: PostgreSQL (a scratch database made and dropped
here), Redis (a queue of its own), Celery worker processes started here, and
Postfix's smtp-sink in a process of its own as the SMTP server. Nothing is
installed; what is missing is named. For each size N it measures, --repeats
times (3) each:

- the ceiling: N pre-serialised copies pushed with plain smtplib, one SMTP
  connection per core, each in its own process;
- the new-connection ceiling: the same copies, one process per core, each copy
  over a connection of its own (smtplib.SMTP(), sendmail, quit), as a sender
  that does not keep its connection open pays;
- Mail Ape, with two worker processes per core unless --concurrency says
  otherwise: Message.objects.create() to the last copy counted by the sink; the
  time to the first copy; the peak RSS of the worker processes (VmHWM, a fresh
  worker per send); the database statements per copy; and the fan-out. Mail Ape
  makes delivery rows inside each claim, not in a step of their own, so the
  fan-out's share of the send is measured as the time it adds: the send is run
  as it is and with every row made before the clock starts, and the difference
  of the medians is set against the real send. The fan-out's own time is printed
  too: the start (the first claim counts the recipients) and every statement that
  made rows (statements and fan-out metered in every worker process by an execute
  wrapper, see bench_tasks.py).

Both ceilings are measured again right before each of Mail Ape's sends, so that
they see the same load of this shared machine. The figures printed for Mail Ape
are those of its median send (by duration), and each ratio is that send's rate
over the median of the ceiling's runs: the throughput goals (≥ 0.75 × ceiling,
beating 1.0 with SMTP pipelining; ≥ 1.5 × the new-connection ceiling) are judged
on the median of --repeats runs. The peak worker RSS of every size is printed
again at the end; it counts as flat if it stays below 150 MB at every size and
the largest size's is at most 10 % above the smallest size's. --million adds
N = 1,000,000; give it --repeats 1, as every send at that size takes minutes. The
ceilings' pushers each make their own share of the copies, so that no process
holds a million of them.

Once, at --book-size recipients, it measures the book's design: one INSERT and
one task per recipient, each sending over a new SMTP connection.

With --merge-tags, each size also sends, --repeats times, a message whose subject
and body carry merge tags (the reader's name, a custom field, a default for the
readers without a name), and prints its rate and its ratio to the same ceiling.

Unless --no-kills, the kill scenario runs last, at --kill-size (5,000) confirmed
readers, on the aiosmtpd server of the tests' harness, which keeps every copy it
accepts with its recipient (and here also the moment it took it). The worker
group has the throughput runs' concurrency and runs Celery beat embedded (-B), so
the sweep dies and starts again with it. The lease and the sweep's interval are
whatever MAIL_APE_DELIVERY_LEASE_SECONDS and MAIL_APE_SWEEP_SECONDS give (the
settings' defaults unless the environment sets them; this script never does, and
says which it used). MAIL_APE_SEND_RATE, shared by every worker, is set so that
the send takes about 18 s undisturbed. The same send is measured undisturbed at
that rate first, then again while the whole worker group is killed with SIGKILL
5 times, each at a random moment up to 2 s after the server took a copy from the
group started last, with a fresh group started right after each kill. It prints:

- when the kills came, and the undisturbed send's time to finished and to its
  last copy;
- the time from the last kill to the message being finished and to its last
  copy, beside the time the undisturbed send took for as many copies as were
  still owed at the last kill (so that what is recovery and what is sending at
  the rate can be told apart);
- recovery, the figure the "< 30 s after the last kill" goal is judged on: the
  time from the last kill until every delivery row the killed workers held (the
  rows in "sending" right after the kill, before new workers start) is "sent".
  Those rows can only go out once something notices that their workers died, so
  this is the time recovery takes, whatever is left to send at the rate. If the
  killed workers held no row, the goal is reported missed, as not measured;
- duplicates: copies beyond the first for a recipient, how many recipients got
  copies with differing Message-IDs (none should), and duplicates ÷ (kills ×
  worker processes), whose goal is ≤ 1;
- lost recipients: those the server took no copy for once the message finished,
  split into those whose row is not "sent" and those whose row says "sent"
  (goal: 0 of either).
"""

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DJANGO_DIR = ROOT / "django"
BENCH_DIR = ROOT / "bench"
sys.path[:0] = [str(BENCH_DIR), str(DJANGO_DIR)]

# The tests' launcher for Celery workers, their SMTP server and their helpers.
from mailinglist.tests import harness  # noqa: E402
from mailinglist.tests.harness import CeleryWorker, free_port  # noqa: E402

MESSAGE_BODY = """# Ripe bananas

This week's **banana facts**, for every reader of the list:

- Bananas are berries; strawberries are not.
- A bunch is a *hand*, and a single banana a *finger*.
- See [the archive](https://example.com/archive) for older issues.

> Eat them before they go brown.
"""

MERGE_TAGS_SUBJECT = 'Ripe bananas for {{ name|default:"you" }}'
MERGE_TAGS_BODY = (
    '# Hello {{ name|default:"banana fan" }}\n\n'
    "Your company, **{{ fields.company }}**, gets this week's banana facts:\n"
    + MESSAGE_BODY.partition("\n\n")[2]
    + "\n[Your account](https://example.com/account?company={{ fields.company }})\n"
)

# The kill scenario's send rate is set so that, undisturbed, it takes about this long:
# long enough for five kills to land while copies go out.
KILL_SEND_SECONDS = 18
KILLS = 5
# Each kill comes at a random moment up to this long after the server took a copy from
# the workers started last.
KILL_WINDOW_SECONDS = 2.0
RECOVERY_GOAL_SECONDS = 30
# Peak worker RSS counts as flat if the largest size's is at most this much above the
# smallest size's.
RSS_FLAT_GROWTH = 0.10
RSS_GOAL_MB = 150


def postgres_settings():
    """How the scripts in bench/ reach PostgreSQL: the DJANGO_DB_* variables, or the
    local server as the tests use it."""
    return {
        "host": os.environ.get("DJANGO_DB_HOST", "127.0.0.1"),
        "port": int(os.environ.get("DJANGO_DB_PORT", "5432")),
        "user": os.environ.get("DJANGO_DB_USER", "postgres"),
        "password": os.environ.get("DJANGO_DB_PASSWORD", ""),
    }


def unreachable_servers(pg, redis_url):
    """What stops PostgreSQL or Redis from answering, one line each."""
    import psycopg2
    import redis

    unreachable = []
    try:
        psycopg2.connect(dbname="postgres", **pg).close()
    except psycopg2.OperationalError as error:
        unreachable.append(f"PostgreSQL at {pg['host']}:{pg['port']} as {pg['user']}: {error}")
    try:
        redis.Redis.from_url(redis_url).ping()
    except redis.RedisError as error:
        unreachable.append(f"Redis at {redis_url}: {error}")
    return unreachable


def missing_prerequisites(pg, redis_url):
    missing = []
    if not smtp_sink_binary():
        missing.append(
            "Postfix's smtp-sink: apt-get install postfix (only the smtp-sink binary is "
            "used; postfix itself need not run)"
        )
    return missing + unreachable_servers(pg, redis_url)


def smtp_sink_binary():
    return shutil.which("smtp-sink") or next(
        (path for path in ("/usr/sbin/smtp-sink",) if os.access(path, os.X_OK)), None
    )


class SmtpSink:
    """smtp-sink in its own process; its running counter says when each copy arrived."""

    def __init__(self):
        self.port = free_port()
        self.count = 0
        self._watches = []
        self._lock = threading.Lock()
        command = [smtp_sink_binary(), "-c", f"127.0.0.1:{self.port}", "1024"]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "nobody"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read_counter, daemon=True).start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start")

    def _read_counter(self):
        counter = re.compile(rb"mesg=(\d+)")
        while chunk := os.read(self.process.stdout.fileno(), 65536):
            found = counter.findall(chunk[-200:]) or counter.findall(chunk)
            if not found:
                continue
            now = time.monotonic()
            with self._lock:
                self.count = int(found[-1])
                for watch in self._watches:
                    watch.update(self.count, now)

    def watch(self, expected):
        """Times of the first and of the expected-th copy from now on, once the sink is quiet."""
        settled_count, settled_since = self.count, time.monotonic()
        while time.monotonic() - settled_since < 0.5:
            time.sleep(0.05)
            if self.count != settled_count:
                settled_count, settled_since = self.count, time.monotonic()
        with self._lock:
            watch = SinkWatch(self.count, expected)
            self._watches.append(watch)
        return watch

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class SinkWatch:
    def __init__(self, baseline, expected):
        self.baseline = baseline
        self.expected = expected
        self.first_at = None
        self.done = threading.Event()
        self.done_at = None

    def update(self, count, now):
        if self.first_at is None and count > self.baseline:
            self.first_at = now
        if self.done_at is None and count >= self.baseline + self.expected:
            self.done_at = now
            self.done.set()

    def wait(self, timeout):
        if not self.done.wait(timeout):
            raise TimeoutError(f"the sink had {self.expected} copies to count; timed out")


def start_worker(env, log_path, concurrency, beat=False):
    """`celery -A config worker` with the bench tasks, in a process group of its own;
    with beat, Celery beat runs embedded in it (-B), and dies with it."""
    return CeleryWorker(
        env,
        log_path,
        concurrency=concurrency,
        beat=beat,
        extra_args=["--include=bench_tasks", "--without-heartbeat"],
    ).start()


def make_list_with_subscribers(count):
    from django.db import connection

    from mailinglist.models import MailingList, Subscriber
    from user.models import User

    owner, _ = User.objects.get_or_create(username="bench")
    mailing_list = MailingList.objects.create(name=f"Bench {count}", owner=owner)
    # Only a table name from model metadata is interpolated; values are parameters.
    # Every tenth reader has no name, so that a merge tag's default is used too.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Subscriber._meta.db_table}
                (id, email, name, fields, confirmed, mailing_list_id, created)
            SELECT gen_random_uuid(), 'reader' || n || '@example.com',
                   CASE WHEN n %% 10 = 0 THEN '' ELSE 'Reader ' || n END,
                   jsonb_build_object('company', 'Company ' || n), true, %s, now()
            FROM generate_series(1, %s) AS n
            """,  # noqa: S608
            [mailing_list.pk, count],
        )
    return mailing_list


def serialised_copies(numbers):
    """Real Mail Ape copies to reader<n>@example.com for each n in numbers, made before
    the clock starts."""
    from mailinglist.emails import ListMessageMailer
    from mailinglist.models import MailingList, Message, Subscriber, SubscriberMessage

    mailing_list = MailingList(name="Ceiling")
    message = Message(mailing_list=mailing_list, subject="Ripe bananas", body=MESSAGE_BODY)
    message.render()
    mailer = ListMessageMailer(message)
    copies = []
    for n in numbers:
        subscriber = Subscriber(email=f"reader{n}@example.com", mailing_list=mailing_list)
        copy = mailer.build(SubscriberMessage(message=message, subscriber=subscriber))
        copies.append((copy.envelope_to, copy.data))
    return mailer.envelope_from, copies


def _push_copies(port, numbers, new_connection_per_copy, ready, start):
    # Each pusher makes its own share of the copies, so that a million of them are
    # never held in one process, and they are made in parallel.
    envelope_from, copies = serialised_copies(numbers)
    if new_connection_per_copy:
        ready.wait()
        start.wait()
        for recipient, data in copies:
            client = smtplib.SMTP("127.0.0.1", port)
            client.sendmail(envelope_from, [recipient], data)
            client.quit()
        return
    with smtplib.SMTP("127.0.0.1", port) as client:
        ready.wait()
        start.wait()
        for recipient, data in copies:
            client.sendmail(envelope_from, [recipient], data)


def measure_ceiling(sink, count, processes, new_connection_per_copy=False):
    """E-mails per second that plain smtplib reaches with pre-serialised copies, one
    process per core: over one connection each, or opening a new one per copy."""
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(processes + 1)
    start = context.Event()
    pushers = [
        context.Process(
            target=_push_copies,
            args=(
                sink.port,
                range(n, count, processes),
                new_connection_per_copy,
                ready,
                start,
            ),
        )
        for n in range(processes)
    ]
    for pusher in pushers:
        pusher.start()
    ready.wait(timeout=3600)
    watch = sink.watch(count)
    started = time.monotonic()
    start.set()
    watch.wait(timeout=3600)
    for pusher in pushers:
        pusher.join()
    return count / (watch.done_at - started)


def measure_book(sink, worker_env, count, concurrency, log_dir, redis_client, queue):
    import bench_tasks

    from mailinglist.models import Message

    mailing_list = make_list_with_subscribers(count)
    # bulk_create skips Message.save(), so Mail Ape's own fan-out is not queued.
    [message] = Message.objects.bulk_create(
        [Message(mailing_list=mailing_list, subject="Ripe bananas", body=MESSAGE_BODY)]
    )
    worker = start_worker(worker_env, log_dir / "book-worker.log", concurrency)
    try:
        watch = sink.watch(count)
        started = time.monotonic()
        bench_tasks.book_create_subscriber_messages.delay(str(message.pk))
        watch.wait(timeout=3600)
        return {
            "rate": count / (watch.done_at - started),
            "seconds": watch.done_at - started,
            "first": watch.first_at - started,
        }
    finally:
        worker.stop()
        redis_client.delete(queue)
        # The book's design never finishes a message; left sending, it would be found
        # stalled by the kill scenario's sweep and delivered there.
        Message.objects.filter(pk=message.pk).update(status=Message.Status.FINISHED)


def measure_mail_ape(
    sink,
    worker_env,
    count,
    concurrency,
    log_dir,
    redis_client,
    keys,
    subject="Ripe bananas",
    body=MESSAGE_BODY,
):
    from mailinglist.models import Message

    mailing_list = make_list_with_subscribers(count)
    worker = start_worker(worker_env, log_dir / f"mailape-worker-{count}.log", concurrency)
    try:
        redis_client.delete(keys["queries"], keys["fan_out"])
        watch = sink.watch(count)
        started = time.monotonic()
        message = Message.objects.create(mailing_list=mailing_list, subject=subject, body=body)
        watch.wait(timeout=3600)
        deadline = time.monotonic() + 60
        while Message.objects.get(pk=message.pk).status != Message.Status.FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError("the message never finished")
            time.sleep(0.1)
        time.sleep(1)
        fan_out = {
            kind.decode(): float(seconds)
            for kind, seconds in redis_client.hgetall(keys["fan_out"]).items()
        }
        if not fan_out.get("making rows") or not fan_out.get("start"):
            raise RuntimeError(
                f"fan-out statements missing from the meter (bench_tasks.py): {fan_out}"
            )
        rss_max, rss_sum, processes = worker.peak_rss()
        seconds = watch.done_at - started
        return {
            "rate": count / seconds,
            "seconds": seconds,
            "first": watch.first_at - started,
            "start": fan_out["start"],
            "making_rows": fan_out["making rows"],
            "rss_max": rss_max,
            "rss_sum": rss_sum,
            "processes": processes,
            "queries": int(redis_client.get(keys["queries"]) or 0) / count,
            "counts": Message.objects.get(pk=message.pk).delivery_counts(),
        }
    finally:
        worker.stop()


def measure_with_rows_made_beforehand(sink, worker_env, count, concurrency, log_dir):
    """The same send, but with every delivery row made (pending) before the clock starts.

    Set against the real send, it shows how much time making rows adds to it.
    """
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from mailinglist.models import Message, Subscriber, SubscriberMessage

    mailing_list = make_list_with_subscribers(count)
    now = timezone.now()
    # bulk_create skips Message.save(): the message is stored as saving it would, minus
    # the delivery tasks, which are queued once the rows are made.
    message = Message(mailing_list=mailing_list, subject="Ripe bananas", body=MESSAGE_BODY)
    message.render()
    message.queued = now
    [message] = Message.objects.bulk_create([message])
    # Only table names from model metadata are interpolated; values are parameters.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {SubscriberMessage._meta.db_table}
                (id, message_id, subscriber_id, created, status, attempts, last_error,
                 available_at)
            SELECT gen_random_uuid(), %s, s.id, %s, %s, 0, '', %s
            FROM {Subscriber._meta.db_table} s WHERE s.mailing_list_id = %s
            """,  # noqa: S608
            [message.pk, now, SubscriberMessage.Status.PENDING, now, mailing_list.pk],
        )
    Message.objects.filter(pk=message.pk).update(
        started=now, fanned_out=now, fan_out_slices=1, fan_out_slices_done=1
    )
    worker = start_worker(worker_env, log_dir / f"mailape-made-beforehand-{count}.log", concurrency)
    try:
        watch = sink.watch(count)
        started = time.monotonic()
        message.queue_delivery(workers=settings.MAIL_APE_DELIVERY_PARALLELISM)
        watch.wait(timeout=3600)
        # Stopped before its last outcomes are written, the worker would leave rows for a
        # later worker to send again, into another measurement.
        wait_until_finished(message, timeout=60)
        return watch.done_at - started
    finally:
        worker.stop()


def print_merge_tags_send(runs, size, ceiling, rate_without_tags):
    result = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    ratio = result["rate"] / ceiling
    print(
        f"merge tags N={size:>9,}: {result['rate']:>9,.0f} e-mails/s "
        f"({result['seconds']:.2f} s end to end; median of "
        + ", ".join(f"{run['seconds']:.2f}" for run in runs)
        + " s)\n"
        f"    {ratio:.2f} × ceiling, {result['rate'] / rate_without_tags:.2f} × the same "
        f"message without tags; {result['queries']:.3f} database statements per e-mail; "
        f"rows: {result['counts']}\n"
        f"    target: ≥ 0.3 × ceiling {'met' if ratio >= 0.3 else 'MISSED'}",
        flush=True,
    )


class RecordingSink(harness.SmtpSink):
    """The tests' aiosmtpd server, which keeps who got what, also noting when it took
    each copy of the message with this subject."""

    def __init__(self, subject):
        super().__init__()
        self.subject = subject
        self.accepted_at = []

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        _, email = self.messages[-1]
        if email["Subject"] == self.subject:
            now = time.monotonic()
            self.accepted_at.extend(now for _ in envelope.rcpt_tos)
        return reply

    def copies(self):
        """(recipient, e-mail) of each copy of the message with this subject."""
        return [(to, email) for to, email in self.received() if email["Subject"] == self.subject]


def wait_until_finished(message, timeout):
    """When (time.monotonic()) the message was first seen finished."""
    from mailinglist.models import Message

    return harness.wait_until(
        lambda: (
            Message.objects.filter(pk=message.pk, status=Message.Status.FINISHED).exists()
            and time.monotonic()
        ),
        timeout=timeout,
        interval=0.05,
        message="the message to finish",
    )


def send_at_rate(sink, env, size, concurrency, log_path, timeout):
    """The kill scenario's send without a kill: seconds from Message.objects.create() to
    finished and to each copy."""
    from mailinglist.models import Message

    mailing_list = make_list_with_subscribers(size)
    worker = start_worker(env, log_path, concurrency, beat=True)
    try:
        started = time.monotonic()
        message = Message.objects.create(
            mailing_list=mailing_list, subject=sink.subject, body=MESSAGE_BODY
        )
        finished_at = wait_until_finished(message, timeout)
        return {
            "finished": finished_at - started,
            "accepted": [at - started for at in sink.accepted_at],
        }
    finally:
        worker.stop()


def send_through_kills(sink, env, size, concurrency, kills, log_path, patience):
    """Send to size readers, killing the whole worker group (SIGKILL) kills times, each at
    a random moment after the server took a copy from the group started last, and
    starting a fresh group straight after each kill."""
    from mailinglist.models import Message, Subscriber, SubscriberMessage

    mailing_list = make_list_with_subscribers(size)
    worker = start_worker(env, log_path, concurrency, beat=True)
    try:
        started = time.monotonic()
        message = Message.objects.create(
            mailing_list=mailing_list, subject=sink.subject, body=MESSAGE_BODY
        )
        rows = SubscriberMessage.objects.filter(message=message)
        sending, sent = SubscriberMessage.Status.SENDING, SubscriberMessage.Status.SENT
        kill_times, held, sent_at_last_kill = [], [], 0
        copies_at_restart = 0
        for _ in range(kills):
            harness.wait_until(
                lambda since=copies_at_restart: len(sink.accepted_at) > since,
                timeout=patience,
                interval=0.02,
                message="a copy from the workers started last",
            )
            time.sleep(random.uniform(0, KILL_WINDOW_SECONDS))
            if Message.objects.filter(pk=message.pk, status=Message.Status.FINISHED).exists():
                break
            worker.kill()
            kill_times.append(time.monotonic())
            # Taken before new workers start, so these are the rows the dead ones held.
            held = list(rows.filter(status=sending).values_list("pk", flat=True))
            sent_at_last_kill = rows.filter(status=sent).count()
            worker = start_worker(env, log_path, concurrency, beat=True)
            copies_at_restart = len(sink.accepted_at)
        if not kill_times:
            raise RuntimeError("the send finished before the first kill; raise --kill-size")
        last_kill = kill_times[-1]
        recovered_at = finished_at = None
        deadline = time.monotonic() + patience + 3 * KILL_SEND_SECONDS
        while recovered_at is None or finished_at is None:
            now = time.monotonic()
            if recovered_at is None and not rows.filter(pk__in=held).exclude(status=sent).exists():
                recovered_at = now
            if (
                finished_at is None
                and Message.objects.filter(pk=message.pk, status=Message.Status.FINISHED).exists()
            ):
                finished_at = now
            if now > deadline:
                raise TimeoutError("the message did not finish after the last kill")
            time.sleep(0.05)
        # A copy in the server's hands as the message finished is counted too.
        time.sleep(0.5)
        statuses = dict(rows.values_list("subscriber__email", "status"))
        addresses = Subscriber.objects.filter(mailing_list=mailing_list).values_list(
            "email", flat=True
        )
        message_ids = defaultdict(list)
        for recipient, email in sink.copies():
            message_ids[recipient].append(email["Message-ID"])
        missing = [address for address in addresses if not message_ids[address]]
        return {
            "kills": [at - started for at in kill_times],
            "held": len(held),
            "owed": size - sent_at_last_kill,
            "recovered": recovered_at - last_kill,
            "finished": finished_at - last_kill,
            "last_copy": max(sink.accepted_at) - last_kill,
            "duplicates": sum(len(ids) - 1 for ids in message_ids.values()),
            "mixed_message_ids": sum(1 for ids in message_ids.values() if len(set(ids)) > 1),
            "lost_not_sent": sum(1 for address in missing if statuses.get(address) != sent),
            "lost_marked_sent": sum(1 for address in missing if statuses.get(address) == sent),
        }
    finally:
        worker.stop()


def measure_kills(worker_env, size, concurrency, kills, log_dir):
    """The kill scenario at the deployment's lease and sweep: a send stretched by
    MAIL_APE_SEND_RATE to about KILL_SEND_SECONDS, undisturbed and through kills."""
    from django.conf import settings

    from mailinglist.models import Message

    # The sweep would deliver any message still sending here, sharing the send rate.
    leftover = Message.objects.filter(status=Message.Status.SENDING).count()
    if leftover:
        raise RuntimeError(f"{leftover} messages of the throughput runs are still sending")
    lease, sweep = settings.MAIL_APE_DELIVERY_LEASE_SECONDS, settings.MAIL_APE_SWEEP_SECONDS
    # The longest a dead worker's rows can wait for today's sweep, with room to spare.
    patience = lease + 2 * sweep + 60
    rate = math.ceil(size / KILL_SEND_SECONDS)
    with RecordingSink("Ripe bananas, undisturbed") as sink:
        env = {**worker_env, "MAIL_APE_SEND_RATE": str(rate), "EMAIL_HOST_PORT": str(sink.port)}
        undisturbed = send_at_rate(
            sink, env, size, concurrency, log_dir / "kills-undisturbed.log", patience
        )
    with RecordingSink("Ripe bananas, through kills") as sink:
        env = {**worker_env, "MAIL_APE_SEND_RATE": str(rate), "EMAIL_HOST_PORT": str(sink.port)}
        killed = send_through_kills(
            sink, env, size, concurrency, kills, log_dir / "kills-worker.log", patience
        )
    accepted = undisturbed["accepted"]
    owed = min(killed["owed"], len(accepted))
    # The undisturbed send's time for as many copies as the killed one still owed.
    killed["owed_undisturbed"] = accepted[-1] - (accepted[-owed - 1] if owed < len(accepted) else 0)
    overridden = [
        name
        for name in ("MAIL_APE_DELIVERY_LEASE_SECONDS", "MAIL_APE_SWEEP_SECONDS")
        if name in os.environ
    ]
    return {
        "rate": rate,
        "lease": lease,
        "sweep": sweep,
        "settings_source": f"{' and '.join(overridden)} from the environment"
        if overridden
        else "the settings' defaults",
        "undisturbed_finished": undisturbed["finished"],
        "undisturbed_last_copy": accepted[-1],
        **killed,
    }


def print_kills(result, size, kills_asked, concurrency):
    kills = len(result["kills"])
    per_process_per_kill = result["duplicates"] / (kills * concurrency)
    lost = result["lost_not_sent"] + result["lost_marked_sent"]
    checks = {
        f"recovery < {RECOVERY_GOAL_SECONDS} s after the last kill": result["held"] > 0
        and result["recovered"] < RECOVERY_GOAL_SECONDS,
        "duplicates ≤ 1 per process per kill": per_process_per_kill <= 1,
        "0 lost": lost == 0,
    }
    short = "" if kills == kills_asked else f" (only {kills} of {kills_asked}: the send ended)"
    print(
        f"kills     N={size:>9,}: {kills} × SIGKILL of the whole worker group{short} "
        f"({concurrency} worker processes and embedded beat), a fresh group started after "
        f"each; {result['rate']:,} e-mails/s (MAIL_APE_SEND_RATE); lease {result['lease']} s "
        f"and sweep every {result['sweep']} s ({result['settings_source']})\n"
        "    kills at "
        + ", ".join(f"{at:.1f}" for at in result["kills"])
        + " s after the message was saved\n"
        f"    undisturbed at that rate (same run): finished {result['undisturbed_finished']:.1f} s "
        f"after it was saved, last copy at {result['undisturbed_last_copy']:.1f} s\n"
        f"    after the last kill: finished in {result['finished']:.1f} s, last copy at "
        f"{result['last_copy']:.1f} s; undisturbed, the {result['owed']:,} copies still owed "
        f"then take {result['owed_undisturbed']:.1f} s\n"
        + (
            f"    recovery: the {result['held']:,} rows the killed workers held were all sent "
            f"{result['recovered']:.1f} s after the last kill\n"
            if result["held"]
            else "    recovery not measured: the killed workers held no row at the last kill\n"
        )
        + f"    duplicates: {result['duplicates']:,} ({result['duplicates'] / size:.1%}), "
        f"{result['mixed_message_ids']} recipients with differing Message-IDs; "
        f"{per_process_per_kill:.2f} per worker process per kill "
        f"({result['duplicates']:,} ÷ ({kills} kills × {concurrency} processes))\n"
        f"    lost recipients (no copy at the server): {lost} ({result['lost_not_sent']} with "
        f"their row not sent, {result['lost_marked_sent']} with it marked sent)\n"
        "    targets: "
        + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks.items()),
        flush=True,
    )


def forget_unacknowledged_tasks(redis_client, queue):
    """Drop the broker's record of the tasks killed workers had taken from this run's
    queue; past the visibility timeout a worker anywhere on this Redis would put them
    back into a queue nobody reads."""
    for tag, entry in redis_client.hscan_iter("unacked"):
        if json.loads(entry)[2] == queue:
            redis_client.pipeline().hdel("unacked", tag).zrem("unacked_index", tag).execute()


def print_rss_by_size(rss_by_size):
    sizes = sorted(rss_by_size)
    growth = rss_by_size[sizes[-1]] / rss_by_size[sizes[0]] - 1
    below = max(rss_by_size.values()) < RSS_GOAL_MB
    if len(sizes) == 1:
        verdict = f"< {RSS_GOAL_MB} MB {'met' if below else 'MISSED'}; flat needs two sizes"
    else:
        flat = below and growth <= RSS_FLAT_GROWTH
        verdict = (
            f"{growth:+.0%} from the smallest size to the largest; flat < {RSS_GOAL_MB} MB "
            f"(below it at every size, and at most {RSS_FLAT_GROWTH:.0%} more at the largest) "
            + ("met" if flat else "MISSED")
        )
    print(
        "peak worker RSS by size: "
        + ", ".join(f"{size:,}: {rss_by_size[size]:.0f} MB" for size in sizes)
        + f"; {verdict}",
        flush=True,
    )


def scratch_database(pg, name):
    import psycopg2

    admin = psycopg2.connect(dbname="postgres", **pg)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def drop_database(pg, name):
    import psycopg2

    admin = psycopg2.connect(dbname="postgres", **pg)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


def main():
    import redis

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="also measure N=1,000,000")
    parser.add_argument("--book-size", type=int, default=10_000)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="sends per size, with and without rows made beforehand; medians are compared",
    )
    # Delivery tasks wait on SMTP replies, so two worker processes per core keep
    # the cores busy; the ceiling still gets one connection per core.
    parser.add_argument("--concurrency", type=int, default=2 * os.cpu_count())
    parser.add_argument(
        "--merge-tags",
        action="store_true",
        help="also send a message with merge tags at each size and compare it to the ceiling",
    )
    parser.add_argument(
        "--kills",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"kill the worker group {KILLS} times during a send (--no-kills skips it)",
    )
    parser.add_argument("--kill-size", type=int, default=5_000)
    args = parser.parse_args()
    sizes = sorted(set(args.sizes + ([1_000_000] if args.million else [])))
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    pg = postgres_settings()
    redis_url = os.environ.get("MAIL_APE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    missing = missing_prerequisites(pg, redis_url)
    if missing:
        print("The benchmark needs, and did not find:", *missing, sep="\n- ")
        return 2

    tag = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    database = f"mailape_bench_{tag.replace('-', '_')}"
    queue = f"mailape-bench-{tag}"
    keys = {"queries": f"mailape-bench-queries-{tag}", "fan_out": f"mailape-bench-fan-out-{tag}"}
    sink = SmtpSink()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench_settings",
        DJANGO_DB_NAME=database,
        MAIL_APE_TEST_REDIS_URL=redis_url,
        MAIL_APE_CELERY_EAGER="0",
        MAIL_APE_CELERY_QUEUE=queue,
        MAIL_APE_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_HOST_PORT=str(sink.port),
        MAILING_LIST_LINK_DOMAIN="https://lists.example.com",
        MAIL_APE_BENCH_QUERY_COUNTER=keys["queries"],
        MAIL_APE_BENCH_FAN_OUT_SECONDS=keys["fan_out"],
        # Unthrottled, whatever the shell says; the kill scenario sets its own rate.
        MAIL_APE_SEND_RATE="0",
        DJANGO_LOG_LEVEL="WARNING",
    )
    worker_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(DJANGO_DIR)]),
        "DJANGO_LOG_LEVEL": "INFO",
    }
    scratch_database(pg, database)
    log_dir = Path(tempfile.mkdtemp(prefix="mailape-bench-"))
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        redis_client = redis.Redis.from_url(redis_url)
        cores = os.cpu_count()
        print(
            f"Delivery benchmark: {cores} cores, worker concurrency {args.concurrency}, "
            f"PostgreSQL + Redis + Celery, Postfix smtp-sink; worker logs in {log_dir}",
            flush=True,
        )
        book = measure_book(
            sink, worker_env, args.book_size, args.concurrency, log_dir, redis_client, queue
        )
        print(
            f"book      N={args.book_size:>9,}: {book['rate']:>9,.0f} e-mails/s "
            f"({book['seconds']:.1f} s; one INSERT, one task and one SMTP connection per "
            "recipient; measured, not extrapolated)",
            flush=True,
        )
        rss_by_size = {}
        for size in sizes:
            # A second or two of sending varies by several percent from run to run,
            # as much as the fan-out may add, so every send is repeated and medians
            # compared; the ceilings are measured again right before each of Mail
            # Ape's sends, so that both see the same machine load.
            ceiling_runs, new_connection_runs, runs, runs_beforehand = [], [], [], []
            for _ in range(args.repeats):
                ceiling_runs.append(measure_ceiling(sink, size, cores))
                new_connection_runs.append(
                    measure_ceiling(sink, size, cores, new_connection_per_copy=True)
                )
                runs.append(
                    measure_mail_ape(
                        sink, worker_env, size, args.concurrency, log_dir, redis_client, keys
                    )
                )
                runs_beforehand.append(
                    measure_with_rows_made_beforehand(
                        sink, worker_env, size, args.concurrency, log_dir
                    )
                )
            ceiling = statistics.median(ceiling_runs)
            new_connection_ceiling = statistics.median(new_connection_runs)
            result = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
            ratio = result["rate"] / ceiling
            new_connection_ratio = result["rate"] / new_connection_ceiling
            beforehand = statistics.median(runs_beforehand)
            added = result["seconds"] - beforehand
            share = added / result["seconds"]
            rss_by_size[size] = result["rss_max"]
            checks = {
                "≥ 0.75 × ceiling": ratio >= 0.75,
                "> 1.0 × ceiling (pipelining)": ratio > 1.0,
                "≥ 1.5 × new-connection ceiling": new_connection_ratio >= 1.5,
                "≥ 20 × book": result["rate"] >= 20 * book["rate"],
                "fan-out ≤ 5 %": share <= 0.05,
                f"RSS < {RSS_GOAL_MB} MB": result["rss_max"] < RSS_GOAL_MB,
            }
            print(
                f"ceiling   N={size:>9,}: {ceiling:>9,.0f} e-mails/s "
                f"(smtplib, pre-serialised, one connection in each of {cores} processes; "
                f"median of {', '.join(f'{rate:,.0f}' for rate in ceiling_runs)})\n"
                f"new conn  N={size:>9,}: {new_connection_ceiling:>9,.0f} e-mails/s "
                f"(the same copies, a new connection per copy, SMTP() + sendmail + quit, in "
                f"{cores} processes; median of "
                f"{', '.join(f'{rate:,.0f}' for rate in new_connection_runs)})\n"
                f"Mail Ape  N={size:>9,}: {result['rate']:>9,.0f} e-mails/s "
                f"({result['seconds']:.2f} s end to end, "
                + (f"the median of {args.repeats} sends" if args.repeats > 1 else "one send")
                + ")\n"
                f"    {ratio:.2f} × ceiling, {new_connection_ratio:.2f} × new-connection "
                f"ceiling (the median send's rate ÷ each median ceiling), "
                f"{result['rate'] / book['rate']:.1f} × book\n"
                f"    fan-out adds {added:+.2f} s = {share:.1%} of the send (medians of "
                f"{args.repeats} sends each: "
                + ", ".join(f"{run['seconds']:.2f}" for run in runs)
                + " s; with every row made before the clock: "
                + ", ".join(f"{seconds:.2f}" for seconds in runs_beforehand)
                + f" s); first e-mail after {result['first']:.2f} s\n"
                f"    the fan-out's own time: start (counting recipients) {result['start']:.3f} s, "
                f"row-making statements {result['making_rows']:.2f} s in all (one at a "
                "time, under the message's lock, while the other workers send)\n"
                f"    peak worker RSS {result['rss_max']:.0f} MB in the largest process, "
                f"{result['rss_sum']:.0f} MB summed over {result['processes']} processes\n"
                f"    {result['queries']:.3f} database statements per e-mail; "
                f"rows: {result['counts']}\n"
                "    targets: "
                + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks.items()),
                flush=True,
            )
            if args.merge_tags:
                print_merge_tags_send(
                    [
                        measure_mail_ape(
                            sink,
                            worker_env,
                            size,
                            args.concurrency,
                            log_dir,
                            redis_client,
                            keys,
                            subject=MERGE_TAGS_SUBJECT,
                            body=MERGE_TAGS_BODY,
                        )
                        for _ in range(args.repeats)
                    ],
                    size,
                    ceiling,
                    result["rate"],
                )
        print_rss_by_size(rss_by_size)
        if args.kills:
            print_kills(
                measure_kills(worker_env, args.kill_size, args.concurrency, KILLS, log_dir),
                args.kill_size,
                KILLS,
                args.concurrency,
            )
    finally:
        from django.db import connections

        connections.close_all()
        sink.stop()
        with contextlib.suppress(Exception):
            redis_client = redis.Redis.from_url(redis_url)
            redis_client.delete(queue, *keys.values())
            forget_unacknowledged_tasks(redis_client, queue)
        drop_database(pg, database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
