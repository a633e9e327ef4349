import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(settings, request):
    """Each test gets its own cache namespace so throttle counters never leak between tests."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            **settings.CACHES["default"],
            "KEY_PREFIX": f"mailape-test-{request.node.nodeid}",
        },
    }
