import factory

from mailinglist.delivery import outcomes
from mailinglist.delivery.claims import claim_batch
from mailinglist.models import MailingList, Message, Subscriber
from user.tests.factories import UserFactory


class MailingListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MailingList

    name = factory.Sequence(lambda n: f"Ape news {n}")
    owner = factory.SubFactory(UserFactory)


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"reader{n}@example.com")
    mailing_list = factory.SubFactory(MailingListFactory)
    confirmed = True


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    mailing_list = factory.SubFactory(MailingListFactory)
    subject = factory.Sequence(lambda n: f"Issue {n}")
    body = "# Hello\n\nBananas are **in season**."


class DraftFactory(MessageFactory):
    status = Message.Status.DRAFT


def pending_deliveries_for(message):
    """Give every recipient of message a pending delivery row: claimed, and handed back untried."""
    outcomes.release(claim_batch(message, 100_000, lease_seconds=60))
