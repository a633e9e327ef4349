"""Delivery rows, made a slice of the list at a time inside the claims.

There is no fan-out step to wait for: the first claim of a message starts it by
cutting its recipients' id space into about one slice per batch (ids are random,
so each slice holds about a batch), and each claim that finds too few due rows
makes, already claimed, the rows of the next slice. A slice is read through the
(mailing_list, id) index, so making it costs the same on any size of list.
"""

import logging
import math
import uuid
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet, Value
from django.db.models.functions import Coalesce

from mailinglist.delivery.states import DeliveryTransition
from mailinglist.models import Message, Subscriber, SubscriberMessage, Suppression

logger = logging.getLogger(__name__)

# A row is made already claimed, with its first attempt counted:
# (row id, subscriber id, subscriber's address).
MadeRow = tuple[uuid.UUID, uuid.UUID, str]
CLAIMED = DeliveryTransition.CLAIM.target
SUPPRESSED = DeliveryTransition.SUPPRESS.target


def suppressed_sql(subscriber: str, owner: str) -> str:
    """SQL that is true when the address of the subscriber row aliased subscriber is on
    the suppression list of owner (a placeholder), read through its unique index."""
    return (
        f"EXISTS (SELECT 1 FROM {Suppression._meta.db_table} sp "  # noqa: S608
        f"WHERE lower(sp.email) = lower({subscriber}.email) AND sp.owner_id = {owner})"
    )


def start_if_new(message: Message, now: datetime) -> None:
    """Mark the message started and cut its recipients into slices, the first time only.

    Called by the claim that holds the message row's lock, so it runs once.
    """
    if message.fan_out_slices is not None:
        return
    recipients = message.recipients().count()
    message.fan_out_slices = max(1, math.ceil(recipients / settings.MAIL_APE_BATCH_SIZE))
    Message.objects.filter(pk=message.pk, fan_out_slices__isnull=True).update(
        started=Coalesce("started", Value(now)), fan_out_slices=message.fan_out_slices
    )
    logger.info(
        "Message %s started: %d recipients in %d slices",
        message.pk,
        recipients,
        message.fan_out_slices,
    )


def make_rows_for_next_slice(
    message: Message, now: datetime, lease_until: datetime
) -> list[MadeRow]:
    """Make delivery rows, claimed and leased until lease_until, for the message's next slice.

    Called by a claim while it holds the message row's lock, so that two claims
    never make the same slice. An empty slice is passed over, and the message is
    fanned out after the last. A recipient who has a row already (from a run
    interrupted before its slice was counted done) is left to be claimed as a
    due row.
    """
    message.refresh_from_db(fields=["fan_out_slices", "fan_out_slices_done", "fanned_out"])
    if message.fanned_out is not None:
        return []
    start_if_new(message, now)
    make = _make_in_one_statement if connection.vendor == "postgresql" else _make_with_orm
    made: list[MadeRow] = []
    slices = message.fan_out_slices or 1
    while not made and message.fan_out_slices_done < slices:
        recipients = message.recipients_in_slice(message.fan_out_slices_done)
        made = make(message, recipients, now, lease_until)
        message.fan_out_slices_done += 1
    if message.fan_out_slices_done >= slices:
        message.fanned_out = now
    Message.objects.filter(pk=message.pk).update(
        fan_out_slices_done=message.fan_out_slices_done, fanned_out=message.fanned_out
    )
    return made


def _make_in_one_statement(
    message: Message, recipients: QuerySet[Subscriber], now: datetime, lease_until: datetime
) -> list[MadeRow]:
    recipients_sql, recipients_params = (
        recipients.order_by().values("id", "email").query.sql_with_params()
    )
    # Only the ORM's own SQL and SQL made from model metadata are interpolated;
    # values are parameters.
    sql = f"""
        WITH made AS (
            INSERT INTO {SubscriberMessage._meta.db_table}
                (id, message_id, subscriber_id, created, status, attempts, last_error,
                 available_at, last_attempt)
            SELECT gen_random_uuid(), %s, s.id, %s,
                   CASE WHEN suppressed THEN %s ELSE %s END,
                   CASE WHEN suppressed THEN 0 ELSE 1 END, '',
                   CASE WHEN suppressed THEN NULL ELSE %s END,
                   CASE WHEN suppressed THEN NULL ELSE %s END
            FROM ({recipients_sql}) s,
                 LATERAL (SELECT {suppressed_sql("s", "%s")} AS suppressed) verdict
            ON CONFLICT (message_id, subscriber_id) DO NOTHING
            RETURNING id, subscriber_id, status
        )
        SELECT made.id, s.id, s.email
        FROM made JOIN {Subscriber._meta.db_table} s ON s.id = made.subscriber_id
        WHERE made.status = %s
    """  # noqa: S608
    params = [
        message.pk,
        now,
        SUPPRESSED,
        CLAIMED,
        lease_until,
        now,
        *recipients_params,
        message.mailing_list.owner_id,
        CLAIMED,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _make_with_orm(
    message: Message, recipients: QuerySet[Subscriber], now: datetime, lease_until: datetime
) -> list[MadeRow]:
    emails = dict(recipients.values_list("id", "email"))
    have_row = set(
        SubscriberMessage.objects.filter(message=message, subscriber_id__in=emails).values_list(
            "subscriber_id", flat=True
        )
    )
    suppressed = Suppression.objects.reasons_for(
        message.mailing_list.owner_id, {email.lower() for email in emails.values()}
    )
    rows = SubscriberMessage.objects.bulk_create(
        SubscriberMessage(
            message=message,
            subscriber_id=subscriber_id,
            created=now,
            status=SUPPRESSED,
            attempts=0,
        )
        if email.lower() in suppressed
        else SubscriberMessage(
            message=message,
            subscriber_id=subscriber_id,
            created=now,
            status=CLAIMED,
            attempts=1,
            available_at=lease_until,
            last_attempt=now,
        )
        for subscriber_id, email in emails.items()
        if subscriber_id not in have_row
    )
    return [
        (row.pk, row.subscriber_id, emails[row.subscriber_id])
        for row in rows
        if row.status == CLAIMED
    ]
