"""Every state of a subscriber import and every move between them, as delivery's are.

SubscriberImport.apply makes a move as a guarded UPDATE that touches the job only
while it is still in one of the move's source states.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from mailinglist.delivery.states import Transition


class ImportState(models.TextChoices):
    # The web's upload is being read for its preview; the API's skips this.
    ANALYSING = "analysing", _("Reading the file")
    # The preview is ready; nothing is written until the owner starts the import.
    READY = "ready", _("Waiting for you to start it")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Importing")
    FINISHED = "finished", _("Finished")
    FAILED = "failed", _("Failed")


class ImportedStatus(models.TextChoices):
    """What the people of a file become."""

    CONFIRMED = "confirmed", _("Confirmed: they agreed to get this list elsewhere")
    UNCONFIRMED = "unconfirmed", _("Unconfirmed: send each new address a confirmation e-mail")


class ImportTransition:
    ANALYSED = Transition("analysed", (ImportState.ANALYSING,), ImportState.READY)
    START = Transition("start", (ImportState.READY,), ImportState.QUEUED)
    # A worker takes the job; one whose worker died is taken again where it stopped.
    RUN = Transition("run", (ImportState.QUEUED, ImportState.RUNNING), ImportState.RUNNING)
    FINISH = Transition("finish", (ImportState.RUNNING,), ImportState.FINISHED)
    FAIL = Transition(
        "fail",
        (ImportState.ANALYSING, ImportState.QUEUED, ImportState.RUNNING),
        ImportState.FAILED,
    )


FINAL_IMPORT_STATES = (ImportState.FINISHED, ImportState.FAILED)
