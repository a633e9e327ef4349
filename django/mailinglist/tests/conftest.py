import os

import pytest
from playwright.sync_api import sync_playwright

from config import celery_app
from mailinglist.tests.browser import CHROMIUM, CHROMIUM_ARGS, open_context
from mailinglist.tests.harness import (
    CeleryWorker,
    RedisServer,
    SmtpSink,
    worker_environment,
)


@pytest.fixture
def smtp_sink():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def celery_tasks_to_broker():
    """Publish tasks to the real broker instead of running them in the test process."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


@pytest.fixture
def start_celery_worker(transactional_db, celery_tasks_to_broker, tmp_path):
    """Start real worker processes on Redis; all are stopped at teardown."""
    workers = []

    def start(smtp_port, link_domain="http://testserver", concurrency=2, beat=False, **env):
        worker = CeleryWorker(
            worker_environment(smtp_port, link_domain, **env),
            tmp_path / f"worker-{len(workers)}.log",
            concurrency=concurrency,
            beat=beat,
        )
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own, for tests that kill it; never the machine's."""
    server = RedisServer(tmp_path / "redis.log").start()
    yield server
    server.stop()


@pytest.fixture
def celery_app_on_broker(celery_tasks_to_broker):
    """Point this process's Celery app at another broker URL until the test ends."""
    original_url = celery_app.conf.broker_url

    def use(url):
        celery_app.conf.broker_url = url
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    yield use
    use(original_url)


@pytest.fixture(scope="module")
def _allow_django_orm_beside_playwright():
    """Playwright's sync API runs an asyncio event loop in the test thread.

    Django then sees a running loop and refuses ORM calls from that thread with
    SynchronousOnlyOperation, although the test is synchronous: factories in the tests
    and the database flush at teardown would fail. No coroutine touches the ORM here,
    so the check protects nothing. The requests themselves are served by live_server's
    own thread, where no loop runs and the check stays on.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def chromium(_allow_django_orm_beside_playwright):
    """Debian's chromium, driven by Playwright (its own browser downloads are not used)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium (make system-packages)"
        # CI installs chromium, so there its absence is a broken machine, not a reason to skip.
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_browser_page(chromium):
    """Open pages in fresh browser contexts, each with its own cookies, like separate people."""
    contexts = []

    def open_page():
        context = open_context(chromium)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
