"""The pages subscribers and visitors see, in the list's own identity: subscribing,
confirming, unsubscribing, and the list's public archive.

A message shown on a page is read by nobody in particular: its merge tags show their
defaults."""

import math

from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import DetailView, FormView, ListView

from mailinglist.forms import SubscribeForm
from mailinglist.merge_tags import show_with_defaults, subject_with_defaults
from mailinglist.models import MailingList, Message, Subscriber
from mailinglist.throttles import SubscriptionsPerClientThrottle, SubscriptionsPerListThrottle
from mailinglist.tokens import (
    SubscriberTokenGenerator,
    confirmation_token_generator,
    message_id_for_view_token,
    unsubscribe_token_generator,
)

ARCHIVE_PAGE_SIZE = 50


def too_many_requests(request, wait_seconds):
    minutes = max(1, math.ceil(wait_seconds / 60))
    response = render(request, "429.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(math.ceil(wait_seconds))
    return response


# Another site may embed the form: a plain cross-origin POST is welcome, and the abuse
# limits and the hidden field, not a CSRF token, keep it from being misused.
@method_decorator(csrf_exempt, name="dispatch")
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
        if self.mailing_list.subscribed_url:
            return redirect(self.mailing_list.subscribed_url)
        return redirect("mailinglist:subscriber_thankyou", pk=self.mailing_list.pk)


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
        return self.done()

    def done(self):
        return render(self.request, self.done_template_name, self.context())

    def context(self):
        return {"subscriber": self.subscriber, "mailing_list": self.subscriber.mailing_list}


class ConfirmSubscriptionView(SubscriberLinkView):
    token_generator = confirmation_token_generator
    template_name = "mailinglist/confirm_subscription.html"
    done_template_name = "mailinglist/subscription_confirmed.html"

    def act(self):
        self.subscriber.confirm()

    def done(self):
        confirmed_url = self.subscriber.mailing_list.confirmed_url
        return redirect(confirmed_url) if confirmed_url else super().done()


# Mail clients unsubscribe with a cookie-less POST (RFC 8058): there is no CSRF
# token to check, and the signed token in the URL is the authorisation.
@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(SubscriberLinkView):
    token_generator = unsubscribe_token_generator
    template_name = "mailinglist/unsubscribe.html"
    done_template_name = "mailinglist/unsubscribed.html"

    def act(self):
        self.subscriber.unsubscribe()


class PublicArchiveMixin:
    """The archive of a list that publishes one; any other list's answers 404."""

    def dispatch(self, request, *args, **kwargs):
        self.mailing_list = get_object_or_404(
            MailingList, pk=kwargs["mailinglist_pk"], archive=True
        )
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        return self.mailing_list.sent_messages().order_by("-queued")

    def get_context_data(self, **kwargs):
        return super().get_context_data(mailing_list=self.mailing_list, **kwargs)


class ArchiveView(PublicArchiveMixin, ListView):
    template_name = "mailinglist/archive.html"
    context_object_name = "archived_messages"
    paginate_by = ARCHIVE_PAGE_SIZE

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for message in context["archived_messages"]:
            message.subject = subject_with_defaults(message.subject)
        return context


class ArchivedMessageView(PublicArchiveMixin, DetailView):
    template_name = "mailinglist/archived_message.html"
    context_object_name = "message"

    def get_object(self, queryset=None):
        return show_with_defaults(super().get_object(queryset))


class ViewInBrowserView(DetailView):
    """A message's page for the readers of a list without a public archive, through the
    signed link in their copy."""

    template_name = "mailinglist/archived_message.html"
    context_object_name = "message"

    def get_object(self, queryset=None):
        message_id = message_id_for_view_token(self.kwargs["token"])
        return show_with_defaults(
            get_object_or_404(Message.objects.sent().select_related("mailing_list"), pk=message_id)
        )

    def get_context_data(self, **kwargs):
        return super().get_context_data(mailing_list=self.object.mailing_list, **kwargs)
