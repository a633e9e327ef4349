import json
import logging
import uuid
from datetime import timedelta
from email.utils import formataddr

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Cast, Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from mailinglist import queueing
from mailinglist.delivery.states import (
    EDITABLE_MESSAGE_STATES,
    FINAL_MESSAGE_STATES,
    UNDELIVERED,
    DeliveryState,
    DeliveryTransition,
    MessageState,
    MessageTransition,
    Transition,
)
from mailinglist.imports.states import FINAL_IMPORT_STATES, ImportedStatus, ImportState
from mailinglist.markdown import render_markdown
from mailinglist.merge_tags import validate_merge_tags
from mailinglist.throttles import ConfirmationsPerAddressThrottle
from mailinglist.validators import (
    validate_from_address,
    validate_message_body,
    validate_sendable_address,
    validate_single_line,
    validate_subscriber_fields,
)

logger = logging.getLogger(__name__)

CONFIRMATION_RESEND_SECONDS = 600
# A scheduled message that goes out later than this after its time says so.
SCHEDULE_TOLERANCE = timedelta(minutes=1)
UUID_SPACE = 2**128


class MailingListQuerySet(models.QuerySet):
    def usable_by(self, user):
        """The lists user may manage: the queryset form of user_can_use_mailing_list."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)

    def erase(self):
        """Delete these lists with everything under them.

        Django's cascade would first load every subscriber and delivery row into memory,
        minutes and gigabytes for a list of a million; the tables that grow with the
        audience are emptied first, children before parents, each by one DELETE
        (Django's own fast delete), and the cascade then finds only the few rows left."""
        lists = self.values("pk")
        for rows in (
            DeliveryEvent.objects.filter(message__mailing_list__in=lists),
            SubscriberMessage.objects.filter(message__mailing_list__in=lists),
            SubscriberImportChunk.objects.filter(subscriber_import__mailing_list__in=lists),
            SubscriberImportRejection.objects.filter(subscriber_import__mailing_list__in=lists),
            Subscriber.objects.filter(mailing_list__in=lists),
        ):
            rows._raw_delete(rows.db)
        self.delete()


class MailingList(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=140, validators=[validate_single_line])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created = models.DateTimeField(default=timezone.now, editable=False)
    # The list's own identity in its e-mails and on its subscriber pages.
    from_name = models.CharField(
        _("sender's name"),
        max_length=100,
        blank=True,
        validators=[validate_single_line],
        help_text=_("The sender's name in readers' inboxes; the list's name if empty."),
    )
    from_email = models.EmailField(
        _("sender's address"),
        blank=True,
        validators=[validate_from_address],
        help_text=_("The sender's address; Mail Ape's own if empty."),
    )
    reply_to = models.EmailField(
        _("reply-to address"),
        blank=True,
        validators=[validate_sendable_address],
        help_text=_("Where readers' replies go, if not to the sender's address."),
    )
    description = models.TextField(
        blank=True, max_length=2000, help_text=_("Shown on the subscribe page.")
    )
    thank_you_text = models.TextField(
        _("text after subscribing"),
        blank=True,
        max_length=10_000,
        help_text=_("Markdown shown to a visitor who has just subscribed."),
    )
    confirmation_text = models.TextField(
        _("text after confirming"),
        blank=True,
        max_length=10_000,
        help_text=_("Markdown shown to a subscriber who has just confirmed."),
    )
    subscribed_url = models.URLField(
        _("page after subscribing"),
        blank=True,
        help_text=_("A page of your own to send visitors to after subscribing, instead."),
    )
    confirmed_url = models.URLField(
        _("page after confirming"),
        blank=True,
        help_text=_("A page of your own to send subscribers to after confirming, instead."),
    )
    archive = models.BooleanField(
        _("public archive"),
        default=False,
        help_text=_("Publish the messages sent to this list on a public page and Atom feed."),
    )
    language = models.CharField(
        _("language"),
        max_length=15,
        choices=settings.LANGUAGES,
        default="en",
        help_text=_("The language of the list's pages and of the e-mails its subscribers get."),
    )

    objects = MailingListQuerySet.as_manager()

    # What the owner sets on the list's settings page and through the API.
    IDENTITY_FIELDS = [
        "from_name",
        "from_email",
        "reply_to",
        "description",
        "thank_you_text",
        "confirmation_text",
        "subscribed_url",
        "confirmed_url",
        "archive",
    ]

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("mailinglist:manage_mailinglist", kwargs={"pk": self.pk})

    def user_can_use_mailing_list(self, user):
        return user.is_authenticated and self.owner_id == user.pk

    @property
    def sender(self):
        """The From header of the list's e-mails."""
        return formataddr(
            (self.from_name or self.name, self.from_email or settings.MAIL_APE_FROM_EMAIL),
            settings.DEFAULT_CHARSET,
        )

    def sent_messages(self):
        return self.message_set.sent()

    def subscribers_with_addresses(self, addresses):
        """The list's subscribers whose address, in lower case, is one of addresses (in
        lower case), each with it as .address.

        Only the unique index on (lower-case address, list) serves this well. Right
        after a big import the planner's statistics still say the list is small, and
        it would walk the whole list through the list's own index for each lookup;
        comparing the list's id as text keeps that index out of the plan. (SQLite
        stores the id in another form, and plans this well anyway.)
        """
        found = Subscriber.objects.annotate(address=Lower("email")).filter(address_among(addresses))
        if connection.vendor != "postgresql":
            return found.filter(mailing_list=self)
        return found.annotate(list_id_text=Cast("mailing_list_id", models.TextField())).filter(
            list_id_text=str(self.pk)
        )

    def status_counts(self):
        """Subscribers in all and by status, each as (count, exact).

        Exact for a list of up to EXACT_COUNT_LIMIT, which one capped pass counts;
        above that, on PostgreSQL, the planner's estimates, so that a page of a list
        of a million costs no more than one of ten. SQLite counts everything.
        """
        subscribers = self.subscriber_set.order_by()
        if connection.vendor == "postgresql":
            capped = subscribers[: EXACT_COUNT_LIMIT + 1]
            if capped.count() > EXACT_COUNT_LIMIT:
                return {
                    "total": (subscribers.estimated_count(), False),
                    **{
                        name: (subscribers.with_status(name).estimated_count(), False)
                        for name in SUBSCRIBER_STATUSES
                    },
                }
        counts = subscribers.aggregate(
            total=Count("pk"),
            **{
                f"{name}_count": Count("pk", filter=condition)
                for name, condition in STATUS_CONDITIONS.items()
            },
        )
        return {name.removesuffix("_count"): (count, True) for name, count in counts.items()}

    def subscriber_counts(self):
        """Every subscriber, and the confirmed ones, in one pass over the list's index."""
        counts = self.subscriber_set.aggregate(
            total=Count("pk"), confirmed_count=Count("pk", filter=Q(confirmed=True))
        )
        return {"total": counts["total"], "confirmed": counts["confirmed_count"]}

    def refused_addresses(self, addresses, on_the_list):
        """Which of addresses (in lower case) nobody but the person may put on the list,
        each with why: those on the owner's suppression list, and those of its
        subscribers on_the_list who unsubscribed."""
        refused = {
            subscriber.email.lower(): "unsubscribed from the list; not subscribed again"
            for subscriber in on_the_list
            if subscriber.unsubscribed is not None
        }
        for address, reason in Suppression.objects.reasons_for(self.owner_id, addresses).items():
            refused.setdefault(address, f"on your suppression list ({reason.label.lower()})")
        return refused


@models.CharField.register_lookup
class AnyOf(models.Lookup):
    """text__any_of=[...] on PostgreSQL: equal to one of the list, sent as one array."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


def address_among(addresses):
    """A filter of rows annotated with an address to those whose address is one of
    addresses. On PostgreSQL they travel as one array: as a parameter each, an import
    batch's five thousand took longer to put into the query than to look up."""
    if connection.vendor == "postgresql":
        return Q(address__any_of=list(addresses))
    return Q(address__in=list(addresses))


# Lists longer than this are counted from the planner's statistics on owner pages.
EXACT_COUNT_LIMIT = 10_000
# What Subscriber.status can be, and SubscriberQuerySet.with_status filters by.
STATUS_CONDITIONS = {
    "confirmed": Q(confirmed=True),
    "unconfirmed": Q(confirmed=False, unsubscribed__isnull=True, bounced__isnull=True),
    "unsubscribed": Q(confirmed=False, unsubscribed__isnull=False),
    "bounced": Q(confirmed=False, unsubscribed__isnull=True, bounced__isnull=False),
}
SUBSCRIBER_STATUSES = tuple(STATUS_CONDITIONS)
# As the owner's pages name a status in a sentence ("3 confirmed", "confirmed · since …").
SUBSCRIBER_STATUS_NAMES = {
    "confirmed": pgettext_lazy("subscriber status", "confirmed"),
    "unconfirmed": pgettext_lazy("subscriber status", "unconfirmed"),
    "unsubscribed": pgettext_lazy("subscriber status", "unsubscribed"),
    "bounced": pgettext_lazy("subscriber status", "bounced"),
}
# As a choice of statuses names them.
SUBSCRIBER_STATUS_LABELS = {
    "confirmed": _("Confirmed"),
    "unconfirmed": _("Unconfirmed"),
    "unsubscribed": _("Unsubscribed"),
    "bounced": _("Bounced"),
}


class SubscriberQuerySet(models.QuerySet):
    def usable_by(self, user):
        return self.filter(mailing_list__in=MailingList.objects.usable_by(user))

    def with_status(self, status):
        """Subscribers whose status (see Subscriber.status) is status, or all for None."""
        return self.filter(STATUS_CONDITIONS[status]) if status else self

    def count_quickly(self, exact_up_to=EXACT_COUNT_LIMIT):
        """How many there are, and whether that is exact: exactly up to exact_up_to;
        above that, on PostgreSQL, the planner's estimate, which costs a millisecond
        where counting a list of a million takes a tenth of a second."""
        if connection.vendor != "postgresql":
            return self.count(), True
        counted = self.order_by()[: exact_up_to + 1].count()
        if counted <= exact_up_to:
            return counted, True
        return max(self.estimated_count(), counted), False

    def estimated_count(self):
        """The planner's estimate of how many there are (PostgreSQL only)."""
        plan = self.order_by().explain(format="json")
        return int(json.loads(plan)[0]["Plan"]["Plan Rows"])

    def search(self, text):
        """Subscribers whose address holds text, in any letter case (a trigram index
        serves it on PostgreSQL)."""
        return self.filter(email__icontains=text) if text else self


class SubscriberManager(models.Manager.from_queryset(SubscriberQuerySet)):  # type: ignore[misc]
    def confirmed_subscribers_for_mailing_list(self, mailing_list):
        return self.filter(mailing_list=mailing_list, confirmed=True)

    def add_by_owner(self, mailing_list, email, name="", confirmed=False):
        """The owner adds someone by hand: confirmed if they said they agreed, else sent
        a confirmation. An address on the list, or one that left it, is refused: only
        its owner may subscribe it again."""
        refusal = Suppression.objects.refusal(mailing_list.owner_id, email)
        if refusal is not None:
            raise ValidationError(refusal, code="suppressed")
        existing = self.filter(mailing_list=mailing_list, email__iexact=email).first()
        if existing is not None and existing.unsubscribed is not None:
            raise ValidationError(
                _("%(email)s unsubscribed from this list; only they can subscribe again."),
                code="unsubscribed",
                params={"email": existing.email},
            )
        if existing is not None:
            raise ValidationError(
                Subscriber._meta.constraints[0].violation_error_message, code="unique"
            )
        try:
            with transaction.atomic():
                return self.create(
                    mailing_list=mailing_list, email=email, name=name, confirmed=confirmed
                )
        except IntegrityError:
            raise ValidationError(
                Subscriber._meta.constraints[0].violation_error_message, code="unique"
            ) from None

    def subscribe(self, mailing_list, email):
        """Add email to the list, or ask again for a confirmation that is still missing.

        A confirmed subscriber is left alone, and an unconfirmed one is asked again
        at most every few minutes, so that a stranger cannot use the form to flood
        an inbox; a suppressed address is neither added nor mailed. The page the
        visitor sees is the same whatever happened; None when nothing was added.
        """
        if Suppression.objects.refusal(mailing_list.owner_id, email) is not None:
            return None
        subscriber = self.filter(mailing_list=mailing_list, email__iexact=email).first()
        if subscriber is None:
            try:
                with transaction.atomic():
                    return self.create(mailing_list=mailing_list, email=email)
            except IntegrityError:
                subscriber = self.get(mailing_list=mailing_list, email__iexact=email)
        if not subscriber.confirmed:
            subscriber.request_confirmation()
        return subscriber


class Subscriber(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(validators=[validate_sendable_address])
    name = models.CharField(max_length=200, blank=True, validators=[validate_single_line])
    # The owner's own columns (company, city, …): text values under lower-case keys,
    # which messages can show through merge tags such as {{ fields.company }}.
    fields = models.JSONField(default=dict, blank=True, validators=[validate_subscriber_fields])
    confirmed = models.BooleanField(default=False)
    # The (mailing_list, id) index below serves lookups by list too.
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE, db_index=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    unsubscribed = models.DateTimeField(null=True, blank=True, editable=False)
    # When mail to the address bounced for good; it is on the owner's suppression list.
    bounced = models.DateTimeField(null=True, blank=True, editable=False)
    # The import that last added or updated the subscriber: a second row with the same
    # address in that file is a duplicate. Not a foreign key, so that importing a
    # million rows pays no constraint check per row.
    imported_by = models.UUIDField(null=True, blank=True, editable=False)

    objects = SubscriberManager()

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "mailing_list",
                name="unique_subscriber_email_per_list",
                violation_error_message=_("This e-mail address is already on the list."),
            )
        ]
        indexes = [
            # Delivery rows are made for one slice of a list's subscriber ids at a time.
            models.Index(fields=["mailing_list", "id"], name="subscriber_list_order"),
            # The manage page and the API list a list's subscribers by address, and
            # those of the few statuses through indexes of their own. Holding the id,
            # this one also finds a deep page's ids without reading the table.
            models.Index(fields=["mailing_list", "email", "id"], name="subscriber_list_email_id"),
            models.Index(
                fields=["mailing_list", "email"],
                name="subscriber_unconfirmed",
                condition=Q(confirmed=False, unsubscribed__isnull=True),
            ),
            models.Index(
                fields=["mailing_list", "email"],
                name="subscriber_unsubscribed",
                condition=Q(unsubscribed__isnull=False),
            ),
        ]
        # On PostgreSQL, migration 0008 adds a trigram index for searching addresses.

    def __str__(self):
        return self.email

    def save(self, *args, **kwargs):
        is_new = self._state.adding
        super().save(*args, **kwargs)
        if is_new and not self.confirmed:
            self.request_confirmation()

    def request_confirmation(self):
        """Queue a confirmation e-mail, unless claim_confirmation says no; returns whether
        one was queued."""
        if not self.claim_confirmation():
            return False
        queueing.after_commit(queueing.SEND_CONFIRMATION_EMAIL, str(self.pk))
        return True

    def request_confirmation_again(self):
        """Queue another confirmation e-mail, as subscribing again would (see
        SubscriberManager.subscribe): only if one is still missing, within the limits of
        claim_confirmation and never to a suppressed address; returns whether one was queued."""
        if self.confirmed:
            return False
        if Suppression.objects.refusal(self.mailing_list.owner_id, self.email) is not None:
            return False
        return self.request_confirmation()

    def claim_confirmation(self):
        """Whether a confirmation e-mail may go out now: not if one went to this subscriber
        in the last few minutes, or the address has had its share of them from every list."""
        if not cache.add(f"confirmation-requested:{self.pk}", True, CONFIRMATION_RESEND_SECONDS):
            return False
        if not ConfirmationsPerAddressThrottle(self.email).allow_request(None, None):
            logger.warning(
                "No confirmation e-mail to subscriber %s: address limit reached", self.pk
            )
            return False
        return True

    @property
    def status(self):
        if self.confirmed:
            return "confirmed"
        if self.unsubscribed:
            return "unsubscribed"
        return "bounced" if self.bounced else "unconfirmed"

    @property
    def status_name(self):
        return SUBSCRIBER_STATUS_NAMES[self.status]

    def confirm(self):
        self.confirmed = True
        self.unsubscribed = None
        self.bounced = None
        self.save(update_fields=["confirmed", "unsubscribed", "bounced"])

    def mark_bounced(self):
        """Stop all mail to an address that does not exist, copies still going out included."""
        with transaction.atomic():
            self.confirmed = False
            self.bounced = self.bounced or timezone.now()
            self.save(update_fields=["confirmed", "bounced"])
            self.subscribermessage_set.apply(DeliveryTransition.SUPPRESS, available_at=None)

    def unsubscribe(self):
        """Stop all mail to this address, including copies of a message still going out."""
        with transaction.atomic():
            self.confirmed = False
            self.unsubscribed = self.unsubscribed or timezone.now()
            self.save(update_fields=["confirmed", "unsubscribed"])
            self.subscribermessage_set.apply(DeliveryTransition.SKIP, available_at=None)


