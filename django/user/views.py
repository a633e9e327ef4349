from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.messages.views import SuccessMessageMixin
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.generic import CreateView, TemplateView, UpdateView
from rest_framework.authtoken.models import Token

from user.forms import AccountSettingsForm, RegistrationForm

# The key is shown on the next page only; the session holds it for that one request.
SESSION_FIELD_FOR_NEW_KEY = "user:new_api_key"


class RegisterView(CreateView):
    form_class = RegistrationForm
    template_name = "user/register.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect(settings.LOGIN_REDIRECT_URL)
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.save()
        login(self.request, user)
        return redirect(settings.LOGIN_REDIRECT_URL)


class AccountSettingsView(LoginRequiredMixin, SuccessMessageMixin, UpdateView):
    form_class = AccountSettingsForm
    template_name = "user/settings.html"
    success_url = reverse_lazy("user:settings")
    success_message = "Saved."

    def get_object(self, queryset=None):
        return self.request.user


@method_decorator(never_cache, name="dispatch")
class ApiTokenView(LoginRequiredMixin, TemplateView):
    """Shows the user's API token and makes a new one, replacing any old one, on POST."""

    template_name = "user/tokens.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            token=Token.objects.filter(user=self.request.user).first(),
            new_key=self.request.session.pop(SESSION_FIELD_FOR_NEW_KEY, None),
            api_url=self.request.build_absolute_uri(reverse("mailinglist:api-mailing-list-list")),
            docs_url=self.request.build_absolute_uri(reverse("mailinglist:api-docs")),
            **kwargs,
        )

    def post(self, request):
        with transaction.atomic():
            # Locking the user row makes two clicks in a row replace, not collide.
            get_user_model().objects.select_for_update().get(pk=request.user.pk)
            replaced, _ = Token.objects.filter(user=request.user).delete()
            token = Token.objects.create(user=request.user)
        request.session[SESSION_FIELD_FOR_NEW_KEY] = token.key
        if replaced:
            messages.info(request, "Your old token no longer works.")
        return redirect("user:tokens")


class RevokeApiTokenView(LoginRequiredMixin, View):
    def post(self, request):
        revoked, _ = Token.objects.filter(user=request.user).delete()
        if revoked:
            messages.success(request, "Token revoked: requests using it are now refused.")
        return redirect("user:tokens")
