"""The owner's download of a list's subscribers as CSV."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views import View

from mailinglist.exporting import subscriber_csv_lines
from mailinglist.models import SUBSCRIBER_STATUSES, MailingList


def subscribers_csv_response(mailing_list, subscribers):
    response = StreamingHttpResponse(
        subscriber_csv_lines(subscribers), content_type="text/csv; charset=utf-8"
    )
    file_name = f"{slugify(mailing_list.name) or 'list'}-subscribers.csv"
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


class ExportSubscribersView(LoginRequiredMixin, View):
    """Every subscriber of the list, or those of one status (?status=…), as CSV."""

    def get(self, request, pk):
        mailing_list = get_object_or_404(MailingList.objects.usable_by(request.user), pk=pk)
        status = request.GET.get("status") or None
        if status is not None and status not in SUBSCRIBER_STATUSES:
            return HttpResponseBadRequest(
                _("status is one of %(statuses)s.") % {"statuses": ", ".join(SUBSCRIBER_STATUSES)}
            )
        return subscribers_csv_response(
            mailing_list, mailing_list.subscriber_set.with_status(status)
        )
