"""Providers' bounce and complaint reports through the anymail webhooks, in each
provider's documented format."""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from mailinglist.models import (
    DeliveryEvent,
    Message,
    Subscriber,
    SubscriberMessage,
    Suppression,
)
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

SECRET = "reports:5ecret-word"
SIGNING_KEY = "key-mailgun-signing"


@pytest.fixture(autouse=True)
def _webhook_secrets(settings):
    settings.MAIL_APE_WEBHOOK_SECRET = SECRET
    settings.MAIL_APE_MAILGUN_WEBHOOK_SIGNING_KEY = SIGNING_KEY


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Send a new message to mailing_list's subscribers; returns it."""

    def send_to(mailing_list):
        with django_capture_on_commit_callbacks(execute=True):
            return MessageFactory(mailing_list=mailing_list)

    return send_to


@pytest.fixture
def copy(send):
    """A copy of a message sent to reader@example.com, as its delivery row."""
    mailing_list = MailingListFactory()
    SubscriberFactory(mailing_list=mailing_list, email="reader@example.com")
    SubscriberFactory(mailing_list=mailing_list, email="other@example.com")
    message = send(mailing_list)
    return SubscriberMessage.objects.get(message=message, subscriber__email="reader@example.com")


def auth(secret=SECRET):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def sns_post(client, sns_message, secret=SECRET):
    return client.post(
        "/anymail/amazon_ses/tracking/",
        json.dumps(sns_message),
        content_type="text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=sns_message["Type"],
        HTTP_X_AMZ_SNS_MESSAGE_ID=sns_message["MessageId"],
        **(auth(secret) if secret else {}),
    )


def ses_notification(ses_event, message_id=None):
    """An SNS notification carrying an SES event, as SNS posts it to an HTTPS endpoint."""
    return {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:mailape-ses-events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-12-02T12:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+..",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&...",
    }


def ses_mail(delivery_id, recipient="reader@example.com"):
    return {
        "timestamp": "2026-12-02T11:59:58.000Z",
        "source": "news@lists.example.com",
        "sourceArn": "arn:aws:ses:us-west-2:123456789012:identity/lists.example.com",
        "sendingAccountId": "123456789012",
        "messageId": "0101018f2b7e1c3a-ses-message-id-000000",
        "destination": [recipient],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "Ape news <news@lists.example.com>"},
            {"name": "To", "value": recipient},
            {"name": "X-Mail-Ape-Delivery", "value": str(delivery_id)},
        ],
        "commonHeaders": {"from": ["news@lists.example.com"], "to": [recipient]},
        "tags": {"ses:configuration-set": ["mailape"]},
    }


