from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from mailinglist.models import SubscriberImport


class SubscriberImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Exported from a spreadsheet, Mailchimp, listmonk or another tool: one row per "
            "person, with a header row naming an e-mail column."
        ),
    )
    status = forms.ChoiceField(
        label=_("These people are"),
        choices=SubscriberImport.SubscriberStatus.choices,
        widget=forms.RadioSelect,
        initial=SubscriberImport.SubscriberStatus.UNCONFIRMED,
    )
    opted_in = forms.BooleanField(
        label=_("I confirm that everyone in this file agreed to get this list's e-mails."),
        required=False,
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.MAIL_APE_IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is %(size)s; Mail Ape imports files of up to %(limit)s."),
                code="too_big",
                params={
                    "size": filesizeformat(upload.size),
                    "limit": filesizeformat(settings.MAIL_APE_IMPORT_MAX_BYTES),
                },
            )
        return upload

    def clean(self):
        cleaned = super().clean()
        confirmed = cleaned.get("status") == SubscriberImport.SubscriberStatus.CONFIRMED
        if confirmed and not cleaned.get("opted_in"):
            self.add_error(
                "opted_in",
                forms.ValidationError(
                    _(
                        "Importing people as confirmed needs your word that they agreed; "
                        "otherwise choose to send them a confirmation e-mail."
                    ),
                    code="consent",
                ),
            )
        return cleaned
