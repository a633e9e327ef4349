"""A message's delivery over time, for the chart on its page: how many copies reached
each outcome in each second (or minute, or hour) since it started going out."""

import datetime
from typing import TypedDict

from django.db.models import Count
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from mailinglist.delivery.states import DeliveryState
from mailinglist.models import Message

OUTCOMES = (DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.BOUNCED)
UNITS = (("second", 1), ("minute", 60), ("hour", 3600))
# A unit serves spans up to this many of it, so that the chart has a few hundred points.
MOST_BUCKETS = 900


class Timeline(TypedDict):
    unit_seconds: int
    # Each point: the start of its bucket (Unix seconds), then copies sent, failed, bounced.
    points: list[list[int]]


def delivery_timeline(message: Message) -> Timeline:
    if message.started is None:
        return {"unit_seconds": 1, "points": []}
    span = (message.finished or timezone.now()) - message.started
    unit, unit_seconds = _unit_for(span)
    rows = (
        message.subscribermessage_set.order_by()
        .filter(status__in=OUTCOMES)
        .annotate(bucket=Trunc(Coalesce("sent", "last_attempt"), unit))
        .values("bucket", "status")
        .annotate(copies=Count("pk"))
    )
    by_bucket: dict[int, list[int]] = {}
    for row in rows:
        if row["bucket"] is None:
            continue
        point = by_bucket.setdefault(int(row["bucket"].timestamp()), [0, 0, 0])
        point[OUTCOMES.index(row["status"])] += row["copies"]
    # Every bucket from the first outcome to the last, so that a pause shows as a gap.
    starts = range(min(by_bucket), max(by_bucket) + unit_seconds, unit_seconds) if by_bucket else []
    return {
        "unit_seconds": unit_seconds,
        "points": [[start, *by_bucket.get(start, (0, 0, 0))] for start in starts],
    }


def _unit_for(span: datetime.timedelta) -> tuple[str, int]:
    for unit, seconds in UNITS[:-1]:
        if span.total_seconds() <= seconds * MOST_BUCKETS:
            return unit, seconds
    return UNITS[-1]
