from django import forms

from mailinglist.models import MailingList, Message


class MailingListForm(forms.ModelForm):
    class Meta:
        model = MailingList
        fields = ["name"]


class SubscribeForm(forms.Form):
    email = forms.EmailField(label="Your e-mail address")


class MessageForm(forms.ModelForm):
    class Meta:
        model = Message
        fields = ["subject", "body"]
        help_texts = {"body": "Markdown. Press Preview to see how it will look."}
        widgets = {"body": forms.Textarea(attrs={"rows": 14})}
