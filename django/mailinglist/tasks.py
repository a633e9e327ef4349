"""Celery tasks: ids in, one call out. mailinglist.queueing names them for the models."""

import time
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from mailinglist import emails, queueing
from mailinglist.delivery import confirmations, scheduling, sending, sweep
from mailinglist.imports import running

# An SMTP server that cannot be reached is tried again for about half an hour.
RETRY_WHILE_SMTP_IS_DOWN: dict[str, Any] = {
    "autoretry_for": (OSError,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 8,
}
# A dropped database connection is worth a fresh try: Celery closes the broken
# connection after the task, and rows this attempt had claimed come back when
# their lease runs out.
RETRY_ON_DATABASE_HICCUPS: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 1,
    "max_retries": 5,
}

# An import reads its whole file in one task: a million rows take about a minute,
# and the limits stay inside the broker's visibility timeout (an hour).
IMPORT_TASK: dict[str, Any] = {
    **RETRY_ON_DATABASE_HICCUPS,
    "soft_time_limit": 3000,
    "time_limit": 3300,
}


@shared_task(name=queueing.SEND_CONFIRMATION_EMAIL, **RETRY_WHILE_SMTP_IS_DOWN)
def send_confirmation_email_to_subscriber(subscriber_id):
    emails.send_confirmation_email_to(subscriber_id)


@shared_task(name=queueing.SEND_TEST_COPIES, **RETRY_WHILE_SMTP_IS_DOWN)
def send_test_copies(message_id, *addresses):
    emails.send_test_copies(message_id, list(addresses))


@shared_task(
    bind=True,
    name=queueing.SEND_SUBSCRIBER_MESSAGES,
    ignore_result=True,
    **RETRY_ON_DATABASE_HICCUPS,
)
def send_subscriber_messages(self, message_id):
    sending.send_for_a_while(message_id, countdowns_work=not self.request.is_eager)


@shared_task(name=queueing.FORMER_START_TASK, ignore_result=True, **RETRY_ON_DATABASE_HICCUPS)
def start_task_of_an_earlier_release(message_id):
    sending.send_for_a_while(message_id)


@shared_task(name=queueing.REQUEUE_STALLED_DELIVERIES, ignore_result=True)
def requeue_stalled_deliveries():
    sweep.requeue_stalled_deliveries()


@shared_task(name=queueing.START_DUE_MESSAGES, ignore_result=True)
def start_due_messages():
    scheduling.start_due_messages()


@shared_task(name=queueing.RELAY_QUEUED_TASKS, ignore_result=True)
def relay_queued_tasks():
    queueing.relay()


@shared_task(name=queueing.ANALYSE_SUBSCRIBER_IMPORT, ignore_result=True, **IMPORT_TASK)
def analyse_subscriber_import(import_id):
    running.analyse(import_id)


@shared_task(name=queueing.RUN_SUBSCRIBER_IMPORT, ignore_result=True, **IMPORT_TASK)
def run_subscriber_import(import_id):
    running.run(import_id)


@shared_task(name=queueing.RESUME_STALLED_IMPORTS, ignore_result=True)
def resume_stalled_imports():
    running.resume_stalled_imports()


@shared_task(
    name=queueing.SEND_IMPORT_CONFIRMATIONS, ignore_result=True, **RETRY_WHILE_SMTP_IS_DOWN
)
def send_import_confirmations(import_id):
    confirmations.send_import_confirmations(
        import_id, time.monotonic() + settings.MAIL_APE_DELIVERY_TASK_SECONDS
    )
