"""Work handed to Celery through a transactional outbox.

What a request asks of Celery (a confirmation to send, a message to deliver) is
written as a QueuedTask in the same transaction as its data; once that commits,
relay() hands it to the broker and deletes it. If the broker is down, the row
waits, and Celery beat's relay_queued_tasks hands it over once the broker is
back: a broker outage never loses work or turns a saved form into an error page.

Tasks are named here rather than imported: the models queue work when they are
saved, and the tasks run code that uses the models, so naming them keeps every
import pointing one way. mailinglist.tasks registers each task under its name,
and the app's ready() registers the tasks in every process, not only in workers.
"""

import logging
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

logger = logging.getLogger(__name__)

SEND_CONFIRMATION_EMAIL = "mailinglist.tasks.send_confirmation_email_to_subscriber"
SEND_SUBSCRIBER_MESSAGES = "mailinglist.tasks.send_subscriber_messages"
REQUEUE_STALLED_DELIVERIES = "mailinglist.tasks.requeue_stalled_deliveries"
RELAY_QUEUED_TASKS = "mailinglist.tasks.relay_queued_tasks"
START_DUE_MESSAGES = "mailinglist.tasks.start_due_messages"
SEND_TEST_COPIES = "mailinglist.tasks.send_test_copies"
ANALYSE_SUBSCRIBER_IMPORT = "mailinglist.tasks.analyse_subscriber_import"
RUN_SUBSCRIBER_IMPORT = "mailinglist.tasks.run_subscriber_import"
RESUME_STALLED_IMPORTS = "mailinglist.tasks.resume_stalled_imports"
SEND_IMPORT_CONFIRMATIONS = "mailinglist.tasks.send_import_confirmations"
# Its work now happens in the first delivery task's first claim; kept for tasks
# an earlier release queued.
FORMER_START_TASK = "mailinglist.tasks.build_subscriber_messages_for_message"

RELAY_BATCH = 500


class QueuedTask(models.Model):
    """A task a transaction asked for, kept until the broker has taken it."""

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    # The task is not to run before this time (a countdown).
    not_before = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)}"


def after_commit(task_name: str, *args: str, countdown: float = 0) -> None:
    """Queue task_name(*args), to run countdown seconds from now, with the current transaction."""
    queued = QueuedTask.objects.create(
        task_name=task_name,
        args=list(args),
        not_before=timezone.now() + timedelta(seconds=countdown) if countdown else None,
    )
    transaction.on_commit(partial(relay, [queued.pk]))


def relay(ids: Iterable[int] | None = None) -> int:
    """Hand queued tasks (those with ids, or the oldest) to the broker, deleting each it takes.

    Stops at the first one the broker refuses: it is down, and the rest wait for
    the next relay. Rows another relay is handing over are skipped. Returns how
    many were handed over.
    """
    handed_over = 0
    with transaction.atomic():
        queued = QueuedTask.objects.select_for_update(skip_locked=True)
        if ids is not None:
            queued = queued.filter(pk__in=ids)
        for task in queued[:RELAY_BATCH]:
            options: dict[str, Any] = {"retry": False}
            if task.not_before:
                options["eta"] = task.not_before
            try:
                current_app.tasks[task.task_name].apply_async(task.args, **options)
            except BrokerUnavailable as error:
                QueuedTask.objects.filter(pk=task.pk).update(
                    attempts=F("attempts") + 1, last_error=str(error)[:1000]
                )
                logger.warning("Broker unavailable; %s waits in the outbox: %s", task, error)
                break
            task.delete()
            handed_over += 1
    return handed_over
