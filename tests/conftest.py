"""Shared fixtures. Tests speak HTTP (DRF's APIClient or a live server) and use three
tenants: a master key and two project keys in different projects."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.keys.models import ApiKey
from apps.keys.services import key_create


@dataclass
class Tenants:
    master: str
    a: str
    b: str
    master_key: ApiKey
    a_key: ApiKey
    b_key: ApiKey


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def tenants(db) -> Tenants:  # type: ignore[no-untyped-def]
    master = key_create(key_type=ApiKey.Type.MASTER, name="test master")
    a = key_create(key_type=ApiKey.Type.PROJECT, project_id="project-a", name="A")
    b = key_create(key_type=ApiKey.Type.PROJECT, project_id="project-b", name="B")
    return Tenants(master.plaintext, a.plaintext, b.plaintext, master.key, a.key, b.key)


def auth(key: str) -> dict[str, str]:
    return {"HTTP_X_API_KEY": key}


# --- the job pipeline: a real Celery worker, real Redis, the Gemini emulator ------------

@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Stored images go to the test's own directory (pytest removes old ones), never into
    the developer's var/media."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _fast_upstream_retries(settings):  # type: ignore[no-untyped-def]
    """Keep retry back-off real but short, so fault tests take milliseconds."""
    settings.UPSTREAM_RETRY_BASE_SECONDS = 0.01
    settings.UPSTREAM_RETRY_MAX_SECONDS = 0.05


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """A real Celery worker (threads pool) consuming from the real Redis broker, running in
    this process so tests can change settings (provider, timeouts) per test."""
    from celery.contrib.testing.worker import start_worker

    from banatie.celery import app

    app.loader.import_default_modules()
    with start_worker(app, pool="threads", concurrency=48, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=30) as worker:
        yield worker


@pytest.fixture
def worker(celery_worker, transactional_db):  # type: ignore[no-untyped-def]
    """Use in tests that run jobs: committed rows, so worker threads see them."""
    yield celery_worker
    # The worker outlives the test: a job it still runs would write while the flush that ends
    # the test truncates every table, and PostgreSQL answers that with a deadlock (seen in CI).
    import time

    from celery.worker import state

    deadline = time.monotonic() + 10
    while (state.active_requests or state.reserved_requests) and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture(scope="session")
def emulator():  # type: ignore[no-untyped-def]
    from tests.gemini_emulator import GeminiEmulator

    with GeminiEmulator() as emu:
        yield emu


GEMINI_TEST_KEY = "AIzaTEST-emulator-key-0123456789"


@pytest.fixture
def gemini(emulator, settings):  # type: ignore[no-untyped-def]
    """Point the service at the emulator through the real google-genai client."""
    emulator.reset()
    emulator.latency = 0.0
    settings.GEMINI_API_KEY = GEMINI_TEST_KEY
    settings.GEMINI_BASE_URL = emulator.base_url
    settings.GEMINI_TIMEOUT_SECONDS = 5
    yield emulator
    emulator.reset()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``predicate()`` is true, bounded in time."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def poll_job(client, key: str, job_id: str, timeout: float = 15.0) -> dict:  # type: ignore[no-untyped-def]
    """Poll /api/jobs/{id} until it finishes (bounded in time)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/jobs/{job_id}", **auth(key)).json()
        if body["status"] in ("succeeded", "failed", "canceled"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


def database_url() -> str:
    """The test database as a DATABASE_URL, for processes outside pytest."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def stack_factory(transactional_db, emulator, tmp_path, tenants):  # type: ignore[no-untyped-def]
    """Start the service as separate processes (tests/stack.py: the Procfile's gunicorn,
    Celery worker and beat, its own Redis) against the test database and the in-process
    emulator; stopped at teardown. Keyword arguments are environment variables;
    WORKER_CONCURRENCY (default 4 here) becomes the worker's --concurrency, WORKER_PROCESSES
    (default 1) how many worker processes run."""
    from tests.stack import Stack

    started: list[Stack] = []
    emulator.reset()
    emulator.latency = 0.0

    def start(**env: str) -> Stack:
        concurrency = int(env.pop("WORKER_CONCURRENCY", "4"))
        processes = int(env.pop("WORKER_PROCESSES", "1"))
        stack = Stack(workdir=tmp_path / f"stack{len(started)}", worker_concurrency=concurrency,
                      worker_processes=processes, env={
            "DATABASE_URL": database_url(), "WEB_CONCURRENCY": "1", "LOG_LEVEL": "warning",
            "GEMINI_API_KEY": GEMINI_TEST_KEY, "GEMINI_BASE_URL": emulator.base_url, **env,
        })
        started.append(stack)
        return stack.start()

    yield start
    for stack in started:
        stack.stop()
    emulator.reset()
    emulator.latency = 0.0


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    """A webhook receiver on 127.0.0.1 (tests/webhook_receiver.py): records and scripts answers."""
    from tests.webhook_receiver import Receiver

    with Receiver() as running:
        yield running
