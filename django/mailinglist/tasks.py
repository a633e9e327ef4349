import time

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from mailinglist import emails
from mailinglist.models import Message, Subscriber


@shared_task(autoretry_for=(OSError,), retry_backoff=True, retry_backoff_max=600, max_retries=8)
def send_confirmation_email_to_subscriber(subscriber_id):
    subscriber = (
        Subscriber.objects.select_related("mailing_list")
        .filter(pk=subscriber_id, confirmed=False)
        .first()
    )
    if subscriber is not None:
        emails.send_confirmation_email(subscriber)


# A dropped database connection is worth a fresh try: Celery closes the broken
# connection after the task, and rows this attempt had claimed come back when
# their lease runs out.
DATABASE_HICCUPS = (OperationalError, InterfaceError)


@shared_task(autoretry_for=DATABASE_HICCUPS, retry_backoff=1, max_retries=5)
def build_subscriber_messages_for_message(message_id):
    message = Message.objects.filter(pk=message_id, status=Message.Status.SENDING).first()
    if message is not None:
        message.start_delivery()


@shared_task(
    bind=True, ignore_result=True, autoretry_for=DATABASE_HICCUPS, retry_backoff=1, max_retries=5
)
def send_subscriber_messages(self, message_id):
    message = Message.objects.select_related("mailing_list").filter(pk=message_id).first()
    if message is None:
        return
    deadline = time.monotonic() + settings.MAIL_APE_DELIVERY_TASK_SECONDS
    carry_on_in = message.deliver(deadline)
    # An eager run ignores countdowns, so waiting for a retry would spin; the
    # sweep picks those up instead.
    if carry_on_in == 0 or (carry_on_in is not None and not self.request.is_eager):
        message.queue_delivery(countdown=carry_on_in)


@shared_task(ignore_result=True)
def requeue_stalled_deliveries():
    """Pick up what a lost task or a dead worker left: the database knows what is owed."""
    for message in Message.objects.stalled():
        message.restart_stalled_delivery()
