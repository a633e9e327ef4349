import time
import uuid
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from mailinglist.validators import validate_single_line

CONFIRMATION_RESEND_SECONDS = 600


class MailingListQuerySet(models.QuerySet):
    def usable_by(self, user):
        """The lists user may manage: the queryset form of user_can_use_mailing_list."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)


class MailingList(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=140, validators=[validate_single_line])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created = models.DateTimeField(default=timezone.now, editable=False)

    objects = MailingListQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("mailinglist:manage_mailinglist", kwargs={"pk": self.pk})

    def user_can_use_mailing_list(self, user):
        return user.is_authenticated and self.owner_id == user.pk


class SubscriberQuerySet(models.QuerySet):
    def usable_by(self, user):
        return self.filter(mailing_list__in=MailingList.objects.usable_by(user))


class SubscriberManager(models.Manager.from_queryset(SubscriberQuerySet)):
    def confirmed_subscribers_for_mailing_list(self, mailing_list):
        return self.filter(mailing_list=mailing_list, confirmed=True)

    def subscribe(self, mailing_list, email):
        """Add email to the list, or ask again for a confirmation that is still missing.

        A confirmed subscriber is left alone, and an unconfirmed one is asked again
        at most every few minutes, so that a stranger cannot use the form to flood
        an inbox; the page the visitor sees is the same either way.
        """
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
    email = models.EmailField()
    confirmed = models.BooleanField(default=False)
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE)
    created = models.DateTimeField(default=timezone.now, editable=False)
    unsubscribed = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SubscriberManager()

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "mailing_list",
                name="unique_subscriber_email_per_list",
                violation_error_message="This e-mail address is already on the list.",
            )
        ]

    def __str__(self):
        return self.email

    def save(self, *args, **kwargs):
        is_new = self._state.adding
        super().save(*args, **kwargs)
        if is_new and not self.confirmed:
            self.request_confirmation()

    def request_confirmation(self):
        """Queue a confirmation e-mail, unless one was queued in the last few minutes."""
        from mailinglist.tasks import send_confirmation_email_to_subscriber

        if cache.add(f"confirmation-requested:{self.pk}", True, CONFIRMATION_RESEND_SECONDS):
            transaction.on_commit(
                partial(send_confirmation_email_to_subscriber.delay, str(self.pk))
            )

    @property
    def status(self):
        if self.confirmed:
            return "confirmed"
        return "unsubscribed" if self.unsubscribed else "unconfirmed"

    def confirm(self):
        self.confirmed = True
        self.unsubscribed = None
        self.save(update_fields=["confirmed", "unsubscribed"])

    def unsubscribe(self):
        """Stop all mail to this address, including copies of a message still going out."""
        with transaction.atomic():
            self.confirmed = False
            self.unsubscribed = self.unsubscribed or timezone.now()
            self.save(update_fields=["confirmed", "unsubscribed"])
            self.subscribermessage_set.undelivered().update(
                status=SubscriberMessage.Status.SKIPPED, available_at=None
            )


class MessageQuerySet(models.QuerySet):
    def usable_by(self, user):
        return self.filter(mailing_list__in=MailingList.objects.usable_by(user))


class Message(models.Model):
    class Status(models.TextChoices):
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        FINISHED = "finished", "Finished"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE)
    subject = models.CharField(max_length=140, validators=[validate_single_line])
    body = models.TextField()
    created = models.DateTimeField(default=timezone.now, editable=False)
    started = models.DateTimeField(null=True, blank=True, editable=False)
    finished = models.DateTimeField(null=True, blank=True, editable=False)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.SENDING, editable=False
    )

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return self.subject

    def save(self, *args, **kwargs):
        is_new = self._state.adding
        super().save(*args, **kwargs)
        if is_new:
            from mailinglist.tasks import build_subscriber_messages_for_message

            transaction.on_commit(
                partial(build_subscriber_messages_for_message.delay, str(self.pk))
            )

    def get_absolute_url(self):
        return reverse("mailinglist:view_message", kwargs={"pk": self.pk})

    @property
    def body_html(self):
        from mailinglist.markdown import render_markdown

        return render_markdown(self.body)

    def delivery_counts(self):
        counts = self.subscribermessage_set.aggregate(
            total=Count("pk"),
            sent=Count("pk", filter=Q(status=SubscriberMessage.Status.SENT)),
            failed=Count("pk", filter=Q(status=SubscriberMessage.Status.FAILED)),
            pending=Count("pk", filter=Q(status__in=SubscriberMessage.UNDELIVERED)),
            skipped=Count(
                "pk",
                filter=Q(
                    status__in=[
                        SubscriberMessage.Status.SKIPPED,
                        SubscriberMessage.Status.CANCELLED,
                    ]
                ),
            ),
        )
        done = counts["sent"] + counts["failed"] + counts["skipped"]
        counts["percent_done"] = round(100 * done / counts["total"]) if counts["total"] else 100
        return counts

    def _change_status(self, from_statuses, to_status, **extra):
        changed = Message.objects.filter(pk=self.pk, status__in=from_statuses).update(
            status=to_status, **extra
        )
        self.refresh_from_db(fields=["status", "finished"])
        return bool(changed)

    def pause(self):
        return self._change_status([Message.Status.SENDING], Message.Status.PAUSED)

    def resume(self):
        resumed = self._change_status([Message.Status.PAUSED], Message.Status.SENDING)
        if resumed:
            self.queue_delivery()
        return resumed

    def cancel(self):
        with transaction.atomic():
            cancelled = self._change_status(
                [Message.Status.SENDING, Message.Status.PAUSED],
                Message.Status.CANCELLED,
                finished=timezone.now(),
            )
            if cancelled:
                self.subscribermessage_set.filter(status=SubscriberMessage.Status.PENDING).update(
                    status=SubscriberMessage.Status.CANCELLED, available_at=None
                )
        return cancelled

    def queue_delivery(self, workers=1):
        from mailinglist.tasks import send_subscriber_messages

        for _ in range(workers):
            transaction.on_commit(partial(send_subscriber_messages.delay, str(self.pk)))

    def fan_out(self):
        """Create one pending delivery row per confirmed subscriber; safe to repeat."""
        with transaction.atomic():
            created = SubscriberMessage.objects.create_from_message(self)
            Message.objects.filter(pk=self.pk, started__isnull=True).update(started=timezone.now())
        self.refresh_from_db(fields=["started"])
        return created

    def is_sending(self):
        return Message.objects.filter(pk=self.pk, status=Message.Status.SENDING).exists()

    def deliver(self, deadline):
        """Claim and send batches until none is due or time.monotonic() passes deadline.

        Returns whether due copies were left for another task.
        """
        from mailinglist import emails

        mailer = None
        connection = emails.smtp_connection()
        try:
            while self.is_sending():
                if time.monotonic() >= deadline:
                    return True
                rows = SubscriberMessage.objects.claim_batch(
                    self, settings.MAIL_APE_BATCH_SIZE, settings.MAIL_APE_DELIVERY_LEASE_SECONDS
                )
                if not rows:
                    break
                mailer = mailer or emails.ListMessageMailer(self)
                sent, failed = emails.send_batch(mailer, rows, connection)
                SubscriberMessage.objects.record_sent(sent)
                for row, error, permanent in failed:
                    SubscriberMessage.objects.record_failure(row, error, permanent)
        finally:
            connection.close()
        self.finish_if_done()
        return False

    def finish_if_done(self):
        """Mark the message finished once no recipient is waiting; returns whether it is."""
        undelivered = SubscriberMessage.objects.filter(
            message=OuterRef("pk"), status__in=SubscriberMessage.UNDELIVERED
        )
        Message.objects.filter(
            pk=self.pk, status=Message.Status.SENDING, started__isnull=False
        ).exclude(Exists(undelivered)).update(
            status=Message.Status.FINISHED, finished=timezone.now()
        )
        self.refresh_from_db(fields=["status", "finished"])
        return self.status == Message.Status.FINISHED


class SubscriberMessageQuerySet(models.QuerySet):
    def undelivered(self):
        return self.filter(status__in=SubscriberMessage.UNDELIVERED)

    def due(self, now=None):
        return self.undelivered().filter(available_at__lte=now or timezone.now())


class SubscriberMessageManager(models.Manager.from_queryset(SubscriberMessageQuerySet)):
    def create_from_message(self, message):
        """One INSERT … SELECT for the whole list; rows that exist already are kept."""
        table = self.model._meta.db_table
        subscriber_table = Subscriber._meta.db_table
        new_id = (
            "gen_random_uuid()"
            if connection.vendor == "postgresql"
            else "lower(hex(randomblob(16)))"
        )
        now = self.model._meta.get_field("created").get_db_prep_value(timezone.now(), connection)
        uuid_param = partial(self.model._meta.pk.get_db_prep_value, connection=connection)
        # Only table names from model metadata are interpolated; values are parameters.
        sql = f"""
            INSERT INTO {table}
                (id, message_id, subscriber_id, created, status, attempts, last_error, available_at)
            SELECT {new_id}, %s, s.id, %s, %s, 0, '', %s
            FROM {subscriber_table} s
            WHERE s.mailing_list_id = %s AND s.confirmed = %s
            ON CONFLICT (message_id, subscriber_id) DO NOTHING
        """  # noqa: S608
        params = [
            uuid_param(message.pk),
            now,
            SubscriberMessage.Status.PENDING,
            now,
            uuid_param(message.mailing_list_id),
            True,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def claim_batch(self, message, size, lease_seconds):
        """Take up to size due rows for this worker alone, leased for lease_seconds.

        Rows locked by another worker's claim are skipped, not waited for; a
        lease that runs out (its worker died) makes the row due again.
        """
        now = timezone.now()
        with transaction.atomic():
            ids = list(
                self.due(now)
                .filter(message=message, subscriber__confirmed=True)
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", flat=True)[:size]
            )
            if not ids:
                return []
            self.filter(pk__in=ids).update(
                status=SubscriberMessage.Status.SENDING,
                available_at=now + timedelta(seconds=lease_seconds),
                attempts=F("attempts") + 1,
                last_attempt=now,
            )
        return list(self.filter(pk__in=ids).select_related("subscriber"))

    def record_sent(self, rows):
        self.filter(pk__in=[row.pk for row in rows]).update(
            status=SubscriberMessage.Status.SENT,
            sent=timezone.now(),
            available_at=None,
            last_error="",
        )

    def record_failure(self, row, error, permanent):
        """Retry a temporary failure later with exponential backoff, up to the attempt limit."""
        if permanent or row.attempts >= settings.MAIL_APE_MAX_ATTEMPTS:
            status, available_at = SubscriberMessage.Status.FAILED, None
        else:
            delay = settings.MAIL_APE_RETRY_BASE_SECONDS * 2 ** (row.attempts - 1)
            status = SubscriberMessage.Status.PENDING
            available_at = timezone.now() + timedelta(seconds=delay)
        self.filter(pk=row.pk).update(
            status=status, available_at=available_at, last_error=error[:1000]
        )


class SubscriberMessage(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (unsubscribed)"
        CANCELLED = "cancelled", "Cancelled"

    UNDELIVERED = [Status.PENDING, Status.SENDING]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE)
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE)
    created = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt = models.DateTimeField(null=True, blank=True)
    sent = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # For a pending row, when it may next be tried; for a sending row, when its lease runs out.
    available_at = models.DateTimeField(null=True, blank=True)

    objects = SubscriberMessageManager()

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
                condition=Q(status__in=["pending", "sending"]),
            )
        ]

    def __str__(self):
        return f"{self.message} → {self.subscriber}"
