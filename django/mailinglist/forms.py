import re
from urllib.parse import urlencode

from django import forms
from django.core.validators import validate_email
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from mailinglist.models import (
    SUBSCRIBER_STATUS_LABELS,
    MailingList,
    Message,
    Subscriber,
    Suppression,
)
from mailinglist.validators import (
    MAX_TEST_ADDRESSES,
    validate_sendable_address,
    validate_single_line,
)


class MailingListForm(forms.ModelForm):
    class Meta:
        model = MailingList
        fields = ["name"]
        labels = {"name": pgettext_lazy("mailing list", "Name")}


class SubscribeForm(forms.Form):
    email = forms.EmailField(
        label=_("Your e-mail address"),
        max_length=Subscriber._meta.get_field("email").max_length,
        validators=[validate_sendable_address],
    )
    # Hidden from people; a bot that fills in every field gives itself away.
    website = forms.CharField(
        required=False,
        label=_("Leave this empty"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )


class MessageForm(forms.ModelForm):
    class Meta:
        model = Message
        fields = ["subject", "body"]
        # The model's default verbose names would not be translated.
        labels = {"subject": _("Subject"), "body": _("Body")}
        help_texts = {
            "body": _(
                "Markdown. Merge tags put each reader's own values in: {{ name }}, "
                "{{ email }}, {{ fields.company }}, with a fallback such as "
                '{{ name|default:"friend" }}. Press Preview to see how it will look.'
            )
        }
        widgets = {"body": forms.Textarea(attrs={"rows": 14})}


def _https_unless_said(model_field, **kwargs):
    """Form fields for a model's fields; a web address typed without a scheme is https."""
    if isinstance(model_field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return model_field.formfield(**kwargs)


class MailingListSettingsForm(forms.ModelForm):
    class Meta:
        model = MailingList
        fields = ["name", *MailingList.IDENTITY_FIELDS, "language"]
        # The model's default verbose names would not be translated.
        labels = {
            "name": pgettext_lazy("mailing list", "Name"),
            "description": _("Description"),
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "thank_you_text": forms.Textarea(attrs={"rows": 4}),
            "confirmation_text": forms.Textarea(attrs={"rows": 4}),
        }
        formfield_callback = _https_unless_said

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A script that posts the form as it was before lists had a language keeps the
        # list's own.
        self.fields["language"].required = False

    def clean_language(self):
        return self.cleaned_data["language"] or self.instance.language


class ScheduleForm(forms.Form):
    send_at = forms.DateTimeField(
        label=_("Send at"),
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"
        ),
        help_text=_("In your time zone, which you can change under Settings."),
    )

    def clean_send_at(self):
        send_at = self.cleaned_data["send_at"]
        if send_at <= timezone.now():
            raise forms.ValidationError(_("Choose a time in the future."), code="past")
        return send_at


class TestSendForm(forms.Form):
    emails = forms.CharField(label=_("Send a test to"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Worded in the language of the request, which a class attribute cannot be.
        self.fields["emails"].help_text = ngettext(
            "Up to %(limit)s address, separated by commas or spaces.",
            "Up to %(limit)s addresses, separated by commas or spaces.",
            MAX_TEST_ADDRESSES,
        ) % {"limit": MAX_TEST_ADDRESSES}

    def clean_emails(self):
        addresses = [
            address for address in re.split(r"[\s,;]+", self.cleaned_data["emails"]) if address
        ]
        if not addresses:
            raise forms.ValidationError(_("Name at least one address."), code="required")
        if len(addresses) > MAX_TEST_ADDRESSES:
            raise forms.ValidationError(
                _("A test goes to at most %(limit)s addresses."),
                code="too_many",
                params={"limit": MAX_TEST_ADDRESSES},
            )
        for address in addresses:
            try:
                validate_email(address)
                validate_sendable_address(address)
            except forms.ValidationError:
                raise forms.ValidationError(
                    _("Mail Ape cannot send to %(address)s."),
                    code="invalid",
                    params={"address": address},
                ) from None
        return addresses


class SubscriberQueryForm(forms.Form):
    """The manage page's search of its subscribers; anything invalid searches for nothing."""

    q = forms.CharField(label=_("Address contains"), required=False, max_length=254)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), *SUBSCRIBER_STATUS_LABELS.items()],
    )

    def search_and_status(self):
        if not self.is_valid():
            return "", None
        return self.cleaned_data["q"].strip(), self.cleaned_data["status"] or None

    def query_string(self):
        """The search as a query string, for links to its other pages."""
        search, status = self.search_and_status()
        return urlencode(
            {key: value for key, value in (("q", search), ("status", status)) if value}
        )


class AddSubscriberForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=Subscriber._meta.get_field("email").max_length,
        validators=[validate_sendable_address],
    )
    name = forms.CharField(
        label=_("Name"), required=False, max_length=200, validators=[validate_single_line]
    )
    agreed = forms.BooleanField(
        label=_("They already agreed to get this list (no confirmation e-mail)"), required=False
    )


class SuppressionQueryForm(forms.Form):
    q = forms.CharField(label=_("Search addresses"), required=False, max_length=254)


class AddSuppressionForm(forms.Form):
    email = forms.EmailField(
        label=_("Address to suppress"), max_length=Suppression._meta.get_field("email").max_length
    )
