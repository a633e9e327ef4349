from smtplib import SMTPException

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.messages.views import SuccessMessageMixin
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.generic import CreateView, FormView, TemplateView, UpdateView
from rest_framework.authtoken.models import Token

from mailinglist.models import MailingList
from mailinglist.public_views import too_many_requests
from mailinglist.throttles import (
    PasswordResetsPerAddressThrottle,
    PasswordResetsPerClientThrottle,
)
from user.emails import send_email_change_link
from user.forms import AccountSettingsForm, DeleteAccountForm, EmailChangeForm, RegistrationForm
from user.models import InvalidEmailChange, User

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
    success_message = _("Saved.")

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
            messages.info(request, gettext("Your old token no longer works."))
        return redirect("user:tokens")


class RevokeApiTokenView(LoginRequiredMixin, View):
    def post(self, request):
        revoked, _ = Token.objects.filter(user=request.user).delete()
        if revoked:
            messages.success(request, gettext("Token revoked: requests using it are now refused."))
        return redirect("user:tokens")


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset by e-mail; the link in it leads to Mail Ape's own address, not to
    whatever Host the request named. An unknown address gets the same answer as a known one."""

    template_name = "user/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("user:password_reset_done")

    def form_valid(self, form):
        client_limit = PasswordResetsPerClientThrottle()
        if not client_limit.allow_request(self.request, self):
            return too_many_requests(self.request, client_limit.wait())
        # Past an address's limit the page looks the same, but no e-mail goes out.
        if not PasswordResetsPerAddressThrottle(form.cleaned_data["email"]).allow_request(
            self.request, self
        ):
            return redirect(self.success_url)
        self.extra_email_context = {"link_domain": settings.MAILING_LIST_LINK_DOMAIN.rstrip("/")}
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "user/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "user/password_reset_confirm.html"
    success_url = reverse_lazy("user:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "user/password_reset_complete.html"


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "user/password_change_form.html"
    success_url = reverse_lazy("user:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "user/password_change_done.html"


class EmailChangeView(LoginRequiredMixin, FormView):
    """Takes the new address and the password, and mails a confirmation link to the new address."""

    form_class = EmailChangeForm
    template_name = "user/email_change_form.html"
    success_url = reverse_lazy("user:settings")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form):
        new_email = form.cleaned_data["new_email"]
        try:
            send_email_change_link(self.request.user, new_email)
        except (SMTPException, OSError):
            form.add_error(
                None, gettext("We could not send the e-mail just now; try again in a few minutes.")
            )
            return self.form_invalid(form)
        messages.info(
            self.request,
            gettext("We sent a link to %(address)s: follow it to make it your address.")
            % {"address": new_email},
        )
        return super().form_valid(form)


class ConfirmEmailChangeView(View):
    """The link in the e-mail: a GET shows a button, which POSTs; only the POST changes.
    It needs no login, as the link may be opened on another device."""

    template_name = "user/email_change_confirm.html"

    def get(self, request, token):
        try:
            user, new_email = User.pending_email_change(token)
        except InvalidEmailChange:
            return self.refused()
        return render(request, self.template_name, {"account": user, "new_email": new_email})

    def post(self, request, token):
        try:
            user = User.confirm_email_change(token)
        except InvalidEmailChange:
            return self.refused()
        return render(request, "user/email_change_done.html", {"account": user})

    def refused(self):
        return render(self.request, "user/email_change_invalid.html", status=400)


class DeleteAccountView(LoginRequiredMixin, FormView):
    form_class = DeleteAccountForm
    template_name = "user/delete_account.html"
    success_url = reverse_lazy("user:account_deleted")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            mailing_lists=MailingList.objects.usable_by(self.request.user), **kwargs
        )

    def form_valid(self, form):
        self.request.user.erase()
        logout(self.request)
        return super().form_valid(form)


class AccountDeletedView(TemplateView):
    template_name = "user/account_deleted.html"
