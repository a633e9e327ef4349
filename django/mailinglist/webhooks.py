"""Providers' reports about copies, through django-anymail's tracking webhooks.

Anymail reads each provider's format (Amazon SES through SNS, Postmark, SendGrid,
Mailgun) into one kind of event; Mail Ape guards the endpoints with the
MAIL_APE_WEBHOOK_SECRET basic-auth secret, answers what it cannot read with a
400, and hands bounces, complaints and unsubscribes to reputation.record().
"""

import hashlib
import json
import logging
from contextlib import contextmanager

from anymail.exceptions import AnymailError  # type: ignore[import-untyped]
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason, tracking  # type: ignore[import-untyped]
from anymail.utils import get_request_basic_auth  # type: ignore[import-untyped]
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView  # type: ignore[import-untyped]
from anymail.webhooks.mailgun import MailgunTrackingWebhookView  # type: ignore[import-untyped]
from anymail.webhooks.postmark import PostmarkTrackingWebhookView  # type: ignore[import-untyped]
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.dispatch import receiver
from django.http import Http404, JsonResponse
from django.urls import path
from django.utils.crypto import constant_time_compare

from mailinglist import reputation
from mailinglist.emails import DELIVERY_HEADER
from mailinglist.models import DeliveryEventKind

logger = logging.getLogger(__name__)

Kind = DeliveryEventKind
KIND_OF_EVENT = {
    EventType.BOUNCED: Kind.HARD_BOUNCE,
    EventType.DEFERRED: Kind.SOFT_BOUNCE,
    EventType.COMPLAINED: Kind.COMPLAINT,
    EventType.UNSUBSCRIBED: Kind.UNSUBSCRIBE,
}
# The provider refused to send a copy: what that says about the address, by why. A refusal
# for the message's content (a virus, a policy) says nothing about it and is only logged.
KIND_OF_REJECTION = {
    RejectReason.BOUNCED: Kind.HARD_BOUNCE,
    RejectReason.INVALID: Kind.HARD_BOUNCE,
    RejectReason.SPAM: Kind.COMPLAINT,
    RejectReason.UNSUBSCRIBED: Kind.UNSUBSCRIBE,
}
# The metadata key under which Postmark, SendGrid and Mailgun return the delivery id.
METADATA_KEY = "mailape"
SOURCE_OF_PROVIDER = {
    "Amazon SES": "amazon_ses",
    "Postmark": "postmark",
    "SendGrid": "sendgrid",
    "Mailgun": "mailgun",
}
LONGEST_KEY = 200


class MalformedReport(Exception):
    pass


class GuardedWebhook:
    """An anymail tracking view that only the holder of the webhook secret may call,
    and that answers a payload it cannot read with a 400 rather than an error page."""

    # post() checks the secret before anymail does, and refuses every call without one.
    warn_if_no_basic_auth = False

    def __init__(self, **kwargs):
        super().__init__(webhook_secret=settings.MAIL_APE_WEBHOOK_SECRET, **kwargs)

    def post(self, request, *args, **kwargs):
        secret = settings.MAIL_APE_WEBHOOK_SECRET
        if not secret:
            raise Http404("Set MAIL_APE_WEBHOOK_SECRET to receive reports.")
        if not constant_time_compare(get_request_basic_auth(request) or "", secret):
            response = JsonResponse({"error": "Authentication required."}, status=401)
            response["WWW-Authenticate"] = 'Basic realm="Mail Ape webhooks"'
            return response
        try:
            return super().post(request, *args, **kwargs)
        except (MalformedReport, SuspiciousOperation) as error:
            logger.warning("Unreadable report on %s: %s", request.path, error)
            return JsonResponse({"error": f"Unreadable report: {error}"}, status=400)
        except (BotoCoreError, ClientError) as error:
            logger.error("Could not confirm the SNS subscription: %s", error)
            return JsonResponse({"error": "Could not confirm the subscription."}, status=502)

    def run_validators(self, request):
        with unreadable_as_malformed():
            super().run_validators(request)

    def parse_events(self, request):
        with unreadable_as_malformed():
            return super().parse_events(request)


