import math
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from mailinglist import emails
from mailinglist.models import Message, Subscriber, SubscriberMessage


@shared_task(autoretry_for=(OSError,), retry_backoff=True, retry_backoff_max=600, max_retries=8)
def send_confirmation_email_to_subscriber(subscriber_id):
    subscriber = (
        Subscriber.objects.select_related("mailing_list")
        .filter(pk=subscriber_id, confirmed=False)
        .first()
    )
    if subscriber is not None:
        emails.send_confirmation_email(subscriber)


@shared_task
def build_subscriber_messages_for_message(message_id):
    message = Message.objects.filter(pk=message_id, status=Message.Status.SENDING).first()
    if message is None:
        return
    created = message.fan_out()
    if not message.finish_if_done():
        batches = math.ceil(created / settings.MAIL_APE_BATCH_SIZE)
        message.queue_delivery(workers=max(1, min(settings.MAIL_APE_DELIVERY_PARALLELISM, batches)))


@shared_task(ignore_result=True)
def send_subscriber_messages(message_id):
    message = Message.objects.select_related("mailing_list").filter(pk=message_id).first()
    if message is None:
        return
    deadline = time.monotonic() + settings.MAIL_APE_DELIVERY_TASK_SECONDS
    if message.deliver(deadline):
        message.queue_delivery()


@shared_task(ignore_result=True)
def requeue_stalled_deliveries():
    """Pick up what a lost task or a dead worker left: the database knows what is owed."""
    fan_out_overdue = timezone.now() - timedelta(seconds=settings.MAIL_APE_SWEEP_SECONDS)
    for message in Message.objects.filter(status=Message.Status.SENDING):
        if message.started is None:
            if message.created < fan_out_overdue:
                build_subscriber_messages_for_message.delay(str(message.pk))
        elif SubscriberMessage.objects.due().filter(message=message).exists():
            message.queue_delivery()
        else:
            message.finish_if_done()
