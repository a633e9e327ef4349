"""The per-user limit is counted in the shared cache, so two web processes cannot double it."""

import itertools

import pytest

from mailinglist.tests.api_helpers import basic_auth, call, running_servers
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.slow

USER_LIMIT_PER_MINUTE = 60


def test_requests_spread_over_two_processes_share_one_limit(transactional_db, tmp_path):
    user = UserFactory()
    credentials = basic_auth(user.username, PASSWORD)

    with running_servers(tmp_path, count=2) as servers:
        urls = itertools.cycle(
            f"{server.url}/mailinglist/api/v1/mailing-list" for server in servers
        )
        statuses = [
            call(next(urls), headers=credentials).status for _ in range(USER_LIMIT_PER_MINUTE)
        ]
        refused = call(next(urls), headers=credentials)
        refused_elsewhere = call(next(urls), headers=credentials)

    assert statuses == [200] * USER_LIMIT_PER_MINUTE
    assert refused.status == 429
    assert refused_elsewhere.status == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "detail" in refused.json()


def test_anonymous_callers_share_a_lower_limit(transactional_db, tmp_path):
    with running_servers(tmp_path, count=2) as servers:
        urls = itertools.cycle(f"{server.url}/mailinglist/api/v1/schema" for server in servers)
        statuses = [call(next(urls)).status for _ in range(30)]
        refused = call(next(urls))

    assert statuses == [200] * 30
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
