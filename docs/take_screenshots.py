"""Make the README's screenshots from a running Mail Ape (`make run`), with real data:
an owner, a list of 3,000 imported subscribers, and a message the worker delivers to them.

    .venv/bin/python docs/take_screenshots.py [http://localhost:8000]

Run it from the top of the checkout with the same MAIL_APE_VAR_DIR as `make run` (the
default is fine); it writes docs/screenshots/*.png.
"""

import base64
import json
import mailbox
import re
import subprocess
import sys
import time
import urllib.request
from email import policy
from email.parser import BytesParser
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "screenshots"
USERNAME, PASSWORD = "ada", "a long and unguessable passphrase"
FIRST_NAMES = ["Koko", "Ndume", "Zoe", "Michael", "Bonnie", "Kanzi", "Panbanisha", "Nyota"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}


def make_owner():
    code = (
        "from django.contrib.auth import get_user_model; User = get_user_model(); "
        f"User.objects.filter(username={USERNAME!r}).exists() or User.objects.create_user("
        f"username={USERNAME!r}, email='ada@example.com', password={PASSWORD!r})"
    )
    subprocess.run(
        [REPO / ".venv/bin/python", REPO / "django/manage.py", "shell", "-v", "0", "-c", code],
        check=True,
    )


class Api:
    def __init__(self, base_url):
        self.root = base_url + "/mailinglist/api/v1"
        credentials = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        self.headers = {"Authorization": f"Basic {credentials}"}

    def call(self, method, path, body=None, content_type="application/json"):
        url = path if path.startswith("http") else self.root + path
        data = json.dumps(body).encode() if content_type == "application/json" else body
        request = urllib.request.Request(  # noqa: S310 (the Mail Ape named on the command line)
            url,
            data=data,
            method=method,
            headers=self.headers | ({"Content-Type": content_type} if body is not None else {}),
        )
        with urllib.request.urlopen(request) as response:  # noqa: S310 (as above)
            return json.loads(response.read() or b"null")

    def wait_for(self, path, done):
        for _ in range(300):
            found = self.call("GET", path)
            if done(found):
                return found
            time.sleep(1)
        raise TimeoutError(path)

    def import_people(self, mailing_list, count):
        rows = ["Email Address,First Name,Last Name,Company"]
        for number in range(count):
            name = FIRST_NAMES[number % len(FIRST_NAMES)]
            rows.append(f"{name.lower()}{number}@example.com,{name},Ape,Banana Grove {number % 7}")
        boundary = "mailapescreenshots"
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=status\r\n\r\nconfirmed\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=file; filename=people.csv\r\n"
            f"Content-Type: text/csv\r\n\r\n" + "\n".join(rows) + f"\r\n--{boundary}--\r\n"
        ).encode()
        job = self.call(
            "POST",
            f"/mailinglist/{mailing_list}/subscribers/import",
            body,
            f"multipart/form-data; boundary={boundary}",
        )
        self.wait_for(job["url"], lambda found: found["status"] in ("finished", "failed"))


def make_data(api):
    bananas = api.call(
        "POST",
        "/mailing-list",
        {
            "name": "Banana Facts",
            "description": "One true thing about bananas, every Friday.",
            "archive": True,
        },
    )["id"]
    api.import_people(bananas, 3000)
    api.call("POST", f"/mailinglist/{bananas}/subscribers", {"email": "new.reader@example.com"})
    news = api.call("POST", "/mailing-list", {"name": "Weekly Ape News"})["id"]
    api.import_people(news, 40)
    message = api.call(
        "POST",
        f"/mailinglist/{bananas}/messages",
        {
            "subject": "Bananas are berries",
            "body": 'Hello {{ name|default:"friend" }},\n\nBotanically, a banana is a '
            "**berry** and a strawberry is not. [Read more](https://example.com/berries).",
        },
    )
    api.wait_for(f"/message/{message['id']}", lambda found: found["status"] == "finished")
    api.call(
        "POST",
        f"/mailinglist/{bananas}/messages",
        {"subject": "Plantains next week", "body": "A draft.", "status": "draft"},
    )
    return bananas, message["id"]


def manage_link(var_dir, recipient):
    """The "manage your subscription" link in the copy delivered to recipient."""
    box = mailbox.Maildir(var_dir / "mailbox", create=True)
    for key in box.iterkeys():
        parsed = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        if parsed["To"] == recipient:
            text = parsed.get_body(preferencelist=("plain",)).get_content()
            found = re.search(r"https?://\S+/mailinglist/subscription/\S+", text)
            if found:
                return found[0]
    return None


def shoot(base_url, bananas, message, var_dir):
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        for size_name, size in (("laptop", LAPTOP), ("phone", PHONE)):
            page = browser.new_page(viewport=size)
            page.goto(base_url + "/user/login")
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/mailinglist/")
            for name, path in (
                ("dashboard", "/mailinglist/"),
                ("list", f"/mailinglist/{bananas}/manage"),
                ("message", f"/mailinglist/message/{message}"),
            ):
                page.goto(base_url + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=OUT / f"{name}-{size_name}.png")
            page.close()
        visitor = browser.new_page(viewport=PHONE)
        visitor.goto(f"{base_url}/mailinglist/{bananas}/subscribe")
        visitor.screenshot(path=OUT / "subscribe-phone.png")
        link = manage_link(var_dir, "koko0@example.com")
        if link:
            visitor.goto(link)
            visitor.screenshot(path=OUT / "manage-subscription-phone.png")
        browser.close()


def main():
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000"
    var_dir = Path(
        subprocess.run(
            [
                REPO / ".venv/bin/python",
                REPO / "django/manage.py",
                "shell",
                "-v",
                "0",
                "-c",
                "from django.conf import settings; print(settings.VAR_DIR)",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    make_owner()
    bananas, message = make_data(Api(base_url))
    shoot(base_url, bananas, message, var_dir)
    print(f"Screenshots in {OUT}")


if __name__ == "__main__":
    main()
