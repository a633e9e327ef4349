"""Real `manage.py runserver` processes and plain-HTTP calls for the API tests."""

import base64
import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
import uuid

from django.db import connection
from rest_framework.test import APIClient

from mailinglist.tests.harness import BackgroundProcess, free_port, wait_until
from user.tests.factories import PASSWORD


class DjangoServer(BackgroundProcess):
    """One `runserver --noreload` process on a free port, using this test's database."""

    def __init__(self, log_path, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            log_path,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.test_settings",
                "DJANGO_DB_NAME": connection.settings_dict["NAME"],
                "MAILING_LIST_LINK_DOMAIN": self.url,
                "PYTHONUNBUFFERED": "1",
                **{name: str(value) for name, value in env.items()},
            },
        )

    def start(self):
        self.launch(
            [
                sys.executable,
                "manage.py",
                "runserver",
                "--noreload",
                "--skip-checks",
                f"127.0.0.1:{self.port}",
            ]
        )
        wait_until(self._answers, timeout=60, message=f"runserver on port {self.port}")
        return self

    def _answers(self):
        if not self.running():
            raise RuntimeError(f"runserver exited:\n{self.log()}")
        with contextlib.suppress(OSError):
            return call(f"{self.url}/health").status == 200
        return False


@contextlib.contextmanager
def running_servers(tmp_path, count=1, **env):
    """Start count servers sharing one cache namespace; all are stopped on the way out."""
    env.setdefault("MAIL_APE_CACHE_PREFIX", f"mailape-api-test-{uuid.uuid4()}")
    servers = []
    try:
        for number in range(count):
            servers.append(DjangoServer(tmp_path / f"runserver-{number}.log", **env).start())
        yield servers
    finally:
        for server in servers:
            server.stop()


class HttpAnswer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


def basic_auth(username, password):
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def call(url, method="GET", headers=None, json_body=None):
    """One HTTP request with urllib; error statuses are answers, not exceptions."""
    data = None
    headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json; charset=utf-8"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return HttpAnswer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, error.headers, error.read())


def api_client_for(user):
    """DRF's test client sending real HTTP Basic credentials, as curl would."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(user.username, PASSWORD)["Authorization"])
    return client


def link_relations(response):
    """The Link header as {"next": url, …}."""
    relations = {}
    for part in response.headers.get("Link", "").split(","):
        if part.strip():
            url, rel = part.split(";")
            relations[rel.strip().removeprefix('rel="').removesuffix('"')] = url.strip()[1:-1]
    return relations
