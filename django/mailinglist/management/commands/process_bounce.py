"""Read one bounce report from stdin: the interface of Postfix's pipe(8) and Exim's pipe
transport. Exits 0 when the report was handled or is nothing to act on, 75
(EX_TEMPFAIL) when the database cannot be reached, so that the mail server retries."""

import sys

from django.core.management.base import BaseCommand
from django.db import InterfaceError, OperationalError

from mailinglist.bounces.mailed import act_on_mailed_report
from mailinglist.bounces.reports import MAX_REPORT_BYTES

EX_TEMPFAIL = 75
READ_SIZE = 1024 * 1024


class Command(BaseCommand):
    help = "Record the bounce report on stdin (for a mail server's pipe transport)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--recipient",
            help="The envelope recipient, where a VERP address names the copy "
            "(Postfix: ${recipient}; Exim: $local_part@$domain).",
        )

    def handle(self, *args, recipient=None, **options):
        data = read_at_most(sys.stdin.buffer, MAX_REPORT_BYTES)
        try:
            recorded = act_on_mailed_report(data, recipient)
        except (OperationalError, InterfaceError) as error:
            self.stderr.write(f"Database unreachable, try again later: {error}")
            sys.exit(EX_TEMPFAIL)
        self.stdout.write(f"{recorded} failure(s) recorded")


def read_at_most(stream, limit):
    """The first limit bytes of stream; the rest is read and dropped, so that the mail
    server writing it does not see a broken pipe."""
    data = stream.read(limit)
    while stream.read(READ_SIZE):
        pass
    return data