@contextmanager
def unreadable_as_malformed():
    """Turn what anymail raises on a payload it cannot read into MalformedReport."""
    try:
        yield
    except (AnymailError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise MalformedReport(str(error) or type(error).__name__) from error


class AmazonSESWebhook(GuardedWebhook, AmazonSESTrackingWebhookView):
    pass


class PostmarkWebhook(GuardedWebhook, PostmarkTrackingWebhookView):
    pass


class SendGridWebhook(GuardedWebhook, SendGridTrackingWebhookView):
    pass


class MailgunWebhook(GuardedWebhook, MailgunTrackingWebhookView):
    def __init__(self, **kwargs):
        # Anymail refuses to build a Mailgun view without a signing key; without one,
        # a call is answered like any other to an endpoint that is not set up.
        key = settings.MAIL_APE_MAILGUN_WEBHOOK_SIGNING_KEY
        self.configured = bool(key)
        if self.configured:
            super().__init__(webhook_signing_key=key, **kwargs)

    def dispatch(self, request, *args, **kwargs):
        if not self.configured:
            raise Http404("Set MAIL_APE_MAILGUN_WEBHOOK_SIGNING_KEY to receive Mailgun's reports.")
        return super().dispatch(request, *args, **kwargs)


urlpatterns = [
    path("amazon_ses/tracking/", AmazonSESWebhook.as_view(), name="amazon_ses_tracking_webhook"),
    path("postmark/tracking/", PostmarkWebhook.as_view(), name="postmark_tracking_webhook"),
    path("sendgrid/tracking/", SendGridWebhook.as_view(), name="sendgrid_tracking_webhook"),
    path("mailgun/tracking/", MailgunWebhook.as_view(), name="mailgun_tracking_webhook"),
]


def kind_of(event: AnymailTrackingEvent) -> DeliveryEventKind | None:
    if event.event_type == EventType.REJECTED:
        return KIND_OF_REJECTION.get(event.reject_reason)
    kind = KIND_OF_EVENT.get(event.event_type)
    if kind == Kind.HARD_BOUNCE and event.event_type == EventType.BOUNCED and is_transient(event):
        return Kind.SOFT_BOUNCE
    return kind


def is_transient(event: AnymailTrackingEvent) -> bool:
    """Whether a provider reported a bounce that anymail calls bounced as temporary."""
    report = event.esp_event if isinstance(event.esp_event, dict) else {}
    ses_bounce = report.get("bounce")
    if isinstance(ses_bounce, dict):
        return ses_bounce.get("bounceType") in ("Transient", "Undetermined")
    # Postmark's soft bounces, and SendGrid's "blocked" (refused for now, not unknown).
    return report.get("Type") == "SoftBounce" or report.get("type") == "blocked"


def delivery_id_of(event: AnymailTrackingEvent) -> str | None:
    """The delivery id the copy carried, as the provider reports it back."""
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    if metadata.get(METADATA_KEY):
        return str(metadata[METADATA_KEY])
    report = event.esp_event if isinstance(event.esp_event, dict) else {}
    mail = report.get("mail")
    headers = mail.get("headers", []) if isinstance(mail, dict) else []
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == (
            DELIVERY_HEADER.lower()
        ):
            return str(header.get("value", ""))
    return None


def event_key(event: AnymailTrackingEvent, source: str, kind: DeliveryEventKind) -> str:
    """The same for the same report delivered twice, different for any other."""
    if event.event_id:
        identity = f"{event.event_id}:{event.recipient}"
    else:
        payload = json.dumps(event.esp_event, sort_keys=True, default=str)
        identity = hashlib.sha256(f"{payload}:{event.recipient}".encode()).hexdigest()
    key = f"{source}:{kind}:{identity}"
    if len(key) > LONGEST_KEY:
        key = f"{source}:{kind}:{hashlib.sha256(identity.encode()).hexdigest()}"
    return key


# Connected when the URLconf imports this module, before any of these views can send it.
@receiver(tracking, dispatch_uid="mailinglist.webhooks.act_on_report")
def act_on_report(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    kind = kind_of(event)
    if kind is None:
        if event.event_type == EventType.REJECTED:
            logger.info(
                "%s refused a copy to %r (%s): not about the address; ignored",
                esp_name,
                event.recipient,
                event.reject_reason,
            )
        return
    source = SOURCE_OF_PROVIDER.get(esp_name, esp_name.lower())
    recipient = event.recipient if isinstance(event.recipient, str) else None
    delivery = reputation.find_delivery(delivery_id_of(event), recipient)
    if delivery is None:
        logger.warning(
            "%s report (%s) about %r matches no copy; ignored", esp_name, kind, recipient
        )
        return
    description = " ".join(
        part for part in (event.description, event.mta_response) if isinstance(part, str) and part
    )
    reputation.record(
        delivery,
        reputation.Report(kind, source, description, key=event_key(event, source, kind)),
    )
