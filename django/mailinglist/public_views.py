"""The pages subscribers and visitors see, in the list's own identity and language:
subscribing, confirming, unsubscribing, managing one's subscriptions, and the list's
public archive.

A message shown on a page is read by nobody in particular: its merge tags show their
defaults."""

import functools
import json
import math

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import SimpleTemplateResponse
from django.utils import translation
from django.utils.decorators import method_decorator
from django.utils.text import slugify
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import DetailView, FormView, ListView, TemplateView

from mailinglist.forms import SubscribeForm
from mailinglist.merge_tags import show_with_defaults, subject_with_defaults
from mailinglist.models import MailingList, Message, Subscriber
from mailinglist.subscriptions import stored_data, subscriptions_of, unsubscribe_from_all
from mailinglist.throttles import SubscriptionsPerClientThrottle, SubscriptionsPerListThrottle
from mailinglist.tokens import (
    SubscriberTokenGenerator,
    TokenCheck,
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


def invalid_link(request):
    return render(request, "mailinglist/invalid_link.html", status=400)


def respond_in(language, respond):
    """respond()'s response, rendered with language active: a TemplateResponse would
    otherwise be rendered after the view returns, in the default language."""
    with translation.override(language):
        response = respond()
        if isinstance(response, SimpleTemplateResponse):
            response.render()
    return response


class ListPageMixin:
    """A public page of one list, in the list's language; find_mailing_list(**kwargs)
    says which list (or raises Http404)."""

    def dispatch(self, request, *args, **kwargs):
        self.mailing_list = self.find_mailing_list(**kwargs)
        return respond_in(
            self.mailing_list.language,
            functools.partial(super().dispatch, request, *args, **kwargs),
        )

    def find_mailing_list(self, **kwargs):
        return get_object_or_404(MailingList, pk=kwargs["mailinglist_pk"])

    def get_context_data(self, **kwargs):
        return super().get_context_data(mailing_list=self.mailing_list, **kwargs)


# Another site may embed the form: a plain cross-origin POST is welcome, and the abuse
# limits and the hidden field, not a CSRF token, keep it from being misused.
@method_decorator(csrf_exempt, name="dispatch")
class SubscribeToMailingListView(ListPageMixin, FormView):
    form_class = SubscribeForm
    template_name = "mailinglist/subscriber_form.html"

    def form_valid(self, form):
        if not form.cleaned_data["website"]:
            for throttle in (SubscriptionsPerClientThrottle(), SubscriptionsPerListThrottle()):
                if not throttle.allow_request(self.request, self):
                    return too_many_requests(self.request, throttle.wait())
            Subscriber.objects.subscribe(self.mailing_list, form.cleaned_data["email"])
        if self.mailing_list.subscribed_url:
            return redirect(self.mailing_list.subscribed_url)
        return redirect("mailinglist:subscriber_thankyou", pk=self.mailing_list.pk)


class SubscriberThankYouView(ListPageMixin, TemplateView):
    template_name = "mailinglist/subscriber_thankyou.html"

    def find_mailing_list(self, **kwargs):
        return get_object_or_404(MailingList, pk=kwargs["pk"])


def subscriber_for_token(token_generator, token):
    """The subscriber token names and how it checks, or (None, INVALID)."""
    subscriber_id = token_generator.subscriber_id(token)
    subscriber = (
        Subscriber.objects.select_related("mailing_list").filter(pk=subscriber_id).first()
        if subscriber_id
        else None
    )
    if subscriber is None:
        return None, TokenCheck.INVALID
    return subscriber, token_generator.check(subscriber, token)


class SubscriberLinkView(View):
    """A link from an e-mail: GET shows a button and changes nothing, POST acts.

    A link followed again once its work is done says so, on GET and POST alike,
    rather than failing or acting twice.
    """

    token_generator: SubscriberTokenGenerator
    template_name: str
    done_template_name: str
    already_done_template_name: str

    def dispatch(self, request, *args, **kwargs):
        self.subscriber, checked = subscriber_for_token(self.token_generator, kwargs["token"])
        if checked is TokenCheck.INVALID:
            return invalid_link(request)
        return respond_in(
            self.subscriber.mailing_list.language,
            functools.partial(self.respond, checked, request, *args, **kwargs),
        )

    def respond(self, checked, request, *args, **kwargs):
        if checked is TokenCheck.EXPIRED:
            return self.expired()
        if checked is TokenCheck.USED or self.is_done():
            return render(request, self.already_done_template_name, self.context())
        return super().dispatch(request, *args, **kwargs)

    def expired(self):
        return invalid_link(self.request)

    def is_done(self):
        return False

    def get(self, request, token):
        return render(request, self.template_name, self.context())

    def post(self, request, token):
        self.act()
        return self.done()

    def done(self):
        return render(self.request, self.done_template_name, self.context())

    def context(self, **extra):
        return {
            "subscriber": self.subscriber,
            "mailing_list": self.subscriber.mailing_list,
            **extra,
        }


class ConfirmSubscriptionView(SubscriberLinkView):
    token_generator = confirmation_token_generator
    template_name = "mailinglist/confirm_subscription.html"
    done_template_name = "mailinglist/subscription_confirmed.html"
    already_done_template_name = "mailinglist/already_subscribed.html"

    def act(self):
        self.subscriber.confirm()

    def done(self):
        confirmed_url = self.subscriber.mailing_list.confirmed_url
        return redirect(confirmed_url) if confirmed_url else super().done()

    def expired(self):
        """A page that offers a new link; its button asks for one as subscribing again would."""
        asked = self.request.method == "POST"
        sent = self.subscriber.request_confirmation_again() if asked else None
        return render(
            self.request, "mailinglist/confirmation_expired.html", self.context(sent=sent)
        )


# Mail clients unsubscribe with a cookie-less POST (RFC 8058): there is no CSRF
# token to check, and the signed token in the URL is the authorisation.
@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(SubscriberLinkView):
    token_generator = unsubscribe_token_generator
    template_name = "mailinglist/unsubscribe.html"
    done_template_name = "mailinglist/unsubscribed.html"
    already_done_template_name = "mailinglist/unsubscribed.html"

    def is_done(self):
        return self.subscriber.unsubscribed is not None

    def act(self):
        self.subscriber.unsubscribe()

    def context(self, **extra):
        # The manage page takes the same token.
        return super().context(manage_token=self.kwargs["token"], **extra)


class ManageSubscriptionMixin:
    """A page of the "manage your subscription" link in every e-mail, which carries the
    subscriber's unsubscribe token: it names the subscriber and never expires. It is
    shown in the language of the list whose e-mail the link came from."""

    def dispatch(self, request, *args, **kwargs):
        self.subscriber, checked = subscriber_for_token(
            unsubscribe_token_generator, kwargs["token"]
        )
        if checked is not TokenCheck.VALID:
            return invalid_link(request)
        return respond_in(
            self.subscriber.mailing_list.language,
            functools.partial(super().dispatch, request, *args, **kwargs),
        )

    def back_to_the_page(self):
        return redirect("mailinglist:manage_subscription", token=self.kwargs["token"])


class ManageSubscriptionView(ManageSubscriptionMixin, View):
    def get(self, request, token):
        return render(
            request,
            "mailinglist/manage_subscription.html",
            {
                "subscriber": self.subscriber,
                "mailing_list": self.subscriber.mailing_list,
                "subscriptions": subscriptions_of(self.subscriber),
                "token": token,
            },
        )


class UnsubscribeFromOneListView(ManageSubscriptionMixin, View):
    def post(self, request, token, pk):
        get_object_or_404(subscriptions_of(self.subscriber), pk=pk).unsubscribe()
        return self.back_to_the_page()


class UnsubscribeFromAllListsView(ManageSubscriptionMixin, View):
    def post(self, request, token):
        unsubscribe_from_all(self.subscriber)
        return self.back_to_the_page()


class StoredDataView(ManageSubscriptionMixin, View):
    """What Mail Ape stores about the address for this owner, as a JSON file."""

    def get(self, request, token):
        response = HttpResponse(
            json.dumps(stored_data(self.subscriber), cls=DjangoJSONEncoder, indent=2),
            content_type="application/json; charset=utf-8",
        )
        file_name = f"{slugify(self.subscriber.email) or 'subscriber'}-data.json"
        response["Content-Disposition"] = f'attachment; filename="{file_name}"'
        return response


class PublicArchiveMixin(ListPageMixin):
    """The archive of a list that publishes one; any other list's answers 404."""

    def find_mailing_list(self, **kwargs):
        return get_object_or_404(MailingList, pk=kwargs["mailinglist_pk"], archive=True)

    def get_queryset(self):
        return self.mailing_list.sent_messages().order_by("-queued")


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


class ViewInBrowserView(ListPageMixin, DetailView):
    """A message's page for the readers of a list without a public archive, through the
    signed link in their copy."""

    template_name = "mailinglist/archived_message.html"
    context_object_name = "message"

    def find_mailing_list(self, **kwargs):
        message_id = message_id_for_view_token(kwargs["token"])
        self.message = show_with_defaults(
            get_object_or_404(Message.objects.sent().select_related("mailing_list"), pk=message_id)
        )
        return self.message.mailing_list

    def get_object(self, queryset=None):
        return self.message
