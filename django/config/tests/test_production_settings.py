"""Production settings, loaded the way the servers load them: in a fresh process."""

import json
import os
import subprocess
import sys
from pathlib import Path

DJANGO_DIR = Path(__file__).resolve().parents[2]

REALISTIC_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "config.production_settings",
    "DJANGO_SECRET_KEY": "k7Vb2nQ9xLp4Rt8wZc1mHs6Fy3Jd0Ga5Ue7Ni2Ko9Pq4Wr8Ts1Ym6Bv3Xz",
    "DJANGO_ALLOWED_HOSTS": "mailape.example.com",
    "DJANGO_DB_NAME": "mailape",
    "DJANGO_DB_USER": "mailape",
    "DJANGO_DB_PASSWORD": "database-password",
    "DJANGO_DB_HOST": "mailape.abc123.us-west-2.rds.amazonaws.com",
    "DJANGO_DB_PORT": "5432",
    "DJANGO_LOG_LEVEL": "INFO",
    "MAIL_APE_FROM_EMAIL": "mailape@example.com",
    "MAILING_LIST_LINK_DOMAIN": "https://mailape.example.com",
    "EMAIL_HOST": "email-smtp.us-west-2.amazonaws.com",
    "EMAIL_HOST_USER": "smtp-user",
    "EMAIL_HOST_PASSWORD": "smtp-password",
    "EMAIL_HOST_PORT": "587",
    "EMAIL_HOST_TLS": "true",
    "CELERY_BROKER_URL": "sqs://",
    "AWS_DEFAULT_REGION": "us-west-2",
    "MAIL_APE_SQS_QUEUE_URL": "https://sqs.us-west-2.amazonaws.com/123456789012/mailape-mailape",
}


def run_manage(environment, *arguments):
    # Only PATH is inherited: a variable set on the developer's machine must not
    # make these settings look better configured than a fresh server is.
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=DJANGO_DIR,
        env={"PATH": os.environ.get("PATH", ""), **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_refuses_to_start_without_secret_key(tmp_path):
    environment = {**REALISTIC_ENVIRONMENT, "DJANGO_LOG_FILE": str(tmp_path / "mailape.log")}
    del environment["DJANGO_SECRET_KEY"]

    result = run_manage(environment, "check")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_deploy_check_passes_with_realistic_environment(tmp_path):
    environment = {**REALISTIC_ENVIRONMENT, "DJANGO_LOG_FILE": str(tmp_path / "mailape.log")}

    result = run_manage(environment, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_celery_uses_the_predefined_sqs_queue_that_cloudformation_makes(tmp_path):
    environment = {**REALISTIC_ENVIRONMENT, "DJANGO_LOG_FILE": str(tmp_path / "mailape.log")}
    script = (
        "import django, json; django.setup();"
        "from django.conf import settings;"
        "print(json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS))"
    )

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=DJANGO_DIR,
        env={"PATH": os.environ.get("PATH", ""), **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout)
    assert options["queue_name_prefix"] == "mailape-"
    assert options["region"] == "us-west-2"
    assert options["visibility_timeout"] >= 3600
    assert options["predefined_queues"] == {
        "mailape-mailape": {"url": REALISTIC_ENVIRONMENT["MAIL_APE_SQS_QUEUE_URL"]}
    }
