from celery import current_app
from django.apps import AppConfig


class MailinglistConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mailinglist"

    def ready(self):
        # The models queue tasks by name (mailinglist.queueing); every process that
        # saves a model, not only a worker, needs them registered with Celery.
        current_app.autodiscover_tasks([self.name], force=True)
