from django.core.exceptions import ValidationError as ModelValidationError
from django.db import IntegrityError, models, transaction
from rest_framework import serializers

from mailinglist.api.fields import (
    SingleLineValidator,
    StrictBooleanField,
    StrictCharField,
    StrictEmailField,
)
from mailinglist.models import MailingList, Message, Subscriber
from user.models import User


class StrictHyperlinkedModelSerializer(serializers.HyperlinkedModelSerializer):
    serializer_field_mapping = {
        **serializers.HyperlinkedModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.EmailField: StrictEmailField,
        models.BooleanField: StrictBooleanField,
    }


class MailingListSerializer(StrictHyperlinkedModelSerializer):
    """A mailing list; owner is the id of the user who made it and cannot change."""

    owner: "serializers.PrimaryKeyRelatedField[User]" = serializers.PrimaryKeyRelatedField(
        read_only=True
    )

    class Meta:
        model = MailingList
        fields = ["url", "id", "name", "owner", "subscriber_set"]
        read_only_fields = ["subscriber_set"]
        extra_kwargs = {
            "url": {"view_name": "mailinglist:api-mailing-list-detail"},
            "subscriber_set": {"view_name": "mailinglist:api-subscriber-detail"},
            "name": {"validators": [SingleLineValidator()]},
        }


class SubscriberSerializer(StrictHyperlinkedModelSerializer):
    """An address on a list. A new unconfirmed one is sent a confirmation e-mail."""

    class Meta:
        model = Subscriber
        fields = ["url", "id", "email", "confirmed", "mailing_list"]
        read_only_fields = ["mailing_list"]
        extra_kwargs = {
            "url": {"view_name": "mailinglist:api-subscriber-detail"},
            "mailing_list": {"view_name": "mailinglist:api-mailing-list-detail"},
        }

    def create(self, validated_data):
        candidate = Subscriber(**validated_data)
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
        confirmed = validated_data.get("confirmed", instance.confirmed)
        if confirmed and not instance.confirmed:
            instance.confirm()
        elif not confirmed and instance.confirmed:
            instance.unsubscribe()
        return instance


def raise_model_constraint_errors(subscriber):
    """Answer the model's own uniqueness rule as an error on the e-mail field."""
    try:
        subscriber.validate_constraints()
    except ModelValidationError as error:
        raise serializers.ValidationError({"email": error.messages}) from error


class MessageSerializer(StrictHyperlinkedModelSerializer):
    """A Markdown message to every confirmed subscriber of its list."""

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
        ]
        read_only_fields = ["mailing_list"]
        extra_kwargs = {
            "url": {"view_name": "mailinglist:api-message-detail"},
            "mailing_list": {"view_name": "mailinglist:api-mailing-list-detail"},
            "subject": {"validators": [SingleLineValidator()]},
            # Markdown: leading indentation is a code block, so it must survive.
            "body": {"trim_whitespace": False},
        }


class DeliveryCountsSerializer(serializers.Serializer):
    """Copies of the message by state; percent_done counts every copy no longer pending."""

    total = serializers.IntegerField()
    sent = serializers.IntegerField()
    pending = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Unsubscribed before their copy went out.")
    percent_done = serializers.IntegerField()


class MessageDetailSerializer(MessageSerializer):
    """A message with how far its delivery has got."""

    delivery_counts = DeliveryCountsSerializer(read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "delivery_counts"]
