import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(settings, request):
    """Each test of each run gets its own cache namespace, so counters never leak between them."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            **settings.CACHES["default"],
            "KEY_PREFIX": f"mailape-test-{os.getpid()}-{request.node.nodeid}",
        },
    }
