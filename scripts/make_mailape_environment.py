"""Write /etc/mailape/mailape.env at boot from SSM Parameter Store and instance metadata.

Nothing secret is baked into the image: every instance reads its settings when it
starts. The parameter path and the instance's role come from instance tags
(MailApeParameterPath, MailApeRole), which the auto-scaling groups set.
"""

import argparse
import grp
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

METADATA_URL = "http://169.254.169.254/latest"
DEFAULT_PARAMETER_PATH = "/mailape/production"
REQUIRED = (
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_DB_NAME",
    "DJANGO_DB_USER",
    "DJANGO_DB_PASSWORD",
    "DJANGO_DB_HOST",
    "MAIL_APE_FROM_EMAIL",
    "MAILING_LIST_LINK_DOMAIN",
    "EMAIL_HOST",
    "MAIL_APE_SQS_QUEUE_URL",
)
# Bounce and complaint handling, written when present and left out when not: without them
# copies name no SES configuration set, the /anymail/ webhooks accept no calls and the
# envelope sender is MAIL_APE_FROM_EMAIL.
OPTIONAL = (
    "MAIL_APE_SES_CONFIGURATION_SET",
    "MAIL_APE_WEBHOOK_SECRET",
    "MAIL_APE_BOUNCE_ADDRESS",
)
IMAGE_DEFAULTS = {
    "DJANGO_SETTINGS_MODULE": "config.production_settings",
    "DJANGO_DB_PORT": "5432",
    "DJANGO_LOG_FILE": "/var/log/mailape/mailape.log",
    "DJANGO_LOG_LEVEL": "INFO",
    "EMAIL_HOST_PORT": "587",
    "EMAIL_HOST_TLS": "true",
    "CELERY_BROKER_URL": "sqs://",
}


class InstanceMetadata:
    """IMDSv2: every read needs a session token, which blocks SSRF-style reads."""

    def __init__(self, base_url=METADATA_URL, timeout=5):
        if not base_url.startswith("http://"):
            raise ValueError(f"instance metadata is plain HTTP, not {base_url!r}")
        self.base_url = base_url
        self.timeout = timeout
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            f"{base_url}/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            self.token = response.read().decode()

    def get(self, path, default=None):
        request = urllib.request.Request(  # noqa: S310 (scheme checked in __init__)
            f"{self.base_url}/meta-data/{path}",
            headers={"X-aws-ec2-metadata-token": self.token},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.read().decode().strip()
        except urllib.error.HTTPError as error:
            if error.code == 404 and default is not None:
                return default
            raise


def with_retries(action, attempts, pause_seconds):
    """Right after boot the network, the metadata service or SSM may not answer yet."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (OSError, BotoCoreError, ClientError) as error:
            if attempt == attempts:
                raise
            print(f"Attempt {attempt} failed ({error}); trying again", file=sys.stderr)
            time.sleep(pause_seconds)


def read_parameters(ssm, path):
    parameters = {}
    paginator = ssm.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=path, Recursive=False, WithDecryption=True):
        for parameter in page["Parameters"]:
            parameters[parameter["Name"].rsplit("/", 1)[-1]] = parameter["Value"]
    return parameters


def environment_file_line(name, value):
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name} spans several lines, which an environment file cannot hold")
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{quoted}"\n'


def optional_settings_warnings(environment):
    """What an optional setting that is present but unusable would silently break."""
    warnings = []
    secret = environment.get("MAIL_APE_WEBHOOK_SECRET")
    if secret is not None and not re.fullmatch(r"[^:@/\s]+:[^@/\s]+", secret):
        warnings.append(
            "MAIL_APE_WEBHOOK_SECRET is not username:password (no '@', '/' or spaces),"
            " so SNS cannot authenticate to the webhook"
        )
    if environment.get("MAIL_APE_SES_CONFIGURATION_SET") and secret is None:
        warnings.append(
            "MAIL_APE_SES_CONFIGURATION_SET without MAIL_APE_WEBHOOK_SECRET: SES publishes"
            " bounces and complaints, but the webhook cannot confirm or accept them"
        )
    return warnings


def build_environment(parameters, region, local_address):
    environment = {**IMAGE_DEFAULTS, **parameters, "AWS_DEFAULT_REGION": region}
    missing = [name for name in REQUIRED if not environment.get(name)]
    if missing:
        raise SystemExit(f"Missing SSM parameters: {', '.join(missing)}")
    for name in OPTIONAL:
        # SSM holds no empty value; one of only blanks counts as unset, as in the settings.
        if name in environment and not environment[name].strip():
            del environment[name]
    for warning in optional_settings_warnings(environment):
        print(f"Warning: {warning}", file=sys.stderr)
    if local_address:
        # The load balancer's health checks name the instance by its private address.
        hosts = [host for host in environment["DJANGO_ALLOWED_HOSTS"].split(",") if host]
        environment["DJANGO_ALLOWED_HOSTS"] = ",".join([*hosts, local_address])
    return environment


def write_private_file(path, text, group):
    temporary = path.with_name(f".{path.name}.new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)
    if group is not None and os.geteuid() == 0:
        os.chown(temporary, 0, grp.getgrnam(group).gr_gid)
    os.replace(temporary, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("/etc/mailape"))
    parser.add_argument("--group", default="www-data")
    parser.add_argument("--metadata-url", default=METADATA_URL)
    parser.add_argument("--no-metadata", action="store_true", help="off EC2: use the options")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--parameter-path", default=None)
    parser.add_argument("--role", default=None, choices=["web", "scheduler"])
    parser.add_argument("--ssm-endpoint-url", default=None)
    parser.add_argument("--attempts", type=int, default=30)
    parser.add_argument("--retry-seconds", type=float, default=10)
    options = parser.parse_args(argv)
    retry = {"attempts": options.attempts, "pause_seconds": options.retry_seconds}

    region, parameter_path, role, local_address = (
        options.region,
        options.parameter_path,
        options.role,
        None,
    )
    if not options.no_metadata:
        metadata = with_retries(lambda: InstanceMetadata(options.metadata_url), **retry)
        region = region or metadata.get("placement/region")
        parameter_path = parameter_path or metadata.get(
            "tags/instance/MailApeParameterPath", DEFAULT_PARAMETER_PATH
        )
        role = role or metadata.get("tags/instance/MailApeRole", "web")
        local_address = metadata.get("local-ipv4")
    if not region:
        raise SystemExit("No AWS region: run on EC2 or pass --region.")

    ssm = boto3.client("ssm", region_name=region, endpoint_url=options.ssm_endpoint_url)
    path = (parameter_path or DEFAULT_PARAMETER_PATH).rstrip("/")
    parameters = with_retries(lambda: read_parameters(ssm, path), **retry)
    environment = build_environment(parameters, region, local_address)

    options.output_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(environment_file_line(name, value) for name, value in environment.items())
    write_private_file(options.output_dir / "mailape.env", text, options.group)
    scheduler_marker = options.output_dir / "scheduler"
    if role == "scheduler":
        scheduler_marker.touch()
    else:
        scheduler_marker.unlink(missing_ok=True)
    present = [name for name in OPTIONAL if name in environment]
    print(
        f"Wrote {len(environment)} settings for a {role or 'web'} instance"
        f" (optional: {', '.join(present) or 'none'})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
