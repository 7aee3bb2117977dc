"""How many SQL statements one job costs (issue 13 item 4): the web side of an async
POST /api/text-to-image and of GET /api/jobs/{id}, with a key this process has already
cached (every request of a key but its first in a second), and the worker side of running
the job. Guards, at the counts measured when they were written: a change that adds a
statement to every job fails here, and whoever means it raises the number with a reason.
SQLite counts the BEGIN that Django sends for a transaction; PostgreSQL counts fewer."""
from __future__ import annotations

import pytest

from apps.jobs.services import job_run
from apps.jobs.wakeup import job_done_watch, listener_subscribed
from tests.conftest import auth

pytestmark = pytest.mark.django_db

BODY = {"prompt": "a lighthouse at dusk", "filename": "light", "autoEnhance": False}


def _post_async(api, key: str, **headers: str):  # type: ignore[no-untyped-def]
    return api.post("/api/text-to-image", BODY, format="json", HTTP_PREFER="respond-async", **auth(key), **headers)


@pytest.fixture
def key(api, tenants) -> str:  # type: ignore[no-untyped-def]
    """Key A after one use: in this process's key cache, its last use just recorded."""
    assert api.get("/api/me", **auth(tenants.a)).status_code == 200
    return tenants.a


def test_an_async_text_to_image_request_costs_three_statements(api, key, django_assert_max_num_queries):
    # The job's INSERT in its own transaction (BEGIN IMMEDIATE, INSERT, COMMIT on SQLite;
    # a savepoint pair inside the test's transaction). No key lookup, no last-used UPDATE.
    with django_assert_max_num_queries(3):
        assert _post_async(api, key).status_code == 202


def test_an_async_request_with_an_idempotency_key_costs_five_statements(api, key, django_assert_max_num_queries):
    # Two more: whether the Idempotency-Key was used already is asked twice, by the rate
    # limit's replay check (not charged) and by job_create; one answer could serve both.
    with django_assert_max_num_queries(5):
        assert _post_async(api, key, HTTP_IDEMPOTENCY_KEY="order-1").status_code == 202
    with django_assert_max_num_queries(2):  # the replay: the same two reads, nothing written
        assert _post_async(api, key, HTTP_IDEMPOTENCY_KEY="order-1").status_code == 202


def test_polling_a_queued_job_costs_two_statements(api, key, django_assert_max_num_queries):
    job_id = _post_async(api, key).json()["jobId"]
    with django_assert_max_num_queries(2):  # the row, and its queuePosition (one indexed count)
        body = api.get(f"/api/jobs/{job_id}", **auth(key)).json()
    assert body["status"] == "queued" and body["queuePosition"] == 0


def test_running_a_job_costs_eight_statements(api, key, settings, django_assert_max_num_queries):
    settings.GEMINI_API_KEY = ""  # the offline provider: it makes no query
    # The claim reads the row (its transition's listeners see the job before it changes), then
    # UPDATEs it; the outcome is one UPDATE. Each of the two transitions (job.started, then
    # job.succeeded) also asks once whether the project has an active webhook endpoint
    # subscribed (apps.webhooks): one SELECT each. The finish adds the job's usage to its
    # day's figures (apps.usage: one upsert) in the finish's own transaction (BEGIN
    # IMMEDIATE and COMMIT on SQLite), so the figures never disagree with the jobs.
    # The heartbeat's one UPDATE per process every few seconds,
    # whatever the number of jobs, runs on its own thread and is not counted.
    # The process's job-change listener is subscribed already (its first subscription wakes
    # every watcher, a running job included, to check the row once: not a per-job cost).
    with job_done_watch("warm-up"):
        assert listener_subscribed(10)
    job_id = _post_async(api, key).json()["jobId"]
    with django_assert_max_num_queries(8):
        job_run(job_id=job_id)
    assert api.get(f"/api/jobs/{job_id}", **auth(key)).json()["status"] == "succeeded"
