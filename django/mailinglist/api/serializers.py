import uuid

from django.core.exceptions import ValidationError as ModelValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.reverse import reverse

from mailinglist import reputation
from mailinglist.api.fields import (
    AddressListField,
    CustomFieldsField,
    SingleLineValidator,
    StateField,
    StrictBooleanField,
    StrictCharField,
    StrictEmailField,
)
from mailinglist.api.reputation import FiguresSerializer, figures_with_rates
from mailinglist.delivery.states import MessageState
from mailinglist.merge_tags import validate_merge_tags
from mailinglist.models import (
    SUBSCRIBER_STATUSES,
    MailingList,
    Message,
    Subscriber,
    Suppression,
)
from mailinglist.validators import MAX_TEST_ADDRESSES
from user.models import User

# The book's list shape embeds its subscribers; a list of a million cannot be sent whole.
EMBEDDED_SUBSCRIBERS = 100


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the resource's state."
    default_code = "conflict"


class StrictHyperlinkedModelSerializer(serializers.HyperlinkedModelSerializer):
    serializer_field_mapping = {
        **serializers.HyperlinkedModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.EmailField: StrictEmailField,
        models.BooleanField: StrictBooleanField,
        models.JSONField: CustomFieldsField,
    }


class MailingListSerializer(StrictHyperlinkedModelSerializer):
    """A mailing list; owner is the id of the user who made it and cannot change. The
    fields after subscriber_set are the list's identity in its e-mails and pages, then
    its counts."""

    owner: "serializers.PrimaryKeyRelatedField[User]" = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    subscriber_set = serializers.SerializerMethodField(
        help_text=(
            f"The first {EMBEDDED_SUBSCRIBERS} subscribers by address; the list's "
            "subscribers collection has them all."
        )
    )
    subscriber_count = serializers.SerializerMethodField(
        help_text="Every subscriber: confirmed, unconfirmed and unsubscribed."
    )
    confirmed_count = serializers.SerializerMethodField(
        help_text="Confirmed subscribers: who a message sent now would go to."
    )

    class Meta:
        model = MailingList
        fields = [
            "url",
            "id",
            "name",
            "owner",
            "subscriber_set",
            *MailingList.IDENTITY_FIELDS,
            "subscriber_count",
            "confirmed_count",
        ]
        extra_kwargs = {
            "url": {"view_name": "mailinglist:api-mailing-list-detail"},
            "name": {"validators": [SingleLineValidator()]},
        }

    @extend_schema_field(serializers.ListField(child=serializers.URLField()))
    def get_subscriber_set(self, mailing_list) -> list[str]:
        request = self.context.get("request")
        return [
            reverse("mailinglist:api-subscriber-detail", kwargs={"pk": pk}, request=request)
            for pk in mailing_list.subscriber_set.order_by("email", "pk").values_list(
                "pk", flat=True
            )[:EMBEDDED_SUBSCRIBERS]
        ]

    def _counts(self, mailing_list):
        if not hasattr(mailing_list, "_counts"):
            mailing_list._counts = mailing_list.subscriber_counts()
        return mailing_list._counts

    def get_subscriber_count(self, mailing_list) -> int:
        return self._counts(mailing_list)["total"]

    def get_confirmed_count(self, mailing_list) -> int:
        return self._counts(mailing_list)["confirmed"]


# Any UUID would do: it only marks where a link's key goes.
KEY_PLACEHOLDER = str(uuid.UUID(int=0))


class LinkTemplateMixin:
    """A hyperlink to an object keyed by a UUID, reversed once per request and given
    each object's key: reversing two links for each of a page's hundred subscribers
    took as long as the rest of the page."""

    def get_url(self, obj, view_name, request, format):
        if hasattr(obj, "pk") and obj.pk in (None, ""):
            return None
        made_for = getattr(self, "link_template", None)
        if made_for is None or made_for[0] is not request or made_for[1] != (view_name, format):
            template = self.reverse(
                view_name,
                kwargs={self.lookup_url_kwarg: KEY_PLACEHOLDER},
                request=request,
                format=format,
            )
            made_for = self.link_template = (request, (view_name, format), template)
        return made_for[2].replace(KEY_PLACEHOLDER, str(getattr(obj, self.lookup_field)))


class TemplateHyperlinkedIdentityField(LinkTemplateMixin, serializers.HyperlinkedIdentityField):
    pass


class TemplateHyperlinkedRelatedField(LinkTemplateMixin, serializers.HyperlinkedRelatedField):
    pass


