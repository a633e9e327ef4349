import pytest

from config import celery_app
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
