from django.conf import settings
from django.contrib.auth import login
from django.shortcuts import redirect
from django.views.generic import CreateView

from user.forms import RegistrationForm


class RegisterView(CreateView):
    form_class = RegistrationForm
    template_name = "user/register.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect(settings.LOGIN_REDIRECT_URL)
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.save()
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(settings.LOGIN_REDIRECT_URL)
