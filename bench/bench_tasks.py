"""Loaded into the benchmark's Celery worker: the book's design, and a query counter.

The book (chapter 11) fans a message out with one INSERT and one queued task per
subscriber; each task renders the Markdown and both templates for its one
recipient and sends it with send_mail(), that is over a new SMTP connection.
"""

import os

import redis
from celery import shared_task
from celery.signals import task_postrun, worker_process_init
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection
from django.db.backends.signals import connection_created
from django.template.loader import render_to_string
from django.utils import timezone

from mailinglist.emails import EmailTemplateContext
from mailinglist.markdown import render_markdown
from mailinglist.models import Message, Subscriber, SubscriberMessage

QUERY_COUNTER_KEY = os.environ.get("MAIL_APE_BENCH_QUERY_COUNTER", "")


class QueryCounter:
    """Counts the statements this worker process sends to the database."""

    def __init__(self):
        self.unreported = 0
        self.redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def __call__(self, execute, sql, params, many, context):
        self.unreported += 1
        return execute(sql, params, many, context)

    def report(self):
        if self.unreported:
            self.redis.incrby(QUERY_COUNTER_KEY, self.unreported)
            self.unreported = 0


query_counter = None


def _count_queries_on(sender, connection, **kwargs):
    if query_counter is not None and query_counter not in connection.execute_wrappers:
        connection.execute_wrappers.append(query_counter)


@worker_process_init.connect
def _start_counting_queries(**kwargs):
    global query_counter
    if QUERY_COUNTER_KEY:
        query_counter = QueryCounter()
        connection_created.connect(_count_queries_on)
        if connection.connection is not None:
            _count_queries_on(None, connection)


@task_postrun.connect
def _report_queries(**kwargs):
    if query_counter is not None:
        query_counter.report()


@shared_task
def book_create_subscriber_messages(message_id):
    message = Message.objects.get(pk=message_id)
    for subscriber in Subscriber.objects.confirmed_subscribers_for_mailing_list(
        message.mailing_list
    ):
        subscriber_message = SubscriberMessage.objects.create(
            message=message, subscriber=subscriber
        )
        book_send_subscriber_message.delay(str(subscriber_message.pk))


@shared_task
def book_send_subscriber_message(subscriber_message_id):
    subscriber_message = SubscriberMessage.objects.get(pk=subscriber_message_id)
    message = subscriber_message.message
    context = EmailTemplateContext(
        subscriber_message.subscriber, message=message, body_html=render_markdown(message.body)
    )
    subscriber_message.last_attempt = timezone.now()
    subscriber_message.save()
    send_mail(
        subject=message.subject,
        message=render_to_string("mailinglist/email/message-body.txt", context),
        from_email=settings.MAIL_APE_FROM_EMAIL,
        recipient_list=[subscriber_message.subscriber.email],
        html_message=render_to_string("mailinglist/email/message-body.html", context),
    )
    subscriber_message.sent = timezone.now()
    subscriber_message.save()
