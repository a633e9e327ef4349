"""Loaded into the benchmark's Celery worker: the book's design, and a database meter.

The book (chapter 11) fans a message out with one INSERT and one queued task per
subscriber; each task renders the Markdown and both templates for its one
recipient and sends it with send_mail(), that is over a new SMTP connection.
"""

import os
import re
import time

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
# Where the seconds spent in each kind of fan-out statement are added up.
FAN_OUT_SECONDS_KEY = os.environ.get("MAIL_APE_BENCH_FAN_OUT_SECONDS", "")
FAN_OUT_STATEMENTS = {
    # Mail Ape makes delivery rows only in fan_out._make_in_one_statement's
    # INSERT … SELECT, which names the table unquoted; the ORM (the book's design) quotes it.
    "making rows": re.compile(rf"INSERT INTO {SubscriberMessage._meta.db_table}\s"),
    # The first claim starts a message by counting its recipients (fan_out.start_if_new).
    "start": re.compile(rf'COUNT\(\*\) AS "__count" FROM "{Subscriber._meta.db_table}"'),
}


class DatabaseMeter:
    """Counts the statements this worker process sends to the database, and times
    those of the fan-out: the start and the making of delivery rows."""

    def __init__(self):
        self.statements = 0
        self.fan_out_seconds = dict.fromkeys(FAN_OUT_STATEMENTS, 0.0)
        self.redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def __call__(self, execute, sql, params, many, context):
        self.statements += 1
        kind = next(
            (kind for kind, pattern in FAN_OUT_STATEMENTS.items() if pattern.search(sql)), None
        )
        if kind is None:
            return execute(sql, params, many, context)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.fan_out_seconds[kind] += time.perf_counter() - started

    def report(self):
        if self.statements:
            self.redis.incrby(QUERY_COUNTER_KEY, self.statements)
            self.statements = 0
        for kind, seconds in self.fan_out_seconds.items():
            if seconds and FAN_OUT_SECONDS_KEY:
                self.redis.hincrbyfloat(FAN_OUT_SECONDS_KEY, kind, seconds)
                self.fan_out_seconds[kind] = 0.0


database_meter = None


def _meter_statements_on(sender, connection, **kwargs):
    if database_meter is not None and database_meter not in connection.execute_wrappers:
        connection.execute_wrappers.append(database_meter)


@worker_process_init.connect
def _start_metering(**kwargs):
    global database_meter
    if QUERY_COUNTER_KEY:
        database_meter = DatabaseMeter()
        connection_created.connect(_meter_statements_on)
        if connection.connection is not None:
            _meter_statements_on(None, connection)


@task_postrun.connect
def _report_metering(**kwargs):
    if database_meter is not None:
        database_meter.report()


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
