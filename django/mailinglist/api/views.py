"""Every queryset comes from the models' usable_by(), so others' objects answer 404."""

from functools import cached_property

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny

from mailinglist.api.serializers import (
    MailingListSerializer,
    MessageDetailSerializer,
    MessageSerializer,
    ReadOnlyEmailSubscriberSerializer,
    SubscriberSerializer,
)
from mailinglist.models import MailingList, Message, Subscriber


def mailing_lists_for(user):
    return (
        MailingList.objects.usable_by(user)
        .order_by("-created", "pk")
        .prefetch_related(
            Prefetch("subscriber_set", queryset=Subscriber.objects.only("pk", "mailing_list"))
        )
    )


class MailingListCreateListView(generics.ListCreateAPIView):
    """Your mailing lists, newest first; POST {"name": …} makes a new one."""

    serializer_class = MailingListSerializer

    def get_queryset(self):
        return mailing_lists_for(self.request.user)

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)


class MailingListRetrieveUpdateDestroyView(generics.RetrieveUpdateDestroyAPIView):
    """One of your mailing lists; DELETE removes it with its subscribers and messages."""

    serializer_class = MailingListSerializer

    def get_queryset(self):
        return mailing_lists_for(self.request.user)


# A docstring here would become every child view's description in the schema.
class MailingListChildrenMixin:
    @cached_property
    def mailing_list(self):
        return get_object_or_404(
            MailingList.objects.usable_by(self.request.user), pk=self.kwargs["mailing_list_pk"]
        )

    def perform_create(self, serializer):
        serializer.save(mailing_list=self.mailing_list)


class SubscriberListCreateView(MailingListChildrenMixin, generics.ListCreateAPIView):
    """The list's subscribers by address.

    POST {"email": …} adds an unconfirmed subscriber and e-mails them a confirmation link;
    add "confirmed": true for someone who has already agreed elsewhere (no e-mail is sent).
    An address already on the list, in any letter case, is refused with 400.
    """

    serializer_class = SubscriberSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscriber.objects.none()
        return (
            Subscriber.objects.usable_by(self.request.user)
            .filter(mailing_list=self.mailing_list)
            .order_by("email", "pk")
        )


class SubscriberRetrieveUpdateDestroyView(generics.RetrieveUpdateDestroyAPIView):
    """One subscriber of one of your lists; only confirmed can change."""

    serializer_class = ReadOnlyEmailSubscriberSerializer

    def get_queryset(self):
        return Subscriber.objects.usable_by(self.request.user)


class MessageListCreateView(MailingListChildrenMixin, generics.ListCreateAPIView):
    """The list's messages, newest first.

    POST {"subject": …, "body": …} (body in Markdown) sends a new message to every
    confirmed subscriber in the background; follow its url to watch the delivery.
    """

    serializer_class = MessageSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        return (
            Message.objects.usable_by(self.request.user)
            .filter(mailing_list=self.mailing_list)
            .order_by("-created", "pk")
        )


class MessageRetrieveView(generics.RetrieveAPIView):
    """One message with its delivery counts, status and start and finish times."""

    serializer_class = MessageDetailSerializer

    def get_queryset(self):
        return Message.objects.usable_by(self.request.user)


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@permission_classes([AllowAny])
def unknown_api_path(request):
    """A JSON 404 for any other path under the API, such as an id that is not a UUID."""
    raise NotFound