class MessageQuerySet(models.QuerySet):
    def usable_by(self, user):
        return self.filter(mailing_list__in=MailingList.objects.usable_by(user))

    def sent(self):
        """Messages that went out, or are going out, and were not cancelled: what an
        archive shows and a "view in your browser" link may open."""
        return self.filter(queued__isnull=False).exclude(status=MessageState.CANCELLED)


class Message(models.Model):
    Status = MessageState

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE)
    subject = models.CharField(
        max_length=140, validators=[validate_single_line, validate_merge_tags]
    )
    body = models.TextField(validators=[validate_message_body, validate_merge_tags])
    # The body as HTML, rendered whenever the body is saved rather than on every view.
    html = models.TextField(default="", editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    # When a scheduled message is to go out.
    send_at = models.DateTimeField(null=True, blank=True)
    # When the message was handed to delivery; the subscribers confirmed then who had
    # joined by then are its recipients.
    queued = models.DateTimeField(null=True, blank=True, editable=False)
    started = models.DateTimeField(null=True, blank=True, editable=False)
    finished = models.DateTimeField(null=True, blank=True, editable=False)
    status = models.CharField(
        max_length=10, choices=MessageState.choices, default=MessageState.SENDING, editable=False
    )
    # When a delivery task was last queued or last claimed a batch: the sweep
    # re-queues only messages that have gone quiet, not ones being worked on.
    delivery_activity = models.DateTimeField(null=True, blank=True, editable=False)
    # Delivery rows are made as workers claim batches, a slice of the subscriber
    # id space at a time: fan_out_slices equal slices, of about a batch of
    # recipients each since ids are random, of which fan_out_slices_done have rows.
    # The first claim sets fan_out_slices, when the message starts.
    fan_out_slices = models.PositiveIntegerField(null=True, blank=True, editable=False)
    fan_out_slices_done = models.PositiveIntegerField(default=0, editable=False)
    # When every recipient had a delivery row: until then the message cannot be
    # finished, even if every row made so far has been sent.
    fanned_out = models.DateTimeField(null=True, blank=True, editable=False)
    # Why the guardrails paused the message; empty when the owner paused it, or it is not.
    pause_reason = models.CharField(max_length=300, blank=True, default="", editable=False)
    # The owner resumed the message after the guardrails paused it: they stay off for it.
    guardrails_overridden = models.BooleanField(default=False, editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return self.subject

    def save(self, *args, **kwargs):
        """Save, rendering the body if it may have changed; a new message saved as sending
        (the default, as in the book) is handed to delivery once the transaction commits."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "body" in update_fields:
            self.render()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "html"}
        going_out = self._state.adding and self.status == MessageState.SENDING
        if going_out:
            self.queued = timezone.now()
        super().save(*args, **kwargs)
        if going_out:
            self.queue_delivery(workers=settings.MAIL_APE_DELIVERY_PARALLELISM)

    def get_absolute_url(self):
        return reverse("mailinglist:view_message", kwargs={"pk": self.pk})

    def render(self):
        self.html = render_markdown(self.body)

    def recipients(self):
        """Who gets this message: the subscribers who had joined when it was handed to
        delivery (or, before that, by now) and are confirmed now."""
        return Subscriber.objects.filter(
            mailing_list_id=self.mailing_list_id,
            confirmed=True,
            created__lte=self.queued or timezone.now(),
        )

    def recipients_without_row(self):
        """Recipients whose slice has no delivery rows yet."""
        if self.fanned_out is not None:
            return Subscriber.objects.none()
        return self.recipients().filter(pk__gte=self.slice_bounds(self.fan_out_slices_done)[0])

    def recipients_in_slice(self, number):
        low, high = self.slice_bounds(number)
        recipients = self.recipients().filter(pk__gte=low)
        return recipients if high is None else recipients.filter(pk__lt=high)

    def slice_bounds(self, number):
        """The first subscriber id of slice number and of the next one (None after the last)."""
        slices = self.fan_out_slices or 1
        low = uuid.UUID(int=number * UUID_SPACE // slices)
        high = None if number + 1 >= slices else uuid.UUID(int=(number + 1) * UUID_SPACE // slices)
        return low, high

    def delivery_counts(self):
        """Copies by state, counting recipients whose row is not made yet as pending
        (or, once the message is cancelled, as skipped). A message not handed to
        delivery yet has no copies."""
        if self.queued is None:
            return dict.fromkeys(
                ["total", "sent", "failed", "bounced", "pending", "skipped", "suppressed"], 0
            ) | {"percent_done": 0}
        counts = self.subscribermessage_set.aggregate(
            total=Count("pk"),
            sent=Count("pk", filter=Q(status=DeliveryState.SENT)),
            failed=Count("pk", filter=Q(status=DeliveryState.FAILED)),
            bounced=Count("pk", filter=Q(status=DeliveryState.BOUNCED)),
            suppressed=Count("pk", filter=Q(status=DeliveryState.SUPPRESSED)),
            pending=Count("pk", filter=Q(status__in=UNDELIVERED)),
            skipped=Count(
                "pk", filter=Q(status__in=[DeliveryState.SKIPPED, DeliveryState.CANCELLED])
            ),
        )
        without_row = self.recipients_without_row().count()
        counts["total"] += without_row
        counts["skipped" if self.status == MessageState.CANCELLED else "pending"] += without_row
        done = counts["total"] - counts["pending"]
        counts["percent_done"] = round(100 * done / counts["total"]) if counts["total"] else 100
        return counts

    @property
    def is_final(self):
        return self.status in FINAL_MESSAGE_STATES

    @property
    def is_editable(self):
        return self.status in EDITABLE_MESSAGE_STATES

    @property
    def started_late_by(self):
        """How long after its time a scheduled message went out, if that was noticeably late."""
        if self.send_at is None or self.queued is None:
            return None
        lateness = self.queued - self.send_at
        return lateness if lateness > SCHEDULE_TOLERANCE else None

    def owner_controls(self):
        """The moves the owner may make now, for the message page's buttons."""
        return [
            transition
            for transition in MessageTransition.OWNER_CONTROLS
            if transition.allowed_from(self.status)
        ]

    def apply(self, transition: Transition, condition=None, **changes):
        """Make the move if the message is still in a state it leaves (and meets condition,
        a Q or expression); returns whether it was made."""
        moved = (
            Message.objects.filter(pk=self.pk, status__in=transition.sources)
            .filter(condition or Q())
            .update(status=transition.target, **changes)
        )
        self.refresh_from_db(
            fields=[
                "status",
                "finished",
                "send_at",
                "queued",
                "pause_reason",
                "guardrails_overridden",
            ]
        )
        return bool(moved)

    def edit(self, subject, body):
        """Change what the message says, as long as nobody has been sent a copy yet;
        returns whether it still could be changed."""
        self.subject, self.body = subject, body
        self.render()
        edited = Message.objects.filter(pk=self.pk, status__in=EDITABLE_MESSAGE_STATES).update(
            subject=subject, body=body, html=self.html
        )
        return bool(edited)

    def send(self):
        """Hand a draft, or a scheduled message ahead of its time, to delivery now."""
        with transaction.atomic():
            sent = self.apply(MessageTransition.SEND, queued=timezone.now(), send_at=None)
            if sent:
                self.queue_delivery(workers=settings.MAIL_APE_DELIVERY_PARALLELISM)
        return sent

    def schedule(self, send_at):
        """Set, or move, the time the message goes out."""
        return self.apply(MessageTransition.SCHEDULE, send_at=send_at)

    def unschedule(self):
        """Take a scheduled message back to a draft."""
        return self.apply(MessageTransition.UNSCHEDULE, send_at=None)

    def start_if_due(self, now):
        """Hand a scheduled message to delivery if its time has come; the scheduler calls this."""
        with transaction.atomic():
            started = self.apply(MessageTransition.START, Q(send_at__lte=now), queued=now)
            if started:
                self.queue_delivery(workers=settings.MAIL_APE_DELIVERY_PARALLELISM)
        return started

    def pause(self, reason=""):
        """Stop new claims; copies already handed to the SMTP server are still recorded."""
        return self.apply(MessageTransition.PAUSE, pause_reason=reason)

    def resume(self):
        overridden = self.guardrails_overridden or bool(self.pause_reason)
        resumed = self.apply(
            MessageTransition.RESUME, pause_reason="", guardrails_overridden=overridden
        )
        if resumed:
            self.queue_delivery(workers=settings.MAIL_APE_DELIVERY_PARALLELISM)
        return resumed

    def cancel(self):
        """Stop the message; a copy already handed to the SMTP server is still recorded as sent."""
        with transaction.atomic():
            cancelled = self.apply(MessageTransition.CANCEL, finished=timezone.now())
            if cancelled:
                self.subscribermessage_set.apply(DeliveryTransition.CANCEL, available_at=None)
        return cancelled

    def finish_if_done(self):
        """Mark the message finished once no recipient is waiting; returns whether it is."""
        owed = SubscriberMessage.objects.filter(message=OuterRef("pk")).undelivered()
        self.apply(
            MessageTransition.FINISH,
            Q(fanned_out__isnull=False) & ~Exists(owed),
            finished=timezone.now(),
        )
        return self.status == MessageState.FINISHED

    def note_delivery_activity(self):
        Message.objects.filter(pk=self.pk).update(delivery_activity=timezone.now())

    def queue_delivery(self, workers=1, countdown=0):
        """Set workers delivery tasks on the message once the transaction commits."""
        self.note_delivery_activity()
        for _worker in range(workers):
            queueing.after_commit(
                queueing.SEND_SUBSCRIBER_MESSAGES, str(self.pk), countdown=countdown
            )


class SubscriberMessageQuerySet(models.QuerySet):
    def undelivered(self):
        return self.filter(status__in=UNDELIVERED)

    def due(self, now=None):
        return self.undelivered().filter(available_at__lte=now or timezone.now())

    def apply(self, transition: Transition, **changes):
        """Move the rows that transition allows to leave their state, and only those."""
        return self.filter(status__in=transition.sources).update(
            status=transition.target, **changes
        )


class SubscriberMessage(models.Model):
    Status = DeliveryState

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The unique (message, subscriber) constraint already indexes message first.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, db_index=False)
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE)
    created = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_attempt = models.DateTimeField(null=True, blank=True)
    sent = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # For a pending row, when it may next be tried; for a sending row, when its lease runs out.
    available_at = models.DateTimeField(null=True, blank=True)

    objects = SubscriberMessageQuerySet.as_manager()

    class Meta:
        ordering = ["created"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "subscriber"], name="unique_delivery_per_message_subscriber"
            )
        ]
        indexes = [
            models.Index(
                fields=["message", "available_at"],
                name="subscribermessage_due",
                condition=Q(status__in=list(UNDELIVERED)),
            )
        ]

    def __str__(self):
        return f"{self.message} → {self.subscriber}"