def ses_bounce(delivery_id, bounce_type="Permanent", sub_type="General"):
    return {
        "eventType": "Bounce",
        "bounce": {
            "feedbackId": "0101018f2b7e1c3a-feedback-000000",
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {
                    "emailAddress": "reader@example.com",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-12-02T12:00:00.000Z",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        },
        "mail": ses_mail(delivery_id),
    }


def ses_complaint(delivery_id):
    return {
        "eventType": "Complaint",
        "complaint": {
            "feedbackId": "0101018f2b7e1c3a-complaint-000000",
            "complaintSubType": None,
            "complainedRecipients": [{"emailAddress": "reader@example.com"}],
            "timestamp": "2026-12-02T12:00:00.000Z",
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2026-12-02T11:59:59.000Z",
        },
        "mail": ses_mail(delivery_id),
    }


def reader(copy):
    return Subscriber.objects.get(pk=copy.subscriber_id)


def is_suppressed(copy, address="reader@example.com"):
    owner = copy.message.mailing_list.owner_id
    return Suppression.objects.with_address(owner, address).first()


def test_an_ses_permanent_bounce_marks_the_copy_bounced_and_suppresses_the_address(client, copy):
    response = sns_post(client, ses_notification(ses_bounce(copy.pk)))

    assert response.status_code == 200
    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.BOUNCED
    assert reader(copy).status == "bounced"
    suppression = is_suppressed(copy)
    assert suppression.reason == Suppression.Reason.HARD_BOUNCE
    assert "amazon_ses" in suppression.source
    assert "550 5.1.1" in DeliveryEvent.objects.get(delivery=copy).description


def test_an_ses_transient_bounce_is_counted_as_soft(client, copy):
    sns_post(client, ses_notification(ses_bounce(copy.pk, "Transient", "MailboxFull")))

    event = DeliveryEvent.objects.get(delivery=copy)
    assert event.kind == DeliveryEvent.Kind.SOFT_BOUNCE
    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.SENT
    assert reader(copy).status == "confirmed"
    assert not is_suppressed(copy)


def test_soft_bounces_on_three_messages_suppress_the_address(client, copy, send):
    subscriber = reader(copy)
    copies = [copy] + [
        SubscriberMessage.objects.get(message=send(subscriber.mailing_list), subscriber=subscriber)
        for _ in range(2)
    ]
    for number, each in enumerate(copies, start=1):
        sns_post(client, ses_notification(ses_bounce(each.pk, "Transient", "General")))
        assert bool(is_suppressed(copy)) == (number == 3)

    assert is_suppressed(copy).reason == Suppression.Reason.SOFT_BOUNCES
    assert reader(copy).status == "bounced"


def test_an_ses_complaint_unsubscribes_and_suppresses(client, copy):
    sns_post(client, ses_notification(ses_complaint(copy.pk)))

    assert reader(copy).status == "unsubscribed"
    assert is_suppressed(copy).reason == Suppression.Reason.COMPLAINT


def test_the_same_notification_delivered_twice_counts_once(client, copy):
    notification = ses_notification(ses_complaint(copy.pk))

    assert sns_post(client, notification).status_code == 200
    assert sns_post(client, notification).status_code == 200

    assert DeliveryEvent.objects.filter(delivery=copy).count() == 1


def test_it_rejects_a_call_without_the_secret(client, copy):
    for secret in [None, "reports:wrong"]:
        response = sns_post(client, ses_notification(ses_bounce(copy.pk)), secret=secret)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Basic")

    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.SENT
    assert not DeliveryEvent.objects.exists()
    assert not Suppression.objects.exists()


def test_webhooks_are_off_without_a_secret(client, copy, settings):
    settings.MAIL_APE_WEBHOOK_SECRET = ""

    response = sns_post(client, ses_notification(ses_bounce(copy.pk)))

    assert response.status_code == 404
    assert not DeliveryEvent.objects.exists()


@pytest.mark.parametrize(
    "path", ["amazon_ses", "postmark", "sendgrid", "mailgun"], ids=lambda path: path
)
def test_it_answers_malformed_json_with_400(client, copy, path):
    response = client.post(
        f"/anymail/{path}/tracking/",
        b'{"Type": "Notification", "MessageId": ',
        content_type="application/json",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
        **auth(),
    )

    assert response.status_code == 400
    assert "error" in response.json()
    assert not DeliveryEvent.objects.exists()


def test_a_report_about_an_unknown_address_is_ignored(client, copy, caplog):
    event = ses_bounce(uuid.uuid4())
    event["bounce"]["bouncedRecipients"][0]["emailAddress"] = "stranger@example.org"

    response = sns_post(client, ses_notification(event))

    assert response.status_code == 200
    assert not DeliveryEvent.objects.exists()
    assert "matches no copy" in caplog.text


def test_without_the_delivery_header_the_most_recent_copy_to_the_address_is_used(
    client, copy, send
):
    later = SubscriberMessage.objects.get(
        message=send(copy.message.mailing_list),
        subscriber_id=copy.subscriber_id,
    )
    event = ses_bounce(copy.pk)
    event["mail"]["headers"] = [{"name": "To", "value": "reader@example.com"}]

    sns_post(client, ses_notification(event))

    assert DeliveryEvent.objects.get().delivery == later


def test_a_delivery_id_of_another_address_falls_back_to_the_address(client, copy):
    others = SubscriberMessage.objects.get(
        message=copy.message, subscriber__email="other@example.com"
    )

    sns_post(client, ses_notification(ses_bounce(others.pk)))

    assert DeliveryEvent.objects.get().delivery == copy
    others.refresh_from_db()
    assert others.status == SubscriberMessage.Status.SENT


class FakeSnsEndpoint(BaseHTTPRequestHandler):
    """Stands in for Amazon SNS's API: answers ConfirmSubscription and keeps each call."""

    calls: list[dict[str, list[str]]] = []

    def do_POST(self):
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        FakeSnsEndpoint.calls.append(form)
        body = (
            b'<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
            b"<ConfirmSubscriptionResult><SubscriptionArn>"
            b"arn:aws:sns:us-west-2:123456789012:mailape-ses-events:5f1e2d3c"
            b"</SubscriptionArn></ConfirmSubscriptionResult>"
            b"<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
            b"</ConfirmSubscriptionResponse>"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_it_confirms_an_sns_subscription_that_carries_the_secret(client, settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSnsEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.ANYMAIL = {
        "AMAZON_SES_CLIENT_PARAMS": {"endpoint_url": f"http://127.0.0.1:{server.server_port}"},
        "AMAZON_SES_SESSION_PARAMS": {
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        },
    }
    FakeSnsEndpoint.calls.clear()
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a7",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:mailape-ses-events",
        "Message": "You have chosen to subscribe to the topic ...",
        "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&...",
        "Timestamp": "2026-12-02T12:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+..",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
    }
    try:
        assert sns_post(client, confirmation, secret=None).status_code == 401
        assert FakeSnsEndpoint.calls == []

        response = sns_post(client, confirmation)
    finally:
        server.shutdown()

    assert response.status_code == 200
    [call] = FakeSnsEndpoint.calls
    assert call["Action"] == ["ConfirmSubscription"]
    assert call["Token"] == [confirmation["Token"]]
    assert call["TopicArn"] == [confirmation["TopicArn"]]


def postmark_post(client, payload, secret=SECRET):
    return client.post(
        "/anymail/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        **(auth(secret) if secret else {}),
    )


def postmark_record(copy, record_type, bounce_type, type_code, details):
    return {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": bounce_type,
        "TypeCode": type_code,
        "Name": bounce_type,
        "Tag": "",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"mailape": str(copy.pk)},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message.",
        "Details": details,
        "Email": "reader@example.com",
        "From": "news@lists.example.com",
        "BouncedAt": "2026-12-02T12:00:00Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Issue 1",
    }


def test_a_postmark_hard_bounce_suppresses(client, copy):
    payload = postmark_record(copy, "Bounce", "HardBounce", 1, "smtp;550 5.1.1 unknown user")

    assert postmark_post(client, payload).status_code == 200

    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.BOUNCED
    assert is_suppressed(copy).reason == Suppression.Reason.HARD_BOUNCE


def test_a_postmark_soft_bounce_is_counted_as_soft(client, copy):
    payload = postmark_record(copy, "Bounce", "SoftBounce", 4096, "mailbox full")

    postmark_post(client, payload)

    assert DeliveryEvent.objects.get().kind == DeliveryEvent.Kind.SOFT_BOUNCE
    assert not is_suppressed(copy)


def test_a_postmark_spam_complaint_unsubscribes(client, copy):
    payload = postmark_record(copy, "SpamComplaint", "SpamComplaint", 512, "")

    postmark_post(client, payload)

    assert reader(copy).status == "unsubscribed"
    assert is_suppressed(copy).reason == Suppression.Reason.COMPLAINT


def test_postmark_without_the_secret_is_refused(client, copy):
    payload = postmark_record(copy, "Bounce", "HardBounce", 1, "")

    assert postmark_post(client, payload, secret=None).status_code == 401
    assert not DeliveryEvent.objects.exists()


def sendgrid_event(copy, event, **extra):
    return {
        "email": "reader@example.com",
        "timestamp": 1796212800,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": [],
        "sg_event_id": f"sg-{event}-{copy.pk.hex[:8]}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "mailape": str(copy.pk),
        **extra,
    }


def sendgrid_post(client, events):
    return client.post(
        "/anymail/sendgrid/tracking/",
        json.dumps(events),
        content_type="application/json",
        **auth(),
    )


def test_sendgrid_bounces_and_spam_reports_are_acted_on(client, copy):
    other = SubscriberMessage.objects.get(
        message=copy.message, subscriber__email="other@example.com"
    )
    events = [
        sendgrid_event(
            copy,
            "bounce",
            reason="550 5.1.1 The email account that you tried to reach does not exist.",
            status="5.1.1",
            type="bounce",
        ),
        {**sendgrid_event(other, "spamreport"), "email": "other@example.com"},
    ]

    assert sendgrid_post(client, events).status_code == 200

    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.BOUNCED
    assert Subscriber.objects.get(pk=other.subscriber_id).status == "unsubscribed"
    assert is_suppressed(copy, "other@example.com").reason == Suppression.Reason.COMPLAINT


def test_a_sendgrid_deferral_is_a_soft_bounce(client, copy):
    event = sendgrid_event(copy, "deferred", response="450 mailbox temporarily unavailable")

    sendgrid_post(client, [event])

    assert DeliveryEvent.objects.get().kind == DeliveryEvent.Kind.SOFT_BOUNCE


def mailgun_payload(copy, event, severity=None, token=None):
    token = token or uuid.uuid4().hex
    timestamp = str(int(time.time()))
    signature = hmac.new(
        SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    event_data = {
        "event": event,
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": float(timestamp),
        "recipient": "reader@example.com",
        "user-variables": {"mailape": str(copy.pk)},
        "message": {"headers": {"message-id": f"{copy.pk}@lists.example.com"}},
        "tags": [],
    }
    if event == "failed":
        event_data |= {
            "severity": severity,
            "reason": "bounce" if severity == "permanent" else "generic",
            "delivery-status": {
                "code": 550 if severity == "permanent" else 452,
                "message": "5.1.1 The email account does not exist"
                if severity == "permanent"
                else "4.2.2 Mailbox full",
                "description": "",
            },
        }
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event_data,
    }


def mailgun_post(client, payload):
    return client.post(
        "/anymail/mailgun/tracking/",
        json.dumps(payload),
        content_type="application/json",
        **auth(),
    )


def test_a_mailgun_permanent_failure_suppresses(client, copy):
    assert mailgun_post(client, mailgun_payload(copy, "failed", "permanent")).status_code == 200

    copy.refresh_from_db()
    assert copy.status == SubscriberMessage.Status.BOUNCED
    assert is_suppressed(copy).reason == Suppression.Reason.HARD_BOUNCE


def test_a_mailgun_temporary_failure_is_soft(client, copy):
    mailgun_post(client, mailgun_payload(copy, "failed", "temporary"))

    assert DeliveryEvent.objects.get().kind == DeliveryEvent.Kind.SOFT_BOUNCE


def test_a_mailgun_complaint_unsubscribes(client, copy):
    mailgun_post(client, mailgun_payload(copy, "complained"))

    assert reader(copy).status == "unsubscribed"


def test_a_mailgun_call_with_a_bad_signature_changes_nothing(client, copy):
    payload = mailgun_payload(copy, "failed", "permanent")
    payload["signature"]["signature"] = "0" * 64

    assert mailgun_post(client, payload).status_code == 400
    assert not DeliveryEvent.objects.exists()


def test_a_complaint_rate_above_the_limit_pauses_a_message_going_out(client, settings, send):
    settings.MAIL_APE_PAUSE_MIN_ATTEMPTS = 10
    mailing_list = MailingListFactory()
    for number in range(20):
        SubscriberFactory(mailing_list=mailing_list, email=f"reader{number}@example.com")
    message = send(mailing_list)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENDING, finished=None)
    copy = message.subscribermessage_set.select_related("subscriber").first()
    complaint = ses_complaint(copy.pk)
    complaint["complaint"]["complainedRecipients"][0]["emailAddress"] = copy.subscriber.email

    sns_post(client, ses_notification(complaint))

    message.refresh_from_db()
    assert message.status == Message.Status.PAUSED
    assert "spam complaint" in message.pause_reason


def test_a_sendgrid_drop_for_a_bounced_address_is_a_hard_bounce(client, copy):
    event = sendgrid_event(copy, "dropped", reason="Bounced Address", status="5.0.0")

    sendgrid_post(client, [event])

    assert DeliveryEvent.objects.get().kind == DeliveryEvent.Kind.HARD_BOUNCE
    assert is_suppressed(copy).reason == Suppression.Reason.HARD_BOUNCE


def test_an_ses_reject_for_the_content_leaves_the_address_alone(client, copy):
    reject = {
        "eventType": "Reject",
        "reject": {"reason": "Bad content"},
        "mail": ses_mail(copy.pk),
    }

    assert sns_post(client, ses_notification(reject)).status_code == 200

    assert not DeliveryEvent.objects.exists()
    assert not is_suppressed(copy)
    assert reader(copy).status == "confirmed"
