"""What one address has with one owner: the subscriptions that a "manage your
subscription" link shows, and the copy of what Mail Ape stores about the address
that the person may download.

The address is compared in any letter case, as the unique index on subscribers
does; another owner's lists are never part of it.
"""

from collections import defaultdict
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from mailinglist.models import DeliveryEvent, Subscriber, SubscriberMessage, Suppression


def subscriptions_of(subscriber: Subscriber) -> QuerySet[Subscriber]:
    """The subscriber rows of subscriber's address on its owner's lists, itself included."""
    return (
        Subscriber.objects.annotate(address=Lower("email"))
        .filter(
            address=subscriber.email.lower(),
            mailing_list__owner_id=subscriber.mailing_list.owner_id,
        )
        .select_related("mailing_list")
        .order_by("mailing_list__name", "mailing_list__created")
    )


def unsubscribe_from_all(subscriber: Subscriber) -> None:
    for subscription in subscriptions_of(subscriber).filter(unsubscribed__isnull=True):
        subscription.unsubscribe()


def stored_data(subscriber: Subscriber) -> dict[str, Any]:
    """Everything kept about subscriber's address by its owner's lists, ready for JSON."""
    subscriptions = list(subscriptions_of(subscriber))
    deliveries = defaultdict(list)
    for delivery in (
        SubscriberMessage.objects.filter(subscriber__in=subscriptions)
        .select_related("message")
        .order_by("created")
    ):
        deliveries[delivery.subscriber_id].append(
            {
                "message": delivery.message.subject,
                "state": delivery.status,
                "sent": delivery.sent,
            }
        )
    events = defaultdict(list)
    for event in (
        DeliveryEvent.objects.filter(subscriber__in=subscriptions)
        .select_related("message")
        .order_by("created")
    ):
        events[event.subscriber_id].append(
            {
                "kind": event.kind,
                "message": event.message.subject,
                "source": event.source,
                "description": event.description,
                "time": event.created,
            }
        )
    suppression = Suppression.objects.with_address(
        subscriber.mailing_list.owner_id, subscriber.email
    ).first()
    return {
        "email": subscriber.email,
        "made": timezone.now(),
        "subscriptions": [
            {
                "list": subscription.mailing_list.name,
                "email": subscription.email,
                "name": subscription.name,
                "fields": subscription.fields,
                "status": subscription.status,
                "confirmed": subscription.confirmed,
                "created": subscription.created,
                "unsubscribed": subscription.unsubscribed,
                "bounced": subscription.bounced,
                "deliveries": deliveries[subscription.pk],
                "delivery_events": events[subscription.pk],
            }
            for subscription in subscriptions
        ],
        "suppression": {
            "email": suppression.email,
            "reason": suppression.reason,
            "source": suppression.source,
            "created": suppression.created,
        }
        if suppression
        else None,
    }