class SubscriberImportQuerySet(models.QuerySet):
    def usable_by(self, user):
        return self.filter(mailing_list__in=MailingList.objects.usable_by(user))


class SubscriberImport(models.Model):
    """A CSV file of subscribers, stored in chunks and imported by a Celery job.

    The job commits its rows a batch at a time together with rows_done and the
    counts, so a job whose worker died carries on after its last batch: no row is
    lost or counted twice.
    """

    Status = ImportState

    SubscriberStatus = ImportedStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE)
    subscriber_status = models.CharField(max_length=11, choices=SubscriberStatus.choices)
    status = models.CharField(
        max_length=9, choices=ImportState.choices, default=ImportState.QUEUED, editable=False
    )
    file_name = models.CharField(max_length=255, blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    # What reading the file found: its encoding, dialect and columns, the first rows
    # as they will be stored, and how many rows are invalid.
    analysis = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created = models.DateTimeField(default=timezone.now, editable=False)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # When a worker last committed a batch: a running job quiet for long has lost its worker.
    activity = models.DateTimeField(null=True, blank=True)
    # Data rows of the file whose outcome is committed; a restarted job skips them.
    rows_done = models.PositiveBigIntegerField(default=0)
    added = models.PositiveBigIntegerField(default=0)
    updated = models.PositiveBigIntegerField(default=0)
    duplicates = models.PositiveBigIntegerField(default=0)
    invalid = models.PositiveBigIntegerField(default=0)
    suppressed = models.PositiveBigIntegerField(default=0)
    # Of an unconfirmed import's new subscribers (in id order), the last one whose
    # confirmation e-mail has been dealt with.
    confirmations_through = models.UUIDField(null=True, blank=True, editable=False)

    objects = SubscriberImportQuerySet.as_manager()

    COUNTS = ["rows", "added", "updated", "duplicates", "invalid", "suppressed"]

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.file_name or 'import'} → {self.mailing_list}"

    def get_absolute_url(self):
        return reverse("mailinglist:subscriber_import", kwargs={"pk": self.pk})

    @property
    def is_final(self):
        return self.status in FINAL_IMPORT_STATES

    def counts(self):
        return {
            "rows": self.rows_done,
            **{name: getattr(self, name) for name in self.COUNTS[1:]},
        }

    def apply(self, transition: Transition, **changes):
        """Make the move if the job is still in a state it leaves; returns whether it was made."""
        moved = SubscriberImport.objects.filter(pk=self.pk, status__in=transition.sources).update(
            status=transition.target, **changes
        )
        self.refresh_from_db()
        return bool(moved)


