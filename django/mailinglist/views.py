"""The list owner's pages. Another user's lists and messages answer 404, as if they did
not exist; the pages subscribers see are in public_views."""

import copy
import uuid
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.forms import BaseForm
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import date as format_date
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import CreateView, DeleteView, DetailView, ListView, UpdateView
from django.views.generic.detail import SingleObjectMixin

from mailinglist import dashboard, queueing, reputation
from mailinglist.delivery.states import FINAL_MESSAGE_STATES, MessageState, MessageTransition
from mailinglist.forms import (
    AddSubscriberForm,
    MailingListForm,
    MailingListSettingsForm,
    MessageForm,
    ScheduleForm,
    SubscriberQueryForm,
    TestSendForm,
)
from mailinglist.merge_tags import show_with_defaults
from mailinglist.models import MailingList, Message, Subscriber
from mailinglist.paging import QuickCountPaginator
from mailinglist.public_views import too_many_requests
from mailinglist.throttles import TestSendsPerOwnerThrottle
from mailinglist.timeline import delivery_timeline

PAGE_SIZE = 50
WITHOUT_RECIPIENTS_NOTES = {
    MessageState.FINISHED: _(
        "None: the list had no confirmed subscribers when this message went out."
    ),
    MessageState.CANCELLED: _("None: the message was cancelled before it went out."),
}
LOCAL_TIME = "Y-m-d H:i T"
CONTROL_LABELS = {
    MessageTransition.PAUSE.name: _("Pause"),
    MessageTransition.RESUME.name: _("Resume"),
    MessageTransition.CANCEL.name: _("Cancel"),
}
# The message page's bar: a part for each outcome, the pending rest left empty.
DELIVERY_BAR_PARTS = (
    ("sent", _("Sent"), "bg-success"),
    ("failed", _("Failed"), "bg-danger"),
    ("bounced", _("Bounced"), "bg-warning"),
    ("suppressed", _("Suppressed"), "bg-dark"),
    ("skipped", _("Skipped"), "bg-secondary"),
)


class OwnedMailingListMixin(LoginRequiredMixin):
    def get_queryset(self):
        return MailingList.objects.usable_by(self.request.user)


class MailingListListView(OwnedMailingListMixin, ListView):
    """The owner's dashboard: each list with its subscribers' growth and its last message."""

    template_name = "mailinglist/mailinglist_list.html"
    context_object_name = "mailing_lists"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["summaries"] = [dashboard.summarise(each) for each in context["mailing_lists"]]
        return context


class CreateMailingListView(LoginRequiredMixin, CreateView):
    form_class = MailingListForm
    template_name = "mailinglist/mailinglist_form.html"

    def form_valid(self, form):
        form.instance.owner = self.request.user
        return super().form_valid(form)


class MailingListSettingsView(OwnedMailingListMixin, UpdateView):
    form_class = MailingListSettingsForm
    template_name = "mailinglist/mailinglist_settings.html"
    context_object_name = "mailing_list"

    def form_valid(self, form):
        messages.success(self.request, gettext("Saved the list's settings."))
        return super().form_valid(form)


class DeleteMailingListView(OwnedMailingListMixin, DeleteView):
    template_name = "mailinglist/mailinglist_confirm_delete.html"
    success_url = reverse_lazy("mailinglist:mailinglist_list")

    def form_valid(self, form):
        messages.success(
            self.request, gettext("Deleted the list “%(name)s”.") % {"name": self.object.name}
        )
        return super().form_valid(form)


@dataclass(frozen=True)
class SubscriberRow:
    """A subscriber on the manage page, with where each of its buttons posts ("" for an
    action its status does not allow)."""

    subscriber: Subscriber
    url: str
    remove_url: str
    unsubscribe_url: str
    resend_url: str


