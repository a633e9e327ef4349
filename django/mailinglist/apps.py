from django.apps import AppConfig


class MailinglistConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mailinglist"