class SubscriberImportChunk(models.Model):
    """A piece of an uploaded file, kept in the database so that any worker can read it."""

    subscriber_import = models.ForeignKey(
        SubscriberImport, on_delete=models.CASCADE, related_name="chunks"
    )
    number = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber_import", "number"], name="unique_chunk_per_import"
            )
        ]

    def __str__(self):
        return f"chunk {self.number} of {self.subscriber_import_id}"


class SubscriberImportRejection(models.Model):
    """A row of an import that did not become a subscriber, and why."""

    subscriber_import = models.ForeignKey(
        SubscriberImport, on_delete=models.CASCADE, related_name="rejections"
    )
    # The row's line in the file, counting the header as line 1.
    line = models.PositiveBigIntegerField()
    email = models.TextField(blank=True)
    reason = models.CharField(max_length=200)
    values = models.JSONField(default=list)

    class Meta:
        ordering = ["line"]

    def __str__(self):
        return f"line {self.line}: {self.reason}"


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    SOFT_BOUNCES = "soft_bounces", _("Repeated soft bounces")
    COMPLAINT = "complaint", _("Spam complaint")
    MANUAL = "manual", _("Added by hand")


class SuppressionQuerySet(models.QuerySet):
    def usable_by(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)

    def search(self, text):
        return self.filter(email__icontains=text) if text else self

    def with_address(self, owner_id, address):
        return self.annotate(address=Lower("email")).filter(
            owner_id=owner_id, address=address.lower()
        )

    def reasons_for(self, owner_id, addresses):
        """Of addresses (in lower case), those on owner_id's suppression list, with why."""
        return {
            address: SuppressionReason(reason)
            for address, reason in self.annotate(address=Lower("email"))
            .filter(address_among(addresses), owner_id=owner_id)
            .values_list("address", "reason")
        }

    def refusal(self, owner_id, address):
        """Why owner_id may not put address on a list, or None if they may: the rule the
        subscribe page, the owner's forms and the API ask (imports and claims ask
        reasons_for, for a batch at a time)."""
        reason = self.reasons_for(owner_id, [address.lower()]).get(address.lower())
        if reason is None:
            return None
        return gettext(
            "%(address)s is on your suppression list (%(reason)s); remove it from there first."
        ) % {"address": address, "reason": reason.label.lower()}


