"""Every state a delivery row or a message can be in, and every allowed move between them.

A move is made only through its Transition: SubscriberMessageQuerySet.apply and
Message.apply turn one into a guarded UPDATE that touches only the rows still in
one of its source states, and the claim's SQL takes its state values from here.
A new state or move is a line in these tables.
"""

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped (unsubscribed)")
    CANCELLED = "cancelled", _("Cancelled")
    # The address is on the owner's suppression list: no copy is sent to it.
    SUPPRESSED = "suppressed", _("Suppressed")
    # The address does not exist (a hard bounce), whether the server said so while
    # the copy was sent or a report came back afterwards.
    BOUNCED = "bounced", _("Bounced")


# A copy is still owed: waiting (perhaps for a retry), or claimed by a worker.
UNDELIVERED = (DeliveryState.PENDING, DeliveryState.SENDING)


class MessageState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    FINISHED = "finished", _("Finished")


@dataclass(frozen=True)
class Transition:
    name: str
    sources: tuple[str, ...]
    target: str

    def allowed_from(self, state: str) -> bool:
        return state in self.sources


class DeliveryTransition:
    """The moves of one recipient's copy of a message."""

    # A due row (a retry whose time has come, or a claim whose lease ran out) is
    # taken by a worker and leased; rows made by a claim are born in its target.
    CLAIM = Transition("claim", UNDELIVERED, DeliveryState.SENDING)
    # The subscriber is no longer confirmed.
    SKIP = Transition("skip", UNDELIVERED, DeliveryState.SKIPPED)
    # The address is suppressed: checked when a row is claimed or made.
    SUPPRESS = Transition("suppress", UNDELIVERED, DeliveryState.SUPPRESSED)
    # The owner cancelled the message.
    CANCEL = Transition("cancel", UNDELIVERED, DeliveryState.CANCELLED)
    # The server accepted the copy: that is the truth, whatever was recorded meanwhile.
    MARK_SENT = Transition(
        "mark sent",
        (
            DeliveryState.PENDING,
            DeliveryState.SENDING,
            DeliveryState.FAILED,
            DeliveryState.SKIPPED,
            DeliveryState.CANCELLED,
        ),
        DeliveryState.SENT,
    )
    # A temporary refusal: the claim ends and the row waits for its next try.
    RETRY_LATER = Transition("retry later", (DeliveryState.SENDING,), DeliveryState.PENDING)
    # A permanent refusal, or the last attempt refused: never tried again.
    FAIL = Transition(
        "fail",
        (
            DeliveryState.PENDING,
            DeliveryState.SENDING,
            DeliveryState.SKIPPED,
            DeliveryState.CANCELLED,
        ),
        DeliveryState.FAILED,
    )
    # Claimed but never tried (the task ran out of time): due again at once.
    RELEASE = Transition("release", (DeliveryState.SENDING,), DeliveryState.PENDING)
    # A hard bounce: refused at once, or reported later about a copy the server took.
    BOUNCE = Transition(
        "bounce",
        (
            DeliveryState.PENDING,
            DeliveryState.SENDING,
            DeliveryState.SENT,
            DeliveryState.FAILED,
        ),
        DeliveryState.BOUNCED,
    )


# Copies a server was asked to take: what bounce and complaint rates are shares of.
ATTEMPTED = (DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.BOUNCED)


# A message can still be edited: nobody has been sent a copy.
EDITABLE_MESSAGE_STATES = (MessageState.DRAFT, MessageState.SCHEDULED)


class MessageTransition:
    """The moves of a message as a whole, from its draft to its last copy."""

    # The owner sends a draft, or a scheduled message ahead of its time, now.
    SEND = Transition("send", EDITABLE_MESSAGE_STATES, MessageState.SENDING)
    # The owner sets or moves the time a message goes out.
    SCHEDULE = Transition("schedule", EDITABLE_MESSAGE_STATES, MessageState.SCHEDULED)
    UNSCHEDULE = Transition("unschedule", (MessageState.SCHEDULED,), MessageState.DRAFT)
    # Its time has come.
    START = Transition("start", (MessageState.SCHEDULED,), MessageState.SENDING)
    # The owner pauses, or the guardrails do when bounces or complaints run high.
    PAUSE = Transition("pause", (MessageState.SENDING,), MessageState.PAUSED)
    RESUME = Transition("resume", (MessageState.PAUSED,), MessageState.SENDING)
    CANCEL = Transition(
        "cancel", (MessageState.SENDING, MessageState.PAUSED), MessageState.CANCELLED
    )
    # Once every recipient has a row and none is still owed a copy.
    FINISH = Transition("finish", (MessageState.SENDING,), MessageState.FINISHED)

    ALL = (SEND, SCHEDULE, UNSCHEDULE, START, PAUSE, RESUME, CANCEL, FINISH)
    # What the owner may do to a message going out, on its page and through its URLs.
    OWNER_CONTROLS = (PAUSE, RESUME, CANCEL)


# States no move leaves: the page stops watching a message in one of them.
FINAL_MESSAGE_STATES = frozenset(
    state
    for state in MessageState
    if not any(transition.allowed_from(state) for transition in MessageTransition.ALL)
)