def subscriber_rows(subscribers) -> list[SubscriberRow]:
    """The page's rows. Each link is reversed once for the page and given each row's id:
    reversing four links for each of fifty rows took longer than the page's queries."""
    placeholder = str(uuid.UUID(int=0))
    links = {
        name: reverse(f"mailinglist:{name}", kwargs={"pk": placeholder})
        for name in (
            "subscriber_detail",
            "remove_subscriber",
            "unsubscribe_subscriber",
            "resend_subscriber",
        )
    }
    rows = []
    for subscriber in subscribers:
        pk = str(subscriber.pk)
        url = {name: link.replace(placeholder, pk) for name, link in links.items()}
        status = subscriber.status
        rows.append(
            SubscriberRow(
                subscriber=subscriber,
                url=url["subscriber_detail"],
                remove_url=url["remove_subscriber"],
                unsubscribe_url=""
                if status in ("unsubscribed", "bounced")
                else url["unsubscribe_subscriber"],
                resend_url=url["resend_subscriber"] if status == "unconfirmed" else "",
            )
        )
    return rows


class MailingListDetailView(OwnedMailingListMixin, DetailView):
    """The list with its messages and its subscribers, searchable by address and status."""

    template_name = "mailinglist/mailinglist_detail.html"
    context_object_name = "mailing_list"

    def get_context_data(self, **kwargs):
        mailing_list = self.object
        query = SubscriberQueryForm(self.request.GET)
        search, status = query.search_and_status()
        found = mailing_list.subscriber_set.with_status(status).search(search)
        status_counts = mailing_list.status_counts()
        subscribers = QuickCountPaginator(
            found.order_by("email", "pk"),
            PAGE_SIZE,
            searched=bool(search),
            known_count=None if search else status_counts[status or "total"],
        )
        subscriber_page = subscribers.get_page(self.request.GET.get("page"))
        return super().get_context_data(
            subscribe_link=self.request.build_absolute_uri(
                reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk})
            ),
            archive_link=self.request.build_absolute_uri(
                reverse("mailinglist:archive", kwargs={"mailinglist_pk": mailing_list.pk})
            ),
            query_form=query,
            filtered=bool(search or status),
            query_string=query.query_string(),
            subscriber_page=subscriber_page,
            subscriber_rows=subscriber_rows(subscriber_page),
            status_counts=status_counts,
            add_form=kwargs.pop("add_form", None) or AddSubscriberForm(),
            list_messages=mailing_list.message_set.all()[:PAGE_SIZE],
            **kwargs,
        )

    def post(self, request, pk):
        """The owner adds one subscriber by hand."""
        self.object = mailing_list = self.get_object()
        form = AddSubscriberForm(request.POST)
        if form.is_valid():
            try:
                subscriber = Subscriber.objects.add_by_owner(
                    mailing_list,
                    form.cleaned_data["email"],
                    name=form.cleaned_data["name"],
                    confirmed=form.cleaned_data["agreed"],
                )
            except ValidationError as error:
                form.add_error("email", error)
            else:
                messages.success(request, added_message(subscriber))
                return redirect(mailing_list)
        return self.render_to_response(self.get_context_data(add_form=form), status=400)


def added_message(subscriber):
    if subscriber.confirmed:
        return gettext("Added %(email)s.") % {"email": subscriber.email}
    return gettext("Added %(email)s; a confirmation e-mail is on its way to them.") % {
        "email": subscriber.email
    }


class SubscriberActionView(LoginRequiredMixin, SingleObjectMixin, View):
    """One of the owner's moves on a subscriber, from a row of the manage page; back to
    the page, search and filter it was made from."""

    action = ""

    def get_queryset(self):
        return Subscriber.objects.usable_by(self.request.user).select_related("mailing_list")

    def post(self, request, pk):
        subscriber = self.get_object()
        messages.info(request, getattr(self, self.action)(subscriber))
        back = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            return redirect(back)
        return redirect(subscriber.mailing_list)

    def remove(self, subscriber):
        subscriber.delete()
        return gettext("Removed %(email)s from the list.") % {"email": subscriber.email}

    def unsubscribe(self, subscriber):
        subscriber.unsubscribe()
        return gettext("Unsubscribed %(email)s: they get no more mail from this list.") % {
            "email": subscriber.email
        }

    def resend(self, subscriber):
        values = {"email": subscriber.email, "status": subscriber.status}
        if subscriber.status != "unconfirmed":
            return gettext("%(email)s is %(status)s: no confirmation to send.") % values
        if subscriber.request_confirmation():
            return gettext("A new confirmation e-mail is on its way to %(email)s.") % values
        return (
            gettext(
                "%(email)s was sent a confirmation a few minutes ago, or has had its "
                "share of them this hour; try again later."
            )
            % values
        )