class Suppression(models.Model):
    """An address that gets no more mail from any of its owner's lists."""

    Reason = SuppressionReason

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    email = models.EmailField("address")
    reason = models.CharField(max_length=12, choices=SuppressionReason.choices)
    # What reported it: the SMTP reply, the provider's webhook, a mailed report.
    source = models.CharField(max_length=300, blank=True, default="")
    created = models.DateTimeField(default=timezone.now, editable=False)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "owner",
                name="unique_suppression_per_owner",
                violation_error_message=_("This address is already on your suppression list."),
            )
        ]

    def __str__(self):
        return self.email

    @classmethod
    def suppress(cls, owner_id, email, reason, source=""):
        """Put email on owner_id's suppression list, once; returns whether it was added."""
        try:
            with transaction.atomic():
                cls.objects.create(owner_id=owner_id, email=email, reason=reason, source=source)
        except IntegrityError:
            return False
        return True


class DeliveryEventKind(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    SOFT_BOUNCE = "soft_bounce", _("Soft bounce")
    COMPLAINT = "complaint", _("Spam complaint")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")


class DeliveryEvent(models.Model):
    """What happened to a copy after the SMTP server's first answer, or that answer
    itself when it was a bounce: from the server, a provider's webhook or a mailed report."""

    Kind = DeliveryEventKind

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delivery = models.ForeignKey(SubscriberMessage, on_delete=models.CASCADE)
    # The delivery row's, kept here so that a message's figures read one index.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, db_index=False)
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE)
    kind = models.CharField(max_length=11, choices=DeliveryEventKind.choices)
    # smtp, process_bounce, or the provider whose webhook reported it.
    source = models.CharField(max_length=40)
    description = models.TextField(blank=True, default="")
    # The same report delivered twice has the same key and is counted once.
    key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["message", "kind"], name="deliveryevent_message_kind")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.subscriber_id}"
