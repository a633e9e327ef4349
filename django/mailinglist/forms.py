from django import forms

from mailinglist.models import MailingList, Message, Subscriber
from mailinglist.validators import validate_sendable_address


class MailingListForm(forms.ModelForm):
    class Meta:
        model = MailingList
        fields = ["name"]


class SubscribeForm(forms.Form):
    email = forms.EmailField(
        label="Your e-mail address",
        max_length=Subscriber._meta.get_field("email").max_length,
        validators=[validate_sendable_address],
    )
    # Hidden from people; a bot that fills in every field gives itself away.
    website = forms.CharField(
        required=False,
        label="Leave this empty",
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )


class MessageForm(forms.ModelForm):
    class Meta:
        model = Message
        fields = ["subject", "body"]
        help_texts = {"body": "Markdown. Press Preview to see how it will look."}
        widgets = {"body": forms.Textarea(attrs={"rows": 14})}
