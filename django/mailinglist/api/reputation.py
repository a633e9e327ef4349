"""The API of the sender's reputation: the owner's suppression list and a list's figures."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from mailinglist import reputation
from mailinglist.models import MailingList, Suppression
from mailinglist.reputation_views import suppressions_csv_response


class SuppressionSerializer(serializers.HyperlinkedModelSerializer):
    """An address none of your lists sends to. POST {"email": …} adds one by hand
    (reason "manual"); DELETE on its url lets mail reach it again."""

    class Meta:
        model = Suppression
        fields = ["url", "id", "email", "reason", "source", "created"]
        read_only_fields = ["reason", "source", "created"]
        extra_kwargs = {"url": {"view_name": "mailinglist:api-suppression-detail"}}

    def validate_email(self, email):
        owner = self.context["request"].user
        if Suppression.objects.with_address(owner.pk, email).exists():
            raise serializers.ValidationError(
                Suppression._meta.constraints[0].violation_error_message
            )
        return email

    def create(self, validated_data):
        owner = self.context["request"].user
        Suppression.suppress(
            owner.pk, validated_data["email"], Suppression.Reason.MANUAL, "added through the API"
        )
        return Suppression.objects.with_address(owner.pk, validated_data["email"]).get()


class FiguresSerializer(serializers.Serializer):
    """Copies attempted, and of them delivered, bounced, complained about, and followed
    by their recipient unsubscribing, each with its share of the attempted copies;
    suppressed copies were not sent."""

    attempted = serializers.IntegerField()
    delivered = serializers.IntegerField()
    hard_bounced = serializers.IntegerField()
    soft_bounced = serializers.IntegerField()
    complained = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()
    suppressed = serializers.IntegerField()
    delivered_rate = serializers.FloatField(allow_null=True)
    hard_bounced_rate = serializers.FloatField(allow_null=True)
    soft_bounced_rate = serializers.FloatField(allow_null=True)
    complained_rate = serializers.FloatField(allow_null=True)
    unsubscribed_rate = serializers.FloatField(allow_null=True)


def figures_with_rates(figures):
    return figures | {
        f"{each['name']}_rate": each["rate"] for each in reputation.with_rates(figures)
    }


class SuppressionListCreateView(generics.ListCreateAPIView):
    """Your suppression list, by address; ?search= finds any part of an address."""

    serializer_class = SuppressionSerializer

    def get_queryset(self):
        return (
            Suppression.objects.usable_by(self.request.user)
            .search(self.request.query_params.get("search", ""))
            .order_by("email", "pk")
        )

    @extend_schema(
        parameters=[OpenApiParameter("search", description="Part of an address, any case.")]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SuppressionRetrieveDestroyView(generics.RetrieveDestroyAPIView):
    """One suppressed address; DELETE lets mail reach it again."""

    serializer_class = SuppressionSerializer

    def get_queryset(self):
        return Suppression.objects.usable_by(self.request.user)


class SuppressionExportView(generics.GenericAPIView):
    """Your suppression list as CSV: email, reason, source, created."""

    serializer_class = SuppressionSerializer

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request):
        return suppressions_csv_response(Suppression.objects.usable_by(request.user))


class MailingListFiguresView(generics.GenericAPIView):
    """Delivery, bounce, complaint and unsubscribe figures over every message of the list."""

    serializer_class = FiguresSerializer

    def get(self, request, pk):
        mailing_list = get_object_or_404(MailingList.objects.usable_by(request.user), pk=pk)
        figures = figures_with_rates(reputation.list_figures(mailing_list.pk))
        return Response(self.get_serializer(figures).data)
