"""Work handed to Celery once the transaction that asks for it commits.

Tasks are named here rather than imported: the models queue work when they are
saved, and the tasks run code that uses the models, so naming them keeps every
import pointing one way. mailinglist.tasks registers each task under its name,
and the app's ready() registers the tasks in every process, not only in workers.
"""

from functools import partial

from celery import current_app
from django.db import transaction

SEND_CONFIRMATION_EMAIL = "mailinglist.tasks.send_confirmation_email_to_subscriber"
SEND_SUBSCRIBER_MESSAGES = "mailinglist.tasks.send_subscriber_messages"
REQUEUE_STALLED_DELIVERIES = "mailinglist.tasks.requeue_stalled_deliveries"
# Its work now happens in the first delivery task's first claim; kept for tasks
# an earlier release queued.
FORMER_START_TASK = "mailinglist.tasks.build_subscriber_messages_for_message"


def after_commit(task_name: str, *args: str, countdown: float = 0) -> None:
    """Queue task_name(*args) once the current transaction commits (at once outside one),
    to run countdown seconds later."""
    task = current_app.tasks[task_name]
    transaction.on_commit(partial(task.apply_async, args, countdown=countdown))
