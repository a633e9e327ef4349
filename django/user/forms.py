from zoneinfo import available_timezones

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.utils.translation import gettext_lazy as _

from user.login_limits import is_locked_out
from user.models import User


class RegistrationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]
        model = User
        fields = ("username", "email")


class AccountSettingsForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=[(name, name.replace("_", " ")) for name in sorted(available_timezones())],
        help_text=_("Times on your pages, and the times you schedule messages for, are in it."),
    )

    class Meta:
        model = User
        fields = ["time_zone", "language"]
        help_texts = {"language": _("The language of Mail Ape's pages for you.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A form sent without it (from before there was a choice) keeps the language.
        self.fields["language"].required = False

    def clean_language(self):
        return self.cleaned_data["language"] or self.instance.language


class CurrentPasswordForm(forms.Form):
    """A form for something only the account's owner may do, asking for their password.

    The password is checked as a login is, so that guesses here count towards, and
    are stopped by, the same lockout."""

    password = forms.CharField(
        label=_("Your current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, request, *args, **kwargs):
        self.request = request
        self.user = request.user
        super().__init__(*args, **kwargs)

    def clean_password(self):
        password = self.cleaned_data["password"]
        username = self.user.get_username()
        if is_locked_out(username, self.request):
            raise forms.ValidationError(
                _("Too many wrong passwords. Try again in 15 minutes."), code="locked_out"
            )
        if authenticate(self.request, username=username, password=password) is None:
            raise forms.ValidationError(_("That is not your password."), code="wrong_password")
        return password


class EmailChangeForm(CurrentPasswordForm):
    new_email = forms.EmailField(
        label=_("New e-mail address"),
        max_length=User._meta.get_field("email").max_length,
        help_text=_("We send a link to it; your address changes when you follow that link."),
    )

    field_order = ["new_email", "password"]

    def clean_new_email(self):
        new_email = self.cleaned_data["new_email"]
        if new_email.lower() == self.user.email.lower():
            raise forms.ValidationError(_("That is already your address."), code="same_email")
        if self.user.email_is_used_by_another(new_email):
            raise forms.ValidationError(
                _("Another account uses that address."), code="email_in_use"
            )
        return new_email


class DeleteAccountForm(CurrentPasswordForm):
    understood = forms.BooleanField(
        label=_("I understand that my lists, subscribers and messages will be erased for good.")
    )


class LoginForm(AuthenticationForm):
    def clean(self):
        if is_locked_out(self.cleaned_data.get("username"), self.request):
            raise forms.ValidationError(
                "Too many failed logins for this username. Try again in 15 minutes.",
                code="locked_out",
            )
        return super().clean()
