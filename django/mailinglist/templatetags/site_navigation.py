from django import template
from django.conf import settings
from django.urls import reverse

register = template.Library()


@register.simple_tag
def dev_mailbox_url():
    """The development mailbox's address when this site mounts it, else an empty string."""
    return reverse("dev_mailbox:inbox") if getattr(settings, "MAIL_APE_DEV_MAILBOX", None) else ""