class SubscriberSerializer(StrictHyperlinkedModelSerializer):
    """An address on a list. A new unconfirmed one is sent a confirmation e-mail.

    fields holds the owner's own values (company, city, …) under lower-case names,
    which messages show with merge tags such as {{ fields.company }}.
    """

    status = serializers.ChoiceField(
        choices=SUBSCRIBER_STATUSES,
        read_only=True,
        help_text="confirmed, unconfirmed, unsubscribed (by the person), or bounced (the "
        "address does not exist; it is on your suppression list).",
    )
    serializer_url_field = TemplateHyperlinkedIdentityField
    serializer_related_field = TemplateHyperlinkedRelatedField

    class Meta:
        model = Subscriber
        fields = [
            "url",
            "id",
            "email",
            "confirmed",
            "mailing_list",
            "name",
            "fields",
            "status",
            "created",
        ]
        read_only_fields = ["mailing_list", "created"]
        extra_kwargs = {
            "url": {"view_name": "mailinglist:api-subscriber-detail"},
            "mailing_list": {"view_name": "mailinglist:api-mailing-list-detail"},
            "name": {"validators": [SingleLineValidator()]},
            "fields": {"help_text": "Custom fields: an object of lower-case names and texts."},
        }

    def create(self, validated_data):
        candidate = Subscriber(**validated_data)
        refusal = Suppression.objects.refusal(candidate.mailing_list.owner_id, candidate.email)
        if refusal is not None:
            raise serializers.ValidationError({"email": [refusal]})
        raise_model_constraint_errors(candidate)
        try:
            with transaction.atomic():
                return super().create(validated_data)
        except IntegrityError:
            # Another request added the same address since the check above.
            raise_model_constraint_errors(candidate)
            raise


class ReadOnlyEmailSubscriberSerializer(SubscriberSerializer):
    """An address on a list. Setting confirmed to false unsubscribes it from mail still going out.

    The address itself cannot change: it was confirmed as the person's own.
    """

    class Meta(SubscriberSerializer.Meta):
        read_only_fields = ["email", "mailing_list"]

    def update(self, instance, validated_data):
        changed = [field for field in ("name", "fields") if field in validated_data]
        for field in changed:
            setattr(instance, field, validated_data[field])
        if changed:
            instance.save(update_fields=changed)
        confirmed = validated_data.get("confirmed", instance.confirmed)
        if confirmed and not instance.confirmed:
            instance.confirm()
        elif not confirmed and instance.confirmed:
            instance.unsubscribe()
        return instance


def add_subscribers(request, mailing_list, items):
    """Add items to mailing_list by the single POST's rules; one result per item, in order.

    An item with invalid fields refuses the whole array (400, keyed by the item's
    index); an address already on the list, or earlier in the array, refuses only
    its item. Addresses are checked against the list in one query.
    """
    context = {"request": request}
    checked = [SubscriberSerializer(data=item, context=context) for item in items]
    invalid = {
        str(index): [
            f"{field}: {message}"
            for field, messages in serializer.errors.items()
            for message in messages
        ]
        for index, serializer in enumerate(checked)
        if not serializer.is_valid()
    }
    if invalid:
        raise serializers.ValidationError(invalid)
    addresses = [serializer.validated_data["email"].lower() for serializer in checked]
    taken = {
        subscriber.address for subscriber in mailing_list.subscribers_with_addresses(addresses)
    }
    suppressed = Suppression.objects.reasons_for(mailing_list.owner_id, addresses)
    duplicate = [Subscriber._meta.constraints[0].violation_error_message]
    results: list[dict] = []
    new = []
    for serializer, address in zip(checked, addresses, strict=True):
        if address in suppressed:
            refusal = Suppression.objects.refusal(mailing_list.owner_id, address)
            results.append({"status": 400, "errors": {"email": [refusal]}})
            continue
        if address in taken:
            results.append({"status": 400, "errors": {"email": duplicate}})
            continue
        taken.add(address)
        subscriber = Subscriber(mailing_list=mailing_list, **serializer.validated_data)
        new.append(subscriber)
        results.append({"status": 201, "subscriber": subscriber})
    with transaction.atomic():
        Subscriber.objects.bulk_create(new)
        for subscriber in new:
            if not subscriber.confirmed:
                subscriber.request_confirmation()
    return [
        {**result, "subscriber": SubscriberSerializer(result["subscriber"], context=context).data}
        if "subscriber" in result
        else result
        for result in results
    ]


def raise_model_constraint_errors(subscriber):
    """Answer the model's own uniqueness rule as an error on the e-mail field."""
    try:
        subscriber.validate_constraints()
    except ModelValidationError as error:
        raise serializers.ValidationError({"email": error.messages}) from error


