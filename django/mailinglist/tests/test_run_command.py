"""The README's run command: SQLite, the file-system broker, a worker, beat and the mail sink."""

import mailbox
import os
import re
import signal
import subprocess
from email import policy
from email.parser import BytesParser

import pytest

from mailinglist.tests.harness import DJANGO_DIR, confirmation_link, free_port, wait_until
from mailinglist.tests.test_end_to_end import Browserless

pytestmark = pytest.mark.slow

REPO_DIR = DJANGO_DIR.parent


def newcomer_environment(var_dir):
    """This environment without the test run's settings, as a newcomer's shell has it."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "CELERY_", "MAIL_APE_", "EMAIL_", "MAILING_LIST_"))
    }
    env["MAIL_APE_VAR_DIR"] = str(var_dir)
    return env


@pytest.fixture
def running_app(tmp_path):
    port, mail_port = free_port(), free_port()
    env = newcomer_environment(tmp_path)
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        ["make", "run", f"PORT={port}", f"MAIL_PORT={mail_port}"],
        cwd=REPO_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://localhost:{port}"
    try:
        wait_until(
            lambda: process.poll() is not None or _answers(base_url + "/user/login"),
            timeout=180,
            message="make run to serve pages",
        )
        assert process.poll() is None, (tmp_path / "run.log").read_text()
        yield base_url, tmp_path / "mailbox"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def _answers(url):
    try:
        return Browserless().get(url)[0] == 200
    except OSError:
        return False


def captured(mailbox_dir, recipient, subject_part):
    box = mailbox.Maildir(mailbox_dir, create=True)
    for key in box.iterkeys():
        parsed = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        if parsed["To"] == recipient and subject_part in parsed["Subject"]:
            return parsed
    return None


def test_a_newcomer_goes_from_registering_to_reading_the_delivered_message(running_app):
    base_url, mailbox_dir = running_app
    owner, visitor = Browserless(), Browserless()
    password = "a long and unguessable passphrase"

    _, page = owner.submit(
        base_url + "/user/register",
        {
            "username": "ape",
            "email": "ape@example.com",
            "password1": password,
            "password2": password,
        },
    )
    assert "You have no mailing lists yet" in page
    _, page = owner.submit(base_url + "/mailinglist/new", {"name": "Banana Facts"})
    subscribe_link = re.search(r'id="subscribe-link" href="([^"]+)"', page)[1]
    list_path = re.search(r'href="(/mailinglist/[0-9a-f-]+/message/new)"', page)[1]

    _, page = visitor.submit(subscribe_link, {"email": "reader@example.com"})
    assert "Thank you for subscribing to Banana Facts" in page
    confirmation = wait_until(
        lambda: captured(mailbox_dir, "reader@example.com", "Confirm"),
        timeout=60,
        message="the confirmation e-mail in the mailbox",
    )
    _, page = visitor.submit(confirmation_link(confirmation, base_url), {})
    assert "You are subscribed to Banana Facts" in page

    _, page = owner.submit(
        base_url + list_path,
        {"subject": "Ripe today", "body": "Bananas are **yellow**.", "send": "1"},
    )
    assert "It goes to" in page
    message_path = re.search(r'href="(/mailinglist/message/[0-9a-f-]+)"', page)[1]
    _, page = owner.submit(base_url + message_path + "/send", {"send": "1"})
    assert "Ripe today" in page
    delivered = wait_until(
        lambda: captured(mailbox_dir, "reader@example.com", "Ripe today"),
        timeout=60,
        message="the message in the mailbox",
    )
    assert "<strong>yellow</strong>" in delivered.get_body(preferencelist=("html",)).get_content()
    _, page = owner.get(base_url + "/dev/mailbox/")
    assert "Ripe today" in page
    # The file-system broker keeps all of its folders under MAIL_APE_VAR_DIR, none in the repo.
    assert (mailbox_dir.parent / "broker-control").is_dir()


def readme_api_walkthrough():
    """The shell block under the README's "The API in five minutes" heading."""
    readme = (REPO_DIR / "README.md").read_text()
    section = readme.split("## The API in five minutes", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL)[1]


def test_the_readme_api_walkthrough_runs_as_it_is_written(running_app):
    base_url, mailbox_dir = running_app
    script = readme_api_walkthrough().replace("http://localhost:8000", base_url)
    try:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO_DIR,
            env=newcomer_environment(mailbox_dir.parent),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        for written in ("people.csv", "subscribers.csv"):
            (REPO_DIR / written).unlink(missing_ok=True)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert '[201,"koko@example.com"]' in lines
    assert "unconfirmed" in lines
    assert '"sent":2' in next(line for line in lines if line.startswith('{"total"'))
    assert "scheduled" in lines
    assert '"added":1' in next(line for line in lines if line.startswith('{"rows"'))
    assert any(line.startswith('"zoe@example.com","Zoe Ape","confirmed"') for line in lines)
    assert lines[-1] == "204"
