"""Development only: read the e-mails the local SMTP sink captured, links and all."""

import mailbox
from email import policy
from email.parser import BytesParser

from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_sameorigin


def _maildir():
    return mailbox.Maildir(settings.MAIL_APE_DEV_MAILBOX, factory=None, create=True)


def _parse(raw):
    return BytesParser(policy=policy.default).parsebytes(raw)


def inbox(request):
    box = _maildir()
    emails = []
    for key in box.iterkeys():
        parsed = _parse(box.get_bytes(key))
        emails.append(
            {
                "key": key,
                "to": parsed["To"],
                "subject": parsed["Subject"],
                "date": parsed["Date"],
                "received": box.get_message(key).get_date(),
            }
        )
    emails.sort(key=lambda email: email["received"], reverse=True)
    return render(request, "mailinglist/dev_mailbox.html", {"emails": emails})


def _email(key):
    try:
        return _parse(_maildir().get_bytes(key))
    except KeyError:
        raise Http404("No such e-mail.") from None


def show(request, key):
    parsed = _email(key)
    text = parsed.get_body(preferencelist=("plain",))
    return render(
        request,
        "mailinglist/dev_mailbox_email.html",
        {
            "key": key,
            "headers": parsed.items(),
            "text": text.get_content() if text else "",
        },
    )


# The HTML part is shown in an iframe on the e-mail's page, styled as the e-mail's
# author wrote it, as a mail client shows it: inline styles and remote images, no scripts.
@xframe_options_sameorigin
@csp_replace(  # type: ignore[arg-type]  # its typing admits only views without URL arguments
    {
        "default-src": [NONE],
        "style-src": [UNSAFE_INLINE],
        "img-src": ["*", "data:"],
        "frame-ancestors": [SELF],
    }
)
def show_html(request, key):
    html = _email(key).get_body(preferencelist=("html",))
    return HttpResponse(html.get_content() if html else "", content_type="text/html")
