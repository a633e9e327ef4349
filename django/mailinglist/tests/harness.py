"""Real servers for tests and the benchmark: an SMTP sink, Celery worker processes and a
private Redis, on free ports."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection

DJANGO_DIR = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def confirmation_link(email_message, link_domain):
    """The confirmation link in the plain-text part of a parsed e-mail."""
    text = email_message.get_body(preferencelist=("plain",)).get_content()
    return re.search(re.escape(link_domain) + r"/mailinglist/subscribe/confirmation/\S+", text)[0]


def wait_until(condition, timeout=30.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")


class SmtpSink:
    """An aiosmtpd server that keeps what it accepts.

    reply_for_recipient(address) may return an SMTP reply such as "451 4.3.0 Later"
    to refuse that recipient; None accepts it. It offers PIPELINING (aiosmtpd reads
    commands one line at a time, so it takes them pipelined) unless told not to.
    """

    def __init__(self, reply_for_recipient=None, pipelining=True):
        self.reply_for_recipient = reply_for_recipient or (lambda address: None)
        self.pipelining = pipelining
        self.messages = []
        self.refusals = []
        # (recipient, envelope sender) of each message accepted.
        self.envelope_senders = []
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self._controller.start()
        return self

    def __exit__(self, *exc_info):
        self._controller.stop()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.reply_for_recipient(address)
        if reply:
            with self._lock:
                self.refusals.append((address, reply))
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        with self._lock:
            self.messages.extend((recipient, parsed) for recipient in envelope.rcpt_tos)
            self.envelope_senders.extend(
                (recipient, envelope.mail_from) for recipient in envelope.rcpt_tos
            )
        return "250 Message accepted"

    def received(self):
        with self._lock:
            return list(self.messages)

    def received_by(self, address):
        return [message for recipient, message in self.received() if recipient == address]


def worker_environment(smtp_port, link_domain, **extra):
    """Environment for a worker process that shares this test's database and queue."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DJANGO_DB_NAME": connection.settings_dict["NAME"],
        "MAIL_APE_CELERY_EAGER": "0",
        "MAIL_APE_CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "MAIL_APE_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_HOST_PORT": str(smtp_port),
        "MAILING_LIST_LINK_DOMAIN": link_domain,
        "PYTHONUNBUFFERED": "1",
        **{name: str(value) for name, value in extra.items()},
    }


class BackgroundProcess:
    """A child process in a process group of its own, logging to a file, stopped whole."""

    def __init__(self, log_path, env=None):
        self.log_path = Path(log_path)
        self.env = env
        self.process = None

    def launch(self, command):
        """Start command; returns where its output begins in the log."""
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                command,
                cwd=DJANGO_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return offset

    def running(self):
        return self.process is not None and self.process.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Kill the whole process group at once, as a crashed machine would."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self):
        if self.running():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self):
        return self.log_path.read_text(errors="replace")

    def peak_rss(self):
        """(largest peak RSS of one process, their sum, how many) over the group, in MB."""
        peaks = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                process_group = int(stat.read_text().rsplit(")", 1)[1].split()[2])
                if process_group != self.process.pid:
                    continue
                status = (stat.parent / "status").read_text()
            except (OSError, IndexError, ValueError):
                continue
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                peaks.append(int(match[1]) / 1024)
        return max(peaks), sum(peaks), len(peaks)


class CeleryWorker(BackgroundProcess):
    """`celery -A config worker`, which a test may kill -9 and start again."""

    def __init__(self, env, log_path, concurrency=2, beat=False, extra_args=()):
        super().__init__(log_path, env)
        self.concurrency = concurrency
        self.beat = beat
        self.extra_args = list(extra_args)

    def start(self):
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={self.concurrency}",
            f"--hostname=test-{os.getpid()}-{time.monotonic_ns()}@%h",
            "--without-gossip",
            "--without-mingle",
            *self.extra_args,
        ]
        if self.beat:
            command += ["--beat", "--schedule", str(self.log_path.with_suffix(".beat"))]
        offset = self.launch(command)
        wait_until(
            lambda: b" ready." in self.log_path.read_bytes()[offset:] or not self.running(),
            timeout=60,
            message="the Celery worker to start",
        )
        if not self.running():
            raise RuntimeError(f"Celery worker exited:\n{self.log()}")
        return self


class RedisServer(BackgroundProcess):
    """A private redis-server on a free port, which a test may kill and start again."""

    def __init__(self, log_path):
        super().__init__(log_path)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.launch(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
        )

        def answers():
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return True
            return False

        wait_until(answers, timeout=10, interval=0.05, message="redis-server to listen")
        return self


def postfix_report(failed_address, original_headers, to):
    """A delivery status notification as Postfix writes one, quoting the original's headers."""
    quoted = "".join(f"{name}: {value}\r\n" for name, value in original_headers.items())
    return (
        "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n'
        "\r\n"
        "--B1\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mx.example.com.\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "\r\n"
        f"<{failed_address}>: host mx.example.com said: 550 5.1.1 User unknown\r\n"
        "\r\n"
        "--B1\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {failed_address}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{failed_address}>: User unknown\r\n"
        "\r\n"
        "--B1\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"{quoted}"
        "\r\n"
        "--B1--\r\n"
    ).encode()
