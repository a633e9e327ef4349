"""The owner's import pages: upload, preview, progress, and the rows that were turned away."""

import csv

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import DetailView, FormView
from django.views.generic.detail import SingleObjectMixin

from mailinglist.exporting import Echo, safe_cell
from mailinglist.imports import running
from mailinglist.imports.forms import SubscriberImportForm
from mailinglist.imports.states import ImportState
from mailinglist.models import MailingList, SubscriberImport

# The states in which the page shows the counts, which stop moving once it finishes.
SHOWS_COUNTS = (ImportState.QUEUED, ImportState.RUNNING, ImportState.FINISHED)


class ImportSubscribersView(LoginRequiredMixin, FormView):
    form_class = SubscriberImportForm
    template_name = "mailinglist/import_form.html"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.mailing_list = get_object_or_404(
            MailingList.objects.usable_by(request.user), pk=kwargs["pk"]
        )
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            mailing_list=self.mailing_list,
            recent_imports=self.mailing_list.subscriberimport_set.all()[:5],
            **kwargs,
        )

    def form_valid(self, form):
        subscriber_import = running.receive(
            self.mailing_list,
            form.cleaned_data["file"],
            form.cleaned_data["status"],
            preview=True,
        )
        return redirect(subscriber_import)


class OwnedImportMixin(LoginRequiredMixin):
    def get_queryset(self):
        return SubscriberImport.objects.usable_by(self.request.user).select_related("mailing_list")


class SubscriberImportView(OwnedImportMixin, DetailView):
    template_name = "mailinglist/import_detail.html"
    context_object_name = "subscriber_import"

    def get_context_data(self, **kwargs):
        subscriber_import = self.object
        return super().get_context_data(
            mailing_list=subscriber_import.mailing_list,
            progress=progress(subscriber_import),
            shows_counts=subscriber_import.status in SHOWS_COUNTS,
            **kwargs,
        )


class StartImportView(OwnedImportMixin, SingleObjectMixin, View):
    def post(self, request, pk):
        subscriber_import = self.get_object()
        if not running.start(subscriber_import):
            messages.warning(
                request,
                _("The import is %(status)s.") % {"status": subscriber_import.get_status_display()},
            )
        return redirect(subscriber_import)


class ImportProgressView(OwnedImportMixin, SingleObjectMixin, View):
    def get(self, request, pk):
        return JsonResponse(progress(self.get_object()))


def progress(subscriber_import):
    """What the import page shows and its script refreshes."""
    total = subscriber_import.analysis.get("rows")
    done = subscriber_import.rows_done
    if subscriber_import.status == ImportState.FINISHED:
        percent = 100
    else:
        percent = min(99, round(100 * done / total)) if total else 0
    return {
        "status": subscriber_import.status,
        "status_display": subscriber_import.get_status_display(),
        "final": subscriber_import.is_final,
        "percent_done": percent,
        "total_rows": total,
        **subscriber_import.counts(),
    }


class ImportRejectionsView(OwnedImportMixin, SingleObjectMixin, View):
    """The rows that did not become subscribers, as they were in the file, with why."""

    def get(self, request, pk):
        return rejections_csv(self.get_object())


def rejections_csv(subscriber_import):
    writer = csv.writer(Echo())
    headers = subscriber_import.analysis.get("headers", [])

    def lines():
        yield writer.writerow(["line", "reason", *map(safe_cell, headers)])
        for rejection in subscriber_import.rejections.iterator(chunk_size=2000):
            yield writer.writerow(
                [rejection.line, rejection.reason, *map(safe_cell, rejection.values)]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="import-{subscriber_import.pk}-rejected-rows.csv"'
    )
    return response
