"""The owner's pages about the sender's reputation: the suppression list, a list's
bounce and complaint figures, and one subscriber's copies. Another user's rows
answer 404."""

import csv

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import DetailView

from mailinglist import reputation
from mailinglist.exporting import LINE_END, Echo, safe_cell
from mailinglist.forms import AddSuppressionForm, SuppressionQueryForm
from mailinglist.models import DeliveryEvent, MailingList, Subscriber, Suppression
from mailinglist.paging import QuickCountPaginator

PAGE_SIZE = 50
SUPPRESSION_COLUMNS = ["email", "reason", "source", "created"]


class SuppressionListView(LoginRequiredMixin, View):
    """Every address the owner's lists send nothing to: search, add, remove."""

    def get(self, request, add_form=None, status=200):
        query = SuppressionQueryForm(request.GET)
        text = query.cleaned_data["q"] if query.is_valid() else ""
        suppressions = Suppression.objects.usable_by(request.user).search(text).order_by("email")
        page = QuickCountPaginator(suppressions, PAGE_SIZE).get_page(request.GET.get("page"))
        context = {
            "page": page,
            "query": query,
            "text": text,
            "add_form": add_form or AddSuppressionForm(),
        }
        return render(request, "mailinglist/suppression_list.html", context, status=status)

    def post(self, request):
        form = AddSuppressionForm(request.POST)
        if form.is_valid():
            try:
                add_suppression(request.user, form.cleaned_data["email"])
            except ValidationError as error:
                form.add_error("email", error)
            else:
                messages.success(
                    request,
                    _("%(email)s gets no more mail.") % {"email": form.cleaned_data["email"]},
                )
                return redirect("mailinglist:suppression_list")
        return self.get(request, add_form=form, status=400)


def add_suppression(owner, email):
    """The owner suppresses an address by hand; refused if it already is."""
    if not Suppression.suppress(owner.pk, email, Suppression.Reason.MANUAL, "added by you"):
        raise ValidationError(
            Suppression._meta.constraints[0].violation_error_message, code="unique"
        )


class RemoveSuppressionView(LoginRequiredMixin, View):
    def post(self, request, pk):
        suppression = get_object_or_404(Suppression.objects.usable_by(request.user), pk=pk)
        suppression.delete()
        messages.success(
            request,
            _(
                "%(email)s is no longer suppressed; it gets mail again once it is "
                "subscribed and confirmed."
            )
            % {"email": suppression.email},
        )
        return redirect("mailinglist:suppression_list")


def suppression_csv_lines(suppressions):
    writer = csv.writer(Echo(), quoting=csv.QUOTE_ALL, lineterminator=LINE_END)
    yield writer.writerow(SUPPRESSION_COLUMNS)
    for email, reason, source, created in (
        suppressions.order_by("email")
        .values_list("email", "reason", "source", "created")
        .iterator(2000)
    ):
        yield writer.writerow(
            [safe_cell(email), reason, safe_cell(source), created.isoformat(timespec="seconds")]
        )


def suppressions_csv_response(suppressions):
    response = StreamingHttpResponse(
        suppression_csv_lines(suppressions), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="suppressed-addresses.csv"'
    return response


class ExportSuppressionsView(LoginRequiredMixin, View):
    def get(self, request):
        return suppressions_csv_response(Suppression.objects.usable_by(request.user))


class MailingListFiguresView(LoginRequiredMixin, DetailView):
    """Delivered, bounced, complained and unsubscribed over every message of the list."""

    template_name = "mailinglist/mailinglist_figures.html"
    context_object_name = "mailing_list"

    def get_queryset(self):
        return MailingList.objects.usable_by(self.request.user)

    def get_context_data(self, **kwargs):
        figures = reputation.list_figures(self.object.pk)
        return super().get_context_data(
            figures=reputation.with_rates(figures), raw=figures, **kwargs
        )


class SubscriberDetailView(LoginRequiredMixin, DetailView):
    """One subscriber, and each copy they were sent with what became of it."""

    template_name = "mailinglist/subscriber_detail.html"
    context_object_name = "subscriber"

    def get_queryset(self):
        return Subscriber.objects.usable_by(self.request.user).select_related("mailing_list")

    def get_context_data(self, **kwargs):
        subscriber = self.object
        copies = list(
            subscriber.subscribermessage_set.select_related("message").order_by("-created")[:100]
        )
        events = {}
        for event in DeliveryEvent.objects.filter(delivery__in=copies).order_by("created"):
            events.setdefault(event.delivery_id, []).append(event)
        for each in copies:
            each.events = events.get(each.pk, [])
        suppression = Suppression.objects.with_address(
            subscriber.mailing_list.owner_id, subscriber.email
        ).first()
        return super().get_context_data(copies=copies, suppression=suppression, **kwargs)