class MessageFormMixin:
    """The message form's buttons: Preview shows it, Save draft keeps it, Send… (the
    book's Save) keeps it and asks for the confirmation that sends it."""

    form_class: type[BaseForm] | None = MessageForm
    template_name: str | None = "mailinglist/message_form.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(mailing_list=self.mailing_list, **kwargs)

    def form_valid(self, form):
        message = form.instance
        if "preview" in self.request.POST:
            message.render()
            # The preview is the message as a reader with no name or fields would see it.
            preview = show_with_defaults(copy.copy(message))
            return self.render_to_response(self.get_context_data(form=form, preview=preview))
        message = self.save_message(form)
        if "draft" in self.request.POST:
            messages.success(self.request, gettext("Draft saved."))
            return redirect(message)
        return redirect("mailinglist:send_message", pk=message.pk)


class CreateMessageView(LoginRequiredMixin, MessageFormMixin, CreateView):
    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.mailing_list = get_object_or_404(
            MailingList.objects.usable_by(request.user), pk=kwargs["mailinglist_pk"]
        )
        return super().dispatch(request, *args, **kwargs)

    def save_message(self, form):
        form.instance.mailing_list = self.mailing_list
        form.instance.status = MessageState.DRAFT
        return form.save()


class OwnedMessageMixin(LoginRequiredMixin):
    def get_queryset(self):
        return Message.objects.usable_by(self.request.user).select_related("mailing_list")


