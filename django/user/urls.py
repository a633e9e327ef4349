from django.contrib.auth.views import LoginView, LogoutView
from django.urls import path

from user.forms import LoginForm
from user.views import AccountSettingsView, ApiTokenView, RegisterView, RevokeApiTokenView

app_name = "user"

urlpatterns = [
    path(
        "login",
        LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout", LogoutView.as_view(), name="logout"),
    path("register", RegisterView.as_view(), name="register"),
    path("settings", AccountSettingsView.as_view(), name="settings"),
    path("tokens", ApiTokenView.as_view(), name="tokens"),
    path("tokens/revoke", RevokeApiTokenView.as_view(), name="revoke_token"),
]
