"""Importing a CSV file of subscribers through the API: a job to start, then to watch."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse

from mailinglist.api.fields import StateField
from mailinglist.imports import running
from mailinglist.imports.states import ImportState
from mailinglist.imports.views import rejections_csv
from mailinglist.models import MailingList, SubscriberImport


class ImportCountsSerializer(serializers.Serializer):
    """What became of the file's data rows so far."""

    rows = serializers.IntegerField(help_text="Data rows read (blank lines are not counted).")
    added = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="Already on the list: name and fields merged.")
    duplicates = serializers.IntegerField(help_text="An address seen earlier in the file.")
    invalid = serializers.IntegerField()
    suppressed = serializers.IntegerField(
        help_text="Unsubscribed from the list, so not subscribed again."
    )


class SubscriberImportSerializer(serializers.ModelSerializer):
    """An import job. errors_url is a CSV of the rows that were not imported, with why."""

    url = serializers.HyperlinkedIdentityField(view_name="mailinglist:api-subscriber-import")
    mailing_list: "serializers.HyperlinkedRelatedField[MailingList]" = (
        serializers.HyperlinkedRelatedField(
            view_name="mailinglist:api-mailing-list-detail", read_only=True
        )
    )
    status = StateField(states=ImportState.values, choices=ImportState.values, read_only=True)
    counts = ImportCountsSerializer(read_only=True)
    errors_url = serializers.SerializerMethodField()

    class Meta:
        model = SubscriberImport
        fields = [
            "url",
            "id",
            "mailing_list",
            "status",
            "subscriber_status",
            "file_name",
            "counts",
            "errors_url",
            "error",
            "created",
            "started",
            "finished",
        ]
        read_only_fields = fields

    def get_errors_url(self, subscriber_import) -> str:
        return reverse(
            "mailinglist:api-subscriber-import-errors",
            kwargs={"pk": subscriber_import.pk},
            request=self.context.get("request"),
        )


class SubscriberImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A CSV file with a header row naming an e-mail column.")
    status = serializers.ChoiceField(
        choices=SubscriberImport.SubscriberStatus.choices,
        help_text=(
            "confirmed: you state that these people agreed elsewhere, and no e-mail is sent; "
            "unconfirmed: each new address is sent a confirmation e-mail."
        ),
    )

    def validate_file(self, upload):
        if upload.size > settings.MAIL_APE_IMPORT_MAX_BYTES:
            raise serializers.ValidationError(
                _("The file is %(size)s; Mail Ape imports files of up to %(limit)s.")
                % {
                    "size": filesizeformat(upload.size),
                    "limit": filesizeformat(settings.MAIL_APE_IMPORT_MAX_BYTES),
                }
            )
        return upload


class SubscriberImportCreateView(generics.GenericAPIView):
    """Import a CSV file of subscribers into the list (multipart: file, status).

    Answers 202 with the job's url; follow it to see the job's status and counts.
    An address already on the list is updated (name and fields merged), never
    doubled; one that unsubscribed is not subscribed again.
    """

    parser_classes = [MultiPartParser]
    serializer_class = SubscriberImportRequestSerializer

    @extend_schema(responses={202: SubscriberImportSerializer})
    def post(self, request, mailing_list_pk):
        mailing_list = get_object_or_404(
            MailingList.objects.usable_by(request.user), pk=mailing_list_pk
        )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscriber_import = running.receive(
            mailing_list,
            serializer.validated_data["file"],
            serializer.validated_data["status"],
            preview=False,
        )
        return Response(
            SubscriberImportSerializer(subscriber_import, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
        )


class OwnedImportMixin:
    def get_queryset(self):
        return SubscriberImport.objects.usable_by(self.request.user)


class SubscriberImportDetailView(OwnedImportMixin, generics.RetrieveAPIView):
    """An import job: queued, running, finished or failed, with its counts so far."""

    serializer_class = SubscriberImportSerializer


class SubscriberImportErrorsView(OwnedImportMixin, generics.GenericAPIView):
    """The rows of the file that were not imported, as CSV: line, reason, then the row."""

    serializer_class = SubscriberImportSerializer

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, pk):
        return rejections_csv(self.get_object())
