"""bench/load_test.py at a small size: visitors through Apache and mod_wsgi while a
message goes out, with every subscription and unsubscription recorded."""

import re
import subprocess
import sys

import pytest

from mailinglist.tests.harness import DJANGO_DIR

LOAD_SCRIPT = DJANGO_DIR.parent / "bench" / "load_test.py"


@pytest.mark.slow
def test_visitors_through_apache_lose_nothing_while_a_message_goes_out():
    # The timeout leaves room for building the production virtualenv once, when
    # deploy-check has not cached it yet.
    result = subprocess.run(
        [sys.executable, LOAD_SCRIPT, "--visitors", "4", "--seconds", "8", "--recipients", "200"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert re.search(r"^lost: 0$", result.stdout, re.MULTILINE), report
    assert re.search(r"^errors: 0$", result.stdout, re.MULTILINE), report