class EditableMessageMixin(OwnedMessageMixin):
    """Pages for a message nobody has been sent yet; a sent one says so and shows itself."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            message = get_object_or_404(self.get_queryset(), pk=kwargs["pk"])
            if not message.is_editable:
                messages.warning(
                    request, gettext("This message went out, so it can no longer change.")
                )
                return redirect(message)
        return super().dispatch(request, *args, **kwargs)


class EditMessageView(EditableMessageMixin, MessageFormMixin, UpdateView):
    def get_context_data(self, **kwargs):
        self.mailing_list = self.object.mailing_list
        return super().get_context_data(**kwargs)

    def save_message(self, form):
        message = self.object
        if not message.edit(subject=form.cleaned_data["subject"], body=form.cleaned_data["body"]):
            messages.warning(self.request, gettext("This message went out before your changes."))
        return message


class SendMessageView(EditableMessageMixin, SingleObjectMixin, View):
    """The last step before a message goes out: it names the list and how many people
    get it, and sends it now or schedules it."""

    template_name = "mailinglist/message_send.html"

    def get(self, request, pk):
        self.object = self.get_object()
        return self.page(ScheduleForm(initial={"send_at": self.object.send_at}))

    def page(self, schedule_form):
        message = self.object
        return render(
            self.request,
            self.template_name,
            {
                "message": message,
                "mailing_list": message.mailing_list,
                "recipient_count": message.recipients().count(),
                "schedule_form": schedule_form,
            },
        )

    def post(self, request, pk):
        self.object = message = self.get_object()
        if "schedule" in request.POST:
            form = ScheduleForm(request.POST)
            if not form.is_valid():
                return self.page(form)
            message.schedule(form.cleaned_data["send_at"])
            messages.success(
                request,
                gettext("Scheduled for %(time)s.")
                % {"time": format_date(message.send_at, LOCAL_TIME)},
            )
            return redirect(message)
        recipients = message.recipients().count()
        if not recipients:
            messages.error(
                request,
                gettext(
                    "Nobody would get this message: the list has no confirmed subscribers yet."
                ),
            )
            return redirect("mailinglist:send_message", pk=message.pk)
        if message.send():
            messages.success(
                request,
                ngettext(
                    "Sending it to %(count)d confirmed subscriber.",
                    "Sending it to %(count)d confirmed subscribers.",
                    recipients,
                )
                % {"count": recipients},
            )
        return redirect(message)


class UnscheduleMessageView(OwnedMessageMixin, SingleObjectMixin, View):
    def post(self, request, pk):
        message = self.get_object()
        if message.unschedule():
            messages.success(
                request, gettext("Back to a draft: it will not go out until you send it.")
            )
        else:
            messages.warning(
                request,
                gettext("The message is %(status)s.")
                % {"status": message.get_status_display().lower()},
            )
        return redirect(message)


class TestSendView(OwnedMessageMixin, SingleObjectMixin, View):
    """Sends the owner, or up to ten addresses, a copy marked [Test]; nobody else."""

    def post(self, request, pk):
        message = self.get_object()
        form = TestSendForm(request.POST)
        if not form.is_valid():
            messages.error(request, " ".join(form.errors["emails"]))
            return redirect(message)
        throttle = TestSendsPerOwnerThrottle()
        if not throttle.allow_request(request, self):
            return too_many_requests(request, throttle.wait())
        addresses = form.cleaned_data["emails"]
        queueing.after_commit(queueing.SEND_TEST_COPIES, str(message.pk), *addresses)
        messages.success(
            request,
            gettext("A test copy is on its way to %(addresses)s.")
            % {"addresses": ", ".join(addresses)},
        )
        return redirect(message)


class MessageDetailView(OwnedMessageMixin, DetailView):
    template_name = "mailinglist/message_detail.html"
    context_object_name = "message"

    def get_context_data(self, **kwargs):
        message = self.object
        deliveries = Paginator(
            message.subscribermessage_set.select_related("subscriber").order_by(
                "subscriber__email"
            ),
            PAGE_SIZE,
        )
        figures = reputation.message_figures(message.pk)
        counts = message.delivery_counts()
        return super().get_context_data(
            counts=counts,
            delivery_parts=[
                {"name": name, "label": label, "css": css, "count": counts[name]}
                for name, label, css in DELIVERY_BAR_PARTS
            ],
            timeline=delivery_timeline(message),
            figures=reputation.with_rates(figures),
            raw_figures=figures,
            delivery_page=deliveries.get_page(self.request.GET.get("page")),
            controls=[
                {
                    "label": CONTROL_LABELS[control.name],
                    "url": reverse(
                        f"mailinglist:{control_url_name(control)}", kwargs={"pk": message.pk}
                    ),
                    "ends_message": control.target in FINAL_MESSAGE_STATES,
                }
                for control in message.owner_controls()
            ],
            without_recipients_note=WITHOUT_RECIPIENTS_NOTES.get(message.status, ""),
            test_form=TestSendForm(initial={"emails": self.request.user.email}),
            **kwargs,
        )


class MessageProgressView(OwnedMessageMixin, SingleObjectMixin, View):
    def get(self, request, pk):
        message = self.get_object()
        return JsonResponse(
            {
                "status": message.status,
                "final": message.is_final,
                "controls": [control.name for control in message.owner_controls()],
                **message.delivery_counts(),
            }
        )


class MessageTimelineView(OwnedMessageMixin, SingleObjectMixin, View):
    def get(self, request, pk):
        return JsonResponse(delivery_timeline(self.get_object()))


def control_url_name(control):
    return f"{control.name}_message"


class MessageControlView(OwnedMessageMixin, SingleObjectMixin, View):
    """One of the owner's moves in MessageTransition.OWNER_CONTROLS, by its name."""

    control = None

    def post(self, request, pk):
        message = self.get_object()
        if not getattr(message, self.control.name)():
            messages.warning(
                request,
                gettext("The message is %(status)s.")
                % {"status": message.get_status_display().lower()},
            )
        return redirect(message)
