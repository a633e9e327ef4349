from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config.views import health
from mailinglist import webhooks

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="mailinglist:mailinglist_list"), name="home"),
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("user/", include("user.urls", namespace="user")),
    path("mailinglist/", include("mailinglist.urls", namespace="mailinglist")),
    # Providers' bounce and complaint reports, at the paths anymail's documentation gives.
    path("anymail/", include((webhooks.urlpatterns, "anymail"))),
]

# Only the development settings capture e-mail into a local mailbox.
if getattr(settings, "MAIL_APE_DEV_MAILBOX", None):
    urlpatterns.append(path("dev/mailbox/", include("mailinglist.dev_mailbox_urls")))
