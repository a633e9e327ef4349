import math

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import CreateView, DeleteView, DetailView, FormView, ListView
from django.views.generic.detail import SingleObjectMixin

from mailinglist.delivery.states import FINAL_MESSAGE_STATES, MessageState
from mailinglist.forms import MailingListForm, MessageForm, SubscribeForm
from mailinglist.models import MailingList, Message, Subscriber
from mailinglist.throttles import SubscriptionsPerClientThrottle, SubscriptionsPerListThrottle
from mailinglist.tokens import (
    SubscriberTokenGenerator,
    confirmation_token_generator,
    unsubscribe_token_generator,
)

PAGE_SIZE = 50
WITHOUT_RECIPIENTS_NOTES = {
    MessageState.FINISHED: (
        "None: the list had no confirmed subscribers when this message went out."
    ),
    MessageState.CANCELLED: "None: the message was cancelled before it went out.",
}


class OwnedMailingListMixin(LoginRequiredMixin):
    """Another user's list answers 404, as if it did not exist."""

    def get_queryset(self):
        return MailingList.objects.usable_by(self.request.user)


class MailingListListView(LoginRequiredMixin, ListView):
    template_name = "mailinglist/mailinglist_list.html"
    context_object_name = "mailing_lists"

    def get_queryset(self):
        return MailingList.objects.usable_by(self.request.user)


class CreateMailingListView(LoginRequiredMixin, CreateView):
    form_class = MailingListForm
    template_name = "mailinglist/mailinglist_form.html"

    def form_valid(self, form):
        form.instance.owner = self.request.user
        return super().form_valid(form)


class DeleteMailingListView(OwnedMailingListMixin, DeleteView):
    template_name = "mailinglist/mailinglist_confirm_delete.html"
    success_url = reverse_lazy("mailinglist:mailinglist_list")

    def form_valid(self, form):
        messages.success(self.request, f"Deleted the list “{self.object.name}”.")
        return super().form_valid(form)


class MailingListDetailView(OwnedMailingListMixin, DetailView):
    template_name = "mailinglist/mailinglist_detail.html"
    context_object_name = "mailing_list"

    def get_context_data(self, **kwargs):
        mailing_list = self.object
        subscribers = Paginator(mailing_list.subscriber_set.all(), PAGE_SIZE)
        return super().get_context_data(
            subscribe_link=self.request.build_absolute_uri(
                reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk})
            ),
            subscriber_page=subscribers.get_page(self.request.GET.get("page")),
            confirmed_count=Subscriber.objects.confirmed_subscribers_for_mailing_list(
                mailing_list
            ).count(),
            list_messages=mailing_list.message_set.all()[:PAGE_SIZE],
            **kwargs,
        )


