from django.urls import path

from mailinglist import dev_mailbox

app_name = "dev_mailbox"

urlpatterns = [
    path("", dev_mailbox.inbox, name="inbox"),
    path("<str:key>", dev_mailbox.show, name="show"),
    path("<str:key>/html", dev_mailbox.show_html, name="show_html"),
]
