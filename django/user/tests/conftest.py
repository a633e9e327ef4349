import re

import pytest

from mailinglist.tests.harness import SmtpSink


@pytest.fixture
def mailbox(settings):
    """A real SMTP server that Django's SMTP backend sends this test's e-mails to."""
    with SmtpSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = sink.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        yield sink


def link_in(email_message, path_start):
    """The path of the link in the e-mail's text that starts with http://testserver + path_start."""
    text = email_message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"http://testserver(" + re.escape(path_start) + r"\S+)", text)[1]