class SubscribeToMailingListView(FormView):
    form_class = SubscribeForm
    template_name = "mailinglist/subscriber_form.html"

    def dispatch(self, request, *args, **kwargs):
        self.mailing_list = get_object_or_404(MailingList, pk=kwargs["mailinglist_pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(mailing_list=self.mailing_list, **kwargs)

    def form_valid(self, form):
        if not form.cleaned_data["website"]:
            for throttle in (SubscriptionsPerClientThrottle(), SubscriptionsPerListThrottle()):
                if not throttle.allow_request(self.request, self):
                    return too_many_requests(self.request, throttle.wait())
            Subscriber.objects.subscribe(self.mailing_list, form.cleaned_data["email"])
        return redirect("mailinglist:subscriber_thankyou", pk=self.mailing_list.pk)


def too_many_requests(request, wait_seconds):
    minutes = max(1, math.ceil(wait_seconds / 60))
    response = render(request, "429.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(math.ceil(wait_seconds))
    return response


class SubscriberThankYouView(DetailView):
    model = MailingList
    template_name = "mailinglist/subscriber_thankyou.html"
    context_object_name = "mailing_list"


class SubscriberLinkView(View):
    """A link from an e-mail: GET shows a button and changes nothing, POST acts."""

    token_generator: SubscriberTokenGenerator
    template_name: str
    done_template_name: str

    def dispatch(self, request, *args, **kwargs):
        token = kwargs["token"]
        subscriber_id = self.token_generator.subscriber_id(token)
        self.subscriber = (
            Subscriber.objects.select_related("mailing_list").filter(pk=subscriber_id).first()
            if subscriber_id
            else None
        )
        if self.subscriber is None or not self.token_generator.check_token(self.subscriber, token):
            return render(request, "mailinglist/invalid_link.html", status=400)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, token):
        return render(request, self.template_name, self.context())

    def post(self, request, token):
        self.act()
        return render(request, self.done_template_name, self.context())

    def context(self):
        return {"subscriber": self.subscriber, "mailing_list": self.subscriber.mailing_list}


class ConfirmSubscriptionView(SubscriberLinkView):
    token_generator = confirmation_token_generator
    template_name = "mailinglist/confirm_subscription.html"
    done_template_name = "mailinglist/subscription_confirmed.html"

    def act(self):
        self.subscriber.confirm()


# Mail clients unsubscribe with a cookie-less POST (RFC 8058): there is no CSRF
# token to check, and the signed token in the URL is the authorisation.
@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(SubscriberLinkView):
    token_generator = unsubscribe_token_generator
    template_name = "mailinglist/unsubscribe.html"
    done_template_name = "mailinglist/unsubscribed.html"

    def act(self):
        self.subscriber.unsubscribe()


class CreateMessageView(LoginRequiredMixin, CreateView):
    form_class = MessageForm
    template_name = "mailinglist/message_form.html"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.mailing_list = get_object_or_404(
            MailingList.objects.usable_by(request.user), pk=kwargs["mailinglist_pk"]
        )
        return super().dispatch(request, *args, **kwargs)

    def recipient_count(self):
        return Subscriber.objects.confirmed_subscribers_for_mailing_list(self.mailing_list).count()

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            mailing_list=self.mailing_list, recipient_count=self.recipient_count(), **kwargs
        )

    def form_valid(self, form):
        form.instance.mailing_list = self.mailing_list
        if "preview" in self.request.POST:
            return self.render_to_response(self.get_context_data(form=form, preview=form.instance))
        self.object = form.save()
        recipients = self.recipient_count()
        if recipients:
            messages.success(
                self.request,
                f"Saved. Sending it to {recipients} confirmed subscriber{pluralize(recipients)}.",
            )
        else:
            messages.warning(
                self.request, "Saved, but the list has no confirmed subscribers, so nobody gets it."
            )
        return redirect(self.object)


class OwnedMessageMixin(LoginRequiredMixin):
    def get_queryset(self):
        return Message.objects.usable_by(self.request.user).select_related("mailing_list")


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
        return super().get_context_data(
            counts=message.delivery_counts(),
            delivery_page=deliveries.get_page(self.request.GET.get("page")),
            controls=[
                {
                    "label": control.name.capitalize(),
                    "url": reverse(
                        f"mailinglist:{control_url_name(control)}", kwargs={"pk": message.pk}
                    ),
                    "ends_message": control.target in FINAL_MESSAGE_STATES,
                }
                for control in message.owner_controls()
            ],
            without_recipients_note=WITHOUT_RECIPIENTS_NOTES.get(message.status, ""),
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


def control_url_name(control):
    return f"{control.name}_message"


class MessageControlView(OwnedMessageMixin, SingleObjectMixin, View):
    """One of the owner's moves in MessageTransition.OWNER_CONTROLS, by its name."""

    control = None

    def post(self, request, pk):
        message = self.get_object()
        if not getattr(message, self.control.name)():
            messages.warning(request, f"The message is {message.get_status_display().lower()}.")
        return redirect(message)
