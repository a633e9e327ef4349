import math
import time
import uuid
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    models,
    transaction,
)
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
    # The (mailing_list, id) index below serves lookups by list too.
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE, db_index=False)
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
        # Delivery rows are made for one slice of a list's subscriber ids at a time.
        indexes = [models.Index(fields=["mailing_list", "id"], name="subscriber_list_order")]

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

    def stalled(self, now=None):
        """Messages still sending that no task has touched for a whole lease.

        A live delivery task claims a batch at least once per lease, so that much
        silence means its task was lost or its worker died.
        """
        lease = timedelta(seconds=settings.MAIL_APE_DELIVERY_LEASE_SECONDS)
        quiet_since = (now or timezone.now()) - lease
        return self.filter(status=Message.Status.SENDING).filter(
            Q(delivery_activity__lt=quiet_since)
            | Q(delivery_activity__isnull=True, created__lt=quiet_since)
        )


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
    # When a delivery task was last queued or last claimed a batch: the sweep
    # re-queues only messages that have gone quiet, not ones being worked on.
    delivery_activity = models.DateTimeField(null=True, blank=True, editable=False)
    # Delivery rows are made as workers claim batches, a slice of the subscriber
    # id space at a time: fan_out_slices equal slices, of about a batch of
    # recipients each since ids are random, of which fan_out_slices_done have rows.
    fan_out_slices = models.PositiveIntegerField(null=True, blank=True, editable=False)
    fan_out_slices_done = models.PositiveIntegerField(default=0, editable=False)
    # When every recipient had a delivery row: until then the message cannot be
    # finished, even if every row made so far has been sent.
    fanned_out = models.DateTimeField(null=True, blank=True, editable=False)

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

    def recipients(self):
        """Who gets this message: the subscribers it was written for who are confirmed now."""
        return Subscriber.objects.filter(
            mailing_list_id=self.mailing_list_id, confirmed=True, created__lte=self.created
        )

    def recipients_without_row(self):
        """Recipients whose slice has no delivery rows yet."""
        if self.fanned_out is not None:
            return Subscriber.objects.none()
        return self.recipients().filter(pk__gte=self._slice_bounds(self.fan_out_slices_done)[0])

    def recipients_in_slice(self, number):
        low, high = self._slice_bounds(number)
        recipients = self.recipients().filter(pk__gte=low)
        return recipients if high is None else recipients.filter(pk__lt=high)

    def _slice_bounds(self, number):
        """The first subscriber id of slice number and of the next one (None after the last)."""
        slices = self.fan_out_slices or 1
        low = uuid.UUID(int=number * UUID_SPACE // slices)
        high = None if number + 1 >= slices else uuid.UUID(int=(number + 1) * UUID_SPACE // slices)
        return low, high

    def delivery_counts(self):
        """Copies by state, counting recipients whose row is not made yet as pending
        (or, once the message is cancelled, as skipped)."""
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
        without_row = self.recipients_without_row().count()
        counts["total"] += without_row
        counts["skipped" if self.status == Message.Status.CANCELLED else "pending"] += without_row
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
            self.queue_delivery(workers=settings.MAIL_APE_DELIVERY_PARALLELISM)
        return resumed

    def cancel(self):
        """Stop the message; a copy already handed to the SMTP server is still recorded as sent."""
        with transaction.atomic():
            cancelled = self._change_status(
                [Message.Status.SENDING, Message.Status.PAUSED],
                Message.Status.CANCELLED,
                finished=timezone.now(),
            )
            if cancelled:
                self._cancel_undelivered()
        return cancelled

    def _cancel_undelivered(self):
        self.subscribermessage_set.undelivered().update(
            status=SubscriberMessage.Status.CANCELLED, available_at=None
        )

    def _note_delivery_activity(self):
        Message.objects.filter(pk=self.pk).update(delivery_activity=timezone.now())

    def queue_start(self):
        from mailinglist.tasks import build_subscriber_messages_for_message

        self._note_delivery_activity()
        transaction.on_commit(partial(build_subscriber_messages_for_message.delay, str(self.pk)))

    def queue_delivery(self, workers=1, countdown=None):
        from mailinglist.tasks import send_subscriber_messages

        self._note_delivery_activity()
        for _ in range(workers):
            transaction.on_commit(
                partial(
                    send_subscriber_messages.apply_async,
                    (str(self.pk),),
                    countdown=countdown or None,
                )
            )

    def start_delivery(self):
        """Mark the message started, cut its recipients into slices, and set delivery tasks on it.

        There is no separate fan-out step: each claim makes the delivery rows of
        the next slice in the same transaction (see claim_batch), so the first
        copies leave at once and no one waits for 100,000 rows to exist.
        """
        batches = max(1, math.ceil(self.recipients().count() / settings.MAIL_APE_BATCH_SIZE))
        Message.objects.filter(pk=self.pk, started__isnull=True).update(
            started=timezone.now(), fan_out_slices=batches
        )
        self.queue_delivery(workers=min(settings.MAIL_APE_DELIVERY_PARALLELISM, batches))

    def restart_stalled_delivery(self):
        """Queue again whatever step a lost task or a dead worker left undone."""
        if self.started is None:
            self.queue_start()
        elif (
            self.fanned_out is None or SubscriberMessage.objects.due().filter(message=self).exists()
        ):
            self.queue_delivery(workers=settings.MAIL_APE_DELIVERY_PARALLELISM)
        else:
            self.finish_if_done()

    def deliver(self, deadline):
        """Claim and send batches until none is due, the owner pauses or cancels, or
        time.monotonic() passes deadline.

        Returns in how many seconds another task should carry on: 0 when the
        deadline cut this one short, the wait for the next retry or lease expiry
        when only those are left, None when nothing is.
        """
        from mailinglist import emails
        from mailinglist.ratelimit import send_rate_limiter

        lease = settings.MAIL_APE_DELIVERY_LEASE_SECONDS
        rate_limiter = send_rate_limiter()
        mailer = None
        connection = emails.smtp_connection()
        try:
            while True:
                if time.monotonic() >= deadline:
                    return 0
                claimed_at = time.monotonic()
                rows = SubscriberMessage.objects.claim_batch(
                    self, settings.MAIL_APE_BATCH_SIZE, lease
                )
                if not rows:
                    break
                mailer = mailer or emails.ListMessageMailer(self)
                # Stop well inside the lease, so that no other worker reclaims a
                # row while this one may still be sending it.
                send_until = min(deadline, claimed_at + lease * LEASE_SHARE_FOR_SENDING)
                self._send_claimed(mailer, rows, connection, send_until, rate_limiter)
        finally:
            connection.close()
        if self.finish_if_done() or self.status != Message.Status.SENDING:
            return None
        return self.seconds_until_next_due()

    def seconds_until_next_due(self):
        """How long until a retry falls due or a lease runs out; None if no copy waits."""
        next_due = self.subscribermessage_set.undelivered().aggregate(
            next_due=models.Min("available_at")
        )["next_due"]
        if next_due is None:
            return None
        wait = (next_due - timezone.now()).total_seconds()
        return min(max(wait, 0), LONGEST_COUNTDOWN_SECONDS)

    def _send_claimed(self, mailer, rows, connection, send_until, rate_limiter):
        from mailinglist import emails

        sent, failures, attempted = [], [], set()
        last_recorded = time.monotonic()
        try:
            for row, failure in emails.send_each(
                mailer, rows, connection, send_until, rate_limiter
            ):
                attempted.add(row.pk)
                if failure is None:
                    sent.append(row)
                else:
                    failures.append((row, failure))
                # A worker that dies re-sends what it had not recorded yet; recording
                # often keeps that to a fraction of a second's worth of copies.
                if time.monotonic() - last_recorded >= RECORD_INTERVAL_SECONDS:
                    SubscriberMessage.objects.record_outcomes(sent, failures)
                    sent, failures = [], []
                    last_recorded = time.monotonic()
        finally:
            # Whatever stopped the batch, what the server accepted is written down.
            SubscriberMessage.objects.record_outcomes(sent, failures)
        SubscriberMessage.objects.release([row for row in rows if row.pk not in attempted])

    def finish_if_done(self):
        """Mark the message finished once no recipient is waiting; returns whether it is."""
        undelivered = SubscriberMessage.objects.filter(
            message=OuterRef("pk"), status__in=SubscriberMessage.UNDELIVERED
        )
        Message.objects.filter(
            pk=self.pk, status=Message.Status.SENDING, fanned_out__isnull=False
        ).exclude(Exists(undelivered)).update(
            status=Message.Status.FINISHED, finished=timezone.now()
        )
        self.refresh_from_db(fields=["status", "finished"])
        return self.status == Message.Status.FINISHED


LEASE_SHARE_FOR_SENDING = 0.8
UUID_SPACE = 2**128
# A task waiting for its countdown sits unacknowledged in the broker; it must
# start well before the broker's visibility timeout hands it out a second time.
LONGEST_COUNTDOWN_SECONDS = 600
RECORD_INTERVAL_SECONDS = 0.25


class SubscriberMessageQuerySet(models.QuerySet):
    def undelivered(self):
        return self.filter(status__in=SubscriberMessage.UNDELIVERED)

    def due(self, now=None):
        return self.undelivered().filter(available_at__lte=now or timezone.now())


class SubscriberMessageManager(models.Manager.from_queryset(SubscriberMessageQuerySet)):
    def claim_batch(self, message, size, lease_seconds):
        """Take a batch of message's copies for this worker alone, leased for lease_seconds.

        Up to size due rows come first (retries, and rows whose lease ran out
        because their worker died); if fewer were due, the rows made here for the
        next slice of recipients join them. Nothing is claimed once the message is
        paused or cancelled. Rows locked by another worker's claim are skipped,
        not waited for. A row whose subscriber is no longer confirmed is marked
        skipped instead of being handed out.
        """
        now = timezone.now()
        lease_until = now + timedelta(seconds=lease_seconds)
        with transaction.atomic():
            # The update locks the message row until commit: claims of one message
            # make rows one after another, and a pause or cancel waits for them.
            noted = Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
                delivery_activity=now
            )
            if not noted:
                return []
            if connection.vendor == "postgresql":
                claimed = self._claim_due_in_one_statement(message, size, now, lease_until)
            else:
                claimed = self._claim_due_with_orm(message, size, now, lease_until)
            if len(claimed) < size:
                claimed += self.create_from_message(message, now, lease_until)
        return claimed

    def create_from_message(self, message, now, lease_until):
        """Make claimed delivery rows for the recipients in message's next slice.

        One INSERT … SELECT per slice, bounded by the subscriber id index, so
        its cost does not grow with the list. An empty slice is passed over, and
        the message is fanned out after the last. Called by claim_batch while it
        holds the message row, so that two claims never make the same slice. A
        recipient who has a row already (from a run interrupted before its slice
        was counted done) is left to be claimed as a due row.
        """
        message.refresh_from_db(fields=["fan_out_slices", "fan_out_slices_done", "fanned_out"])
        if message.fanned_out is not None:
            return []
        create = (
            self._create_in_one_statement
            if connection.vendor == "postgresql"
            else self._create_with_orm
        )
        made, slices = [], message.fan_out_slices or 1
        while not made and message.fan_out_slices_done < slices:
            recipients = message.recipients_in_slice(message.fan_out_slices_done)
            made = create(message, recipients, now, lease_until)
            message.fan_out_slices_done += 1
        if message.fan_out_slices_done >= slices:
            message.fanned_out = now
        Message.objects.filter(pk=message.pk).update(
            fan_out_slices_done=message.fan_out_slices_done, fanned_out=message.fanned_out
        )
        return made

    def _create_in_one_statement(self, message, recipients, now, lease_until):
        recipients_sql, recipients_params = (
            recipients.order_by().values("id").query.sql_with_params()
        )
        # Only the ORM's own SQL and a table name from model metadata are
        # interpolated; values are parameters.
        sql = f"""
            WITH made AS (
                INSERT INTO {self.model._meta.db_table}
                    (id, message_id, subscriber_id, created, status, attempts, last_error,
                     available_at, last_attempt)
                SELECT gen_random_uuid(), %s, recipient.id, %s, %s, 1, '', %s, %s
                FROM ({recipients_sql}) recipient
                ON CONFLICT (message_id, subscriber_id) DO NOTHING
                RETURNING id, subscriber_id
            )
            SELECT made.id, s.id, s.email
            FROM made JOIN {Subscriber._meta.db_table} s ON s.id = made.subscriber_id
        """  # noqa: S608
        params = [
            message.pk,
            now,
            SubscriberMessage.Status.SENDING,
            lease_until,
            now,
            *recipients_params,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            made = cursor.fetchall()
        return [
            self._claimed_row(message, row_id, 1, subscriber_id, email)
            for row_id, subscriber_id, email in made
        ]

    def _create_with_orm(self, message, recipients, now, lease_until):
        emails = dict(recipients.values_list("id", "email"))
        have_row = set(
            self.filter(message=message, subscriber_id__in=emails).values_list(
                "subscriber_id", flat=True
            )
        )
        rows = self.bulk_create(
            self.model(
                message=message,
                subscriber_id=subscriber_id,
                created=now,
                status=SubscriberMessage.Status.SENDING,
                attempts=1,
                available_at=lease_until,
                last_attempt=now,
            )
            for subscriber_id in emails
            if subscriber_id not in have_row
        )
        return [
            self._claimed_row(message, row.pk, 1, row.subscriber_id, emails[row.subscriber_id])
            for row in rows
        ]

    def _claim_due_in_one_statement(self, message, size, now, lease_until):
        table = self.model._meta.db_table
        subscriber_table = Subscriber._meta.db_table
        Status = SubscriberMessage.Status
        # Only table names from model metadata are interpolated; values are parameters.
        sql = f"""
            WITH due AS MATERIALIZED (
                SELECT candidate.id
                FROM {table} candidate
                WHERE candidate.message_id = %(message)s
                  AND candidate.status IN (%(pending)s, %(sending)s)
                  AND candidate.available_at <= %(now)s
                LIMIT %(size)s
                FOR UPDATE OF candidate SKIP LOCKED
            )
            UPDATE {table} d
            SET status = CASE WHEN s.confirmed THEN %(sending)s ELSE %(skipped)s END,
                available_at = CASE WHEN s.confirmed THEN %(lease_until)s END,
                attempts = d.attempts + CASE WHEN s.confirmed THEN 1 ELSE 0 END,
                last_attempt = CASE WHEN s.confirmed THEN %(now)s ELSE d.last_attempt END
            FROM due, {subscriber_table} s
            WHERE d.id = due.id AND s.id = d.subscriber_id
            RETURNING d.id, d.attempts, s.confirmed, s.id, s.email
        """  # noqa: S608
        params = {
            "message": message.pk,
            "pending": Status.PENDING,
            "sending": Status.SENDING,
            "skipped": Status.SKIPPED,
            "now": now,
            "lease_until": lease_until,
            "size": size,
        }
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            claimed = cursor.fetchall()
        return [
            self._claimed_row(message, pk, attempts, subscriber_id, email)
            for pk, attempts, confirmed, subscriber_id, email in claimed
            if confirmed
        ]

    def _claim_due_with_orm(self, message, size, now, lease_until):
        due = list(
            self.due(now)
            .filter(message=message)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "subscriber__confirmed")[:size]
        )
        claimed_ids = [pk for pk, confirmed in due if confirmed]
        self.filter(pk__in=[pk for pk, confirmed in due if not confirmed]).update(
            status=SubscriberMessage.Status.SKIPPED, available_at=None
        )
        self.filter(pk__in=claimed_ids).update(
            status=SubscriberMessage.Status.SENDING,
            available_at=lease_until,
            attempts=F("attempts") + 1,
            last_attempt=now,
        )
        claimed = self.filter(pk__in=claimed_ids).values_list(
            "pk", "attempts", "subscriber_id", "subscriber__email"
        )
        return [self._claimed_row(message, *values) for values in claimed]

    def _claimed_row(self, message, pk, attempts, subscriber_id, email):
        # from_db builds instances from known values, several times faster than keywords.
        subscriber = Subscriber.from_db(
            self.db,
            ["id", "email", "confirmed", "mailing_list_id"],
            [subscriber_id, email, True, message.mailing_list_id],
        )
        row = self.model.from_db(
            self.db,
            ["id", "message_id", "subscriber_id", "status", "attempts"],
            [pk, message.pk, subscriber_id, SubscriberMessage.Status.SENDING, attempts],
        )
        row.message = message
        row.subscriber = subscriber
        return row

    def record_outcomes(self, sent, failures):
        """Record what the SMTP server said: sent rows, and (row, SmtpFailure) pairs.

        A dropped database connection is reopened once: each copy recorded here
        is one that will not be sent again after its lease runs out.
        """
        try:
            self._record_outcomes(sent, failures)
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block:
                raise
            connection.close()
            self._record_outcomes(sent, failures)

    def _record_outcomes(self, sent, failures):
        self.record_sent(sent)
        for row, failure in failures:
            self.record_failure(row, failure.description, failure.permanent)

    def record_sent(self, rows):
        # Whatever happened to a row meanwhile (cancel, unsubscribe), the copy did go out.
        if rows:
            self.filter(pk__in=[row.pk for row in rows]).update(
                status=SubscriberMessage.Status.SENT,
                sent=timezone.now(),
                available_at=None,
                last_error="",
            )

    def record_failure(self, row, error, permanent):
        """Retry a temporary failure later with exponential backoff, up to the attempt limit."""
        if permanent or row.attempts >= settings.MAIL_APE_MAX_ATTEMPTS:
            self.filter(pk=row.pk).exclude(status=SubscriberMessage.Status.SENT).update(
                status=SubscriberMessage.Status.FAILED, available_at=None, last_error=error[:1000]
            )
            return
        delay = settings.MAIL_APE_RETRY_BASE_SECONDS * 2 ** (row.attempts - 1)
        # Only a row still in this claim goes back to pending: a cancelled or
        # skipped one stays so.
        self.filter(pk=row.pk, status=SubscriberMessage.Status.SENDING).update(
            status=SubscriberMessage.Status.PENDING,
            available_at=timezone.now() + timedelta(seconds=delay),
            last_error=error[:1000],
        )

    def release(self, rows):
        """Hand back claimed rows that were never tried, due at once and with no attempt counted."""
        if rows:
            self.filter(
                pk__in=[row.pk for row in rows], status=SubscriberMessage.Status.SENDING
            ).update(
                status=SubscriberMessage.Status.PENDING,
                available_at=timezone.now(),
                attempts=F("attempts") - 1,
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
    # The unique (message, subscriber) constraint already indexes message first.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, db_index=False)
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
