from zoneinfo import available_timezones

from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm

from user.login_limits import is_locked_out
from user.models import User


class RegistrationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]
        model = User
        fields = ("username", "email")


class AccountSettingsForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        choices=[(name, name.replace("_", " ")) for name in sorted(available_timezones())],
        help_text="Times on your pages, and the times you schedule messages for, are in it.",
    )

    class Meta:
        model = User
        fields = ["time_zone"]


class LoginForm(AuthenticationForm):
    def clean(self):
        if is_locked_out(self.cleaned_data.get("username"), self.request):
            raise forms.ValidationError(
                "Too many failed logins for this username. Try again in 15 minutes.",
                code="locked_out",
            )
        return super().clean()
