"""The e-mails Mail Ape sends to list owners about their account."""

from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from mailinglist.emails import absolute_url


def send_email_change_link(user, new_email):
    """Ask new_email's owner to confirm that it is to be the account's address."""
    link = absolute_url(
        reverse("user:confirm_email_change", kwargs={"token": user.email_change_token(new_email)})
    )
    context = {"user": user, "new_email": new_email, "link": link}
    subject = render_to_string("user/email/change_email_subject.txt", context)
    body = render_to_string("user/email/change_email.txt", context)
    send_mail(" ".join(subject.split()), body, None, [new_email])
