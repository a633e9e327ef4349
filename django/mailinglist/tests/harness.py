"""Real servers for tests: an SMTP sink and Celery worker processes on free ports."""

import contextlib
import os
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
    to refuse that recipient; None accepts it.
    """

    def __init__(self, reply_for_recipient=None):
        self.reply_for_recipient = reply_for_recipient or (lambda address: None)
        self.messages = []
        self.refusals = []
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self._controller.start()
        return self

    def __exit__(self, *exc_info):
        self._controller.stop()

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


class CeleryWorker:
    """`celery -A config worker` in its own process group, so it can be killed whole."""

    def __init__(self, env, log_path, concurrency=2, beat=False):
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.beat = beat
        self.process = None

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
        ]
        if self.beat:
            command += ["--beat", "--schedule", str(Path(self.log_path).with_suffix(".beat"))]
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        start_offset = self._log.tell()
        self.process = subprocess.Popen(
            command,
            cwd=DJANGO_DIR,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: (
                b" ready." in Path(self.log_path).read_bytes()[start_offset:]
                or self.process.poll() is not None
            ),
            timeout=60,
            message="the Celery worker to start",
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"Celery worker exited:\n{self.log()}")
        return self

    def kill(self, sig=signal.SIGKILL):
        """Kill the whole process group at once, as a crashed machine would."""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if not self._log.closed:
            self._log.close()

    def log(self):
        return Path(self.log_path).read_text(errors="replace")


class RedisServer:
    """A private redis-server on a free port, which a test may kill and start again."""

    def __init__(self, log_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_path
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
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
            ],
            stdout=open(self.log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def answers():
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return True
            return False

        wait_until(answers, timeout=10, interval=0.05, message="redis-server to listen")
        return self

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    stop = kill