class MessageSerializer(StrictHyperlinkedModelSerializer):
    """A Markdown message to every confirmed subscriber of its list.

    A new message goes out at once (status "sending", the default); with status
    "draft" it waits until it is sent, and with status "scheduled" and a send_at
    time (ISO 8601 with an offset) it goes out then.
    """

    status = StateField(
        states=MessageState.values,
        choices=[MessageState.DRAFT, MessageState.SCHEDULED, MessageState.SENDING],
        required=False,
        help_text="On creation: draft, scheduled or sending (the default). Read: any state.",
    )

    class Meta:
        model = Message
        fields = [
            "url",
            "id",
            "mailing_list",
            "subject",
            "body",
            "status",
            "created",
            "started",
            "finished",
            "send_at",
            "queued",
        ]
        read_only_fields = ["mailing_list", "queued"]
        extra_kwargs = {
            "url": {"view_name": "mailinglist:api-message-detail"},
            "mailing_list": {"view_name": "mailinglist:api-mailing-list-detail"},
            "subject": {"validators": [SingleLineValidator(), validate_merge_tags]},
            # Markdown: leading indentation is a code block, so it must survive.
            "body": {"trim_whitespace": False},
            "send_at": {"help_text": "When a scheduled message goes out (ISO 8601)."},
        }

    def validate(self, attrs):
        status = attrs.get("status", self.instance.status if self.instance else None)
        send_at = attrs.get("send_at")
        if send_at is not None and send_at <= timezone.now():
            raise serializers.ValidationError({"send_at": [_("Choose a time in the future.")]})
        if (
            status == MessageState.SCHEDULED
            and send_at is None
            and not (self.instance and self.instance.send_at)
        ):
            raise serializers.ValidationError({"send_at": [_("A scheduled message needs one.")]})
        if send_at is not None and status != MessageState.SCHEDULED:
            raise serializers.ValidationError(
                {"send_at": [_('Only a message with status "scheduled" has one.')]}
            )
        return attrs


class MessageUpdateSerializer(MessageSerializer):
    """A message that has not gone out: its subject and body can change, it can be
    scheduled or moved (status "scheduled" and send_at), or taken back to a draft."""

    status = StateField(
        states=MessageState.values,
        choices=[MessageState.DRAFT, MessageState.SCHEDULED],
        required=False,
        help_text='Written: "draft" (back from a schedule) or "scheduled". Read: any state.',
    )

    def update(self, message, validated_data):
        if not message.is_editable:
            raise Conflict(_("This message went out, so it can no longer change."))
        if "subject" in validated_data or "body" in validated_data:
            edited = message.edit(
                subject=validated_data.get("subject", message.subject),
                body=validated_data.get("body", message.body),
            )
            if not edited:
                raise Conflict(_("This message went out before the change."))
        status = validated_data.get("status")
        if status == MessageState.DRAFT:
            message.unschedule()
        elif status == MessageState.SCHEDULED or "send_at" in validated_data:
            message.schedule(validated_data.get("send_at", message.send_at))
        return message


class DeliveryCountsSerializer(serializers.Serializer):
    """Copies of the message by state; percent_done counts every copy no longer pending."""

    total = serializers.IntegerField()
    sent = serializers.IntegerField()
    pending = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Unsubscribed before their copy went out.")
    bounced = serializers.IntegerField(help_text="The address does not exist (a hard bounce).")
    suppressed = serializers.IntegerField(help_text="On your suppression list; not sent.")
    percent_done = serializers.IntegerField()


class MessageDetailSerializer(MessageUpdateSerializer):
    """A message with how far its delivery has got, and its bounce and complaint figures.
    pause_reason says why the guardrails paused it, if they did."""

    delivery_counts = DeliveryCountsSerializer(read_only=True)
    figures = serializers.SerializerMethodField()

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "delivery_counts", "figures", "pause_reason"]
        read_only_fields = [*MessageSerializer.Meta.read_only_fields, "pause_reason"]

    @extend_schema_field(FiguresSerializer)
    def get_figures(self, message):
        return figures_with_rates(reputation.message_figures(message.pk))


class SendSerializer(serializers.Serializer):
    """Send a draft now, or, with send_at, schedule it."""

    send_at = serializers.DateTimeField(required=False)

    def validate_send_at(self, send_at):
        if send_at <= timezone.now():
            raise serializers.ValidationError(_("Choose a time in the future."))
        return send_at


class TestSendSerializer(serializers.Serializer):
    """Addresses for a test copy; the owner's own address if none are given."""

    emails = AddressListField(max_length=MAX_TEST_ADDRESSES, required=False)
