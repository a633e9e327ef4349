from django.contrib.auth.views import LoginView, LogoutView
from django.urls import path

from user import views
from user.forms import LoginForm

app_name = "user"

urlpatterns = [
    path(
        "login",
        LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout", LogoutView.as_view(), name="logout"),
    path("register", views.RegisterView.as_view(), name="register"),
    path("settings", views.AccountSettingsView.as_view(), name="settings"),
    path("tokens", views.ApiTokenView.as_view(), name="tokens"),
    path("tokens/revoke", views.RevokeApiTokenView.as_view(), name="revoke_token"),
    path("password-reset", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done",
        views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("password", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/changed", views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("email", views.EmailChangeView.as_view(), name="change_email"),
    path(
        "email/confirm/<str:token>",
        views.ConfirmEmailChangeView.as_view(),
        name="confirm_email_change",
    ),
    path("delete", views.DeleteAccountView.as_view(), name="delete_account"),
    path("deleted", views.AccountDeletedView.as_view(), name="account_deleted"),
]
