import mailbox
import signal
import threading

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand


class MaildirHandler:
    def __init__(self, maildir):
        self.maildir = maildir

    async def handle_DATA(self, server, session, envelope):
        self.maildir.add(envelope.original_content)
        return "250 Message accepted for delivery"


class Command(BaseCommand):
    help = "Development SMTP server that keeps every e-mail in a Maildir for /dev/mailbox/."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.EMAIL_PORT)

    def handle(self, host, port, **options):
        maildir = mailbox.Maildir(settings.MAIL_APE_DEV_MAILBOX, create=True)
        controller = Controller(MaildirHandler(maildir), hostname=host, port=port)
        controller.start()
        self.stdout.write(f"Capturing e-mail on {host}:{port} into {settings.MAIL_APE_DEV_MAILBOX}")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
