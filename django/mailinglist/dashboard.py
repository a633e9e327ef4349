"""What the owner's list index shows about each list: its confirmed subscribers, how that
number moved over the last month, and how the last message that went out fared."""

import datetime
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from mailinglist import reputation
from mailinglist.models import MailingList, Message

GROWTH_DAYS = 30
# Counting a month of arrivals and departures reads every row of a long list, so each
# list's series is kept for a few minutes.
GROWTH_CACHE_SECONDS = 300


@dataclass(frozen=True)
class ListSummary:
    mailing_list: MailingList
    confirmed: int
    confirmed_exact: bool
    growth: list[int]
    last_message: Message | None
    last_message_figures: dict[str, int] | None


def summarise(mailing_list: MailingList) -> ListSummary:
    confirmed, exact = mailing_list.subscriber_set.with_status("confirmed").count_quickly()
    last_message = (
        mailing_list.message_set.exclude(queued=None)
        .order_by("-queued")
        .only("pk", "subject", "status", "queued", "mailing_list_id")
    ).first()
    return ListSummary(
        mailing_list=mailing_list,
        confirmed=confirmed,
        confirmed_exact=exact,
        growth=confirmed_by_day(mailing_list, confirmed),
        last_message=last_message,
        last_message_figures=(
            reputation.message_figures(last_message.pk) if last_message else None
        ),
    )


def confirmed_by_day(mailing_list: MailingList, confirmed_now: int) -> list[int]:
    """The list's confirmed subscribers at the end of each of the last GROWTH_DAYS days
    (today last, in the active time zone), worked back from confirmed_now.

    Nothing records when a subscriber confirmed or stopped being confirmed, so a day's
    arrivals are the people who subscribed that day and confirmed (or have since left),
    and its departures those who unsubscribed or bounced for good that day."""
    today = timezone.localdate()
    key = f"mailinglist:growth:{mailing_list.pk}:{today.isoformat()}:{confirmed_now}"
    series = cache.get(key)
    if series is None:
        series = _confirmed_by_day(mailing_list, confirmed_now, today)
        cache.set(key, series, GROWTH_CACHE_SECONDS)
    return series


def _confirmed_by_day(
    mailing_list: MailingList, confirmed_now: int, today: datetime.date
) -> list[int]:
    first_day = today - datetime.timedelta(days=GROWTH_DAYS - 1)
    start = datetime.datetime.combine(first_day, datetime.time(), timezone.get_current_timezone())
    subscribers = mailing_list.subscriber_set.order_by()
    arrivals = _per_day(
        subscribers.filter(created__gte=start).filter(
            Q(confirmed=True) | Q(unsubscribed__isnull=False) | Q(bounced__isnull=False)
        ),
        "created",
    )
    departures = _per_day(subscribers.filter(unsubscribed__gte=start), "unsubscribed")
    for day, count in _per_day(subscribers.filter(bounced__gte=start), "bounced").items():
        departures[day] = departures.get(day, 0) + count
    series = [confirmed_now]
    for offset in range(GROWTH_DAYS - 1):
        day = today - datetime.timedelta(days=offset)
        series.append(series[-1] - arrivals.get(day, 0) + departures.get(day, 0))
    return [max(count, 0) for count in reversed(series)]


def _per_day(subscribers, field: str) -> dict[datetime.date, int]:
    rows = (
        subscribers.annotate(day=TruncDate(field, tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(count=Count("pk"))
    )
    return {row["day"]: row["count"] for row in rows}
