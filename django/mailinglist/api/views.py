"""Every queryset comes from the models' usable_by(), so others' objects answer 404."""

from functools import cached_property

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from mailinglist import queueing
from mailinglist.api.pagination import SubscriberPagination
from mailinglist.api.schema import MAX_BULK_SUBSCRIBERS
from mailinglist.api.serializers import (
    Conflict,
    MailingListSerializer,
    MessageDetailSerializer,
    MessageSerializer,
    ReadOnlyEmailSubscriberSerializer,
    SendSerializer,
    SubscriberSerializer,
    TestSendSerializer,
    add_subscribers,
)
from mailinglist.export_views import subscribers_csv_response
from mailinglist.models import SUBSCRIBER_STATUSES, MailingList, Message, Subscriber
from mailinglist.throttles import TestSendsPerOwnerThrottle


def mailing_lists_for(user):
    return MailingList.objects.usable_by(user).order_by("-created", "pk")


def status_parameter(request):
    """The ?status= a subscriber collection is filtered by, or None."""
    status_filter = request.query_params.get("status")
    if status_filter is not None and status_filter not in SUBSCRIBER_STATUSES:
        raise ValidationError(
            {
                "status": [
                    _("Use one of %(statuses)s.") % {"statuses": ", ".join(SUBSCRIBER_STATUSES)}
                ]
            }
        )
    return status_filter


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


@extend_schema_view(
    get=extend_schema(
        parameters=[
            OpenApiParameter(
                "status", enum=list(SUBSCRIBER_STATUSES), description="Only this status."
            ),
            OpenApiParameter("search", description="Only addresses holding this, in any case."),
        ]
    ),
    post=extend_schema(
        responses={
            201: SubscriberSerializer,
            200: inline_serializer(
                "BulkSubscriberResult",
                {
                    "status": serializers.IntegerField(help_text="201 if added, 400 if not."),
                    "subscriber": SubscriberSerializer(required=False),
                    "errors": serializers.DictField(required=False),
                },
                many=True,
            ),
        },
    ),
)
class SubscriberListCreateView(MailingListChildrenMixin, generics.ListCreateAPIView):
    """The list's subscribers by address.

    POST {"email": …} adds an unconfirmed subscriber and e-mails them a confirmation link;
    add "confirmed": true for someone who has already agreed elsewhere (no e-mail is sent).
    An address already on the list, in any letter case, is refused with 400.

    POST an array of up to 1,000 such objects to add them all: the answer (200) has one
    result per item, in order: status 201 and the subscriber, or 400 and why (the address
    is on the list already, or earlier in the array). An item with invalid fields refuses
    the whole array with 400, keyed by the item's index.
    """

    serializer_class = SubscriberSerializer
    pagination_class = SubscriberPagination

    @property
    def searched(self):
        """Whether the page is a search, which the pagination counts less far."""
        return bool(self.request.query_params.get("search"))

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscriber.objects.none()
        return (
            Subscriber.objects.usable_by(self.request.user)
            .filter(mailing_list=self.mailing_list)
            .with_status(status_parameter(self.request))
            .search(self.request.query_params.get("search", ""))
            .order_by("email", "pk")
        )

    def create(self, request, *args, **kwargs):
        if not isinstance(request.data, list):
            return super().create(request, *args, **kwargs)
        if not 1 <= len(request.data) <= MAX_BULK_SUBSCRIBERS:
            raise ValidationError(
                {
                    "detail": _("Send from 1 to %(limit)s subscribers at once.")
                    % {"limit": MAX_BULK_SUBSCRIBERS}
                }
            )
        if not all(isinstance(item, dict) for item in request.data):
            raise ValidationError({"detail": _("Each item of the array is a subscriber object.")})
        return Response(add_subscribers(request, self.mailing_list, request.data))


class SubscriberExportView(MailingListChildrenMixin, generics.GenericAPIView):
    """The list's subscribers as CSV (email, name, status, created, confirmed,
    unsubscribed, then one column per custom field), streamed; ?status= filters."""

    serializer_class = SubscriberSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", enum=list(SUBSCRIBER_STATUSES), description="Only this status."
            )
        ],
        responses={(200, "text/csv"): str},
    )
    def get(self, request, mailing_list_pk):
        return subscribers_csv_response(
            self.mailing_list,
            self.mailing_list.subscriber_set.with_status(status_parameter(request)),
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


class MessageRetrieveUpdateView(generics.RetrieveUpdateAPIView):
    """One message with its delivery counts, status and start and finish times.

    PATCH changes a message that has not gone out (its subject, its body, its send_at,
    or status "draft" to take it back from its schedule); one that went out answers 409.
    """

    serializer_class = MessageDetailSerializer

    def get_queryset(self):
        return Message.objects.usable_by(self.request.user).select_related("mailing_list")


class OwnedMessageActionView(generics.GenericAPIView):
    def get_queryset(self):
        return Message.objects.usable_by(self.request.user).select_related("mailing_list")


class SendMessageView(OwnedMessageActionView):
    """Send a draft or scheduled message now to every confirmed subscriber, or, with
    send_at, schedule it. Sending to a list without confirmed subscribers answers 400,
    a message that went out 409."""

    serializer_class = SendSerializer

    @extend_schema(responses={200: MessageDetailSerializer})
    def post(self, request, pk):
        message = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not message.is_editable:
            raise Conflict(_("This message went out already."))
        send_at = serializer.validated_data.get("send_at")
        if send_at is not None:
            message.schedule(send_at)
        elif not message.recipients().exists():
            raise ValidationError(
                {
                    "detail": _(
                        "Nobody would get this message: the list has no confirmed subscribers."
                    )
                }
            )
        elif not message.send():
            raise Conflict(_("This message went out already."))
        return Response(MessageDetailSerializer(message, context={"request": request}).data)


class TestMessageView(OwnedMessageActionView):
    """Send a copy marked [Test] to up to 10 addresses (the owner's own by default),
    built exactly like the real ones. It makes no delivery rows and counts in no figure."""

    serializer_class = TestSendSerializer
    throttle_classes = [UserRateThrottle, TestSendsPerOwnerThrottle]

    @extend_schema(responses={202: TestSendSerializer})
    def post(self, request, pk):
        message = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        addresses = serializer.validated_data.get("emails") or [request.user.email]
        if not all(addresses):
            raise ValidationError({"emails": [_("Your account has no address; name one.")]})
        queueing.after_commit(queueing.SEND_TEST_COPIES, str(message.pk), *addresses)
        return Response({"emails": addresses}, status=status.HTTP_202_ACCEPTED)


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@permission_classes([AllowAny])
def unknown_api_path(request):
    """A JSON 404 for any other path under the API, such as an id that is not a UUID."""
    raise NotFound
