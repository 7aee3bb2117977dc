"""Nothing lost: duplicate deliveries, dead workers, lost enqueues, Redis restarts,
upstream faults, idempotency keys, graceful shutdown. Each fault is really injected."""
from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
import requests
from django.utils import timezone

from apps.jobs.models import Job
from apps.jobs.services import job_claim, job_run, job_sweep
from tests.conftest import auth, poll_job, wait_for
from tests.gemini_emulator import Reply


@pytest.fixture(autouse=True)
def media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def files_in(media) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for p in media.rglob("*") if p.is_file()) if media.exists() else 0


def t2i(api, key, **extra):  # type: ignore[no-untyped-def]
    return api.post("/api/text-to-image", {"prompt": "a lighthouse at dusk", "filename": "light", "autoEnhance": False},
                    format="json", **auth(key), **extra)


# --- idempotent tasks ------------------------------------------------------------------

def test_second_delivery_of_a_finished_job_does_nothing(api, worker, tenants, gemini, media):
    r = t2i(api, tenants.a)
    assert r.status_code == 200
    job_id = r.json()["data"]["jobId"]
    job_run(job_id=job_id)  # a duplicate delivery, after the fact
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded" and job.attempts == 1
    assert len(gemini.requests) == 1 and files_in(media) == 1


def test_concurrent_deliveries_make_one_upstream_call(tenants, gemini, media, transactional_db):
    gemini.latency = 0.5
    job = Job.objects.create(api_key=tenants.a_key, project_id="project-a", kind="generation",
                             request={"prompt": "p", "filename": "f", "aspect_ratio": "1:1", "references": []})
    threads = [threading.Thread(target=job_run, kwargs={"job_id": str(job.id)}) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 1
    assert len(gemini.requests) == 1 and files_in(media) == 1


def test_attempt_that_lost_its_lease_cannot_finish_the_job(tenants, gemini, media, transactional_db):
    gemini.enqueue(Reply.delay(1.5))
    job = Job.objects.create(api_key=tenants.a_key, project_id="project-a", kind="generation",
                             request={"prompt": "p", "filename": "f", "aspect_ratio": "1:1", "references": []})
    slow = threading.Thread(target=job_run, kwargs={"job_id": str(job.id)})
    slow.start()
    deadline = time.monotonic() + 10
    while not gemini.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # "worker died"
    job_run(job_id=str(job.id))  # the redelivery takes over and finishes
    slow.join(10)  # the first attempt comes back late
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2 and len(gemini.requests) == 2
    assert files_in(media) == 1 and (media / job.result["storageKey"]).exists()
    assert job_claim(job_id=str(job.id)) is None


# --- sweep -----------------------------------------------------------------------------

def _queued_job(tenants, minutes_ago: float = 5) -> Job:  # type: ignore[no-untyped-def]
    past = timezone.now() - timedelta(minutes=minutes_ago)
    return Job.objects.create(api_key=tenants.a_key, project_id="project-a", kind="enhancement",
                              request={"prompt": "lost message", "options": {}}, enqueued_at=past, created_at=past)


def test_sweep_republishes_a_job_whose_message_was_lost(api, worker, tenants, gemini):
    job = _queued_job(tenants)  # row committed, task never published
    counts = job_sweep()
    assert counts["republished"] == 1
    done = poll_job(api, tenants.a, str(job.id))
    assert done["status"] == "succeeded" and len(gemini.requests) == 1


def test_sweep_leaves_a_job_whose_message_the_broker_still_holds(api, worker, tenants, gemini):
    # A backlog: the message was delivered to a busy worker (prefetched, unacked) or waits
    # in the queue. Republishing it would only add a copy; once it is gone, the sweep does.
    import json
    import time as clock

    from banatie.celery import app

    job = _queued_job(tenants)
    tag = f"sweep-test-{job.id}"
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        message = {"headers": {"id": str(job.id), "task": "jobs.job_run"}, "body": ""}
        channel.client.hset(channel.unacked_key, tag, json.dumps([message, "", "celery"]))
        channel.client.zadd(channel.unacked_index_key, {tag: clock.time()})
        try:
            assert job_sweep()["republished"] == 0
            assert len(gemini.requests) == 0
        finally:
            channel.client.hdel(channel.unacked_key, tag)
            channel.client.zrem(channel.unacked_index_key, tag)
    assert job_sweep()["republished"] == 1
    assert poll_job(api, tenants.a, str(job.id))["status"] == "succeeded"


def test_sweep_republishes_a_job_whose_delivery_is_stale(api, worker, tenants, gemini, settings):
    # Delivered to a worker long ago and never acked, the job still queued: the worker lost
    # its broker connection with the message reserved (tests/test_multihost.py cuts the data
    # host's link). kombu would restore it only after the visibility timeout; the sweep
    # republishes it once SWEEP_QUEUED_AFTER_SECONDS passed since the delivery.
    import json
    import time as clock

    from banatie.celery import app

    job = _queued_job(tenants)
    tag = f"sweep-test-stale-{job.id}"
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        message = {"headers": {"id": str(job.id), "task": "jobs.job_run"}, "body": ""}
        channel.client.hset(channel.unacked_key, tag, json.dumps([message, "", "celery"]))
        channel.client.zadd(channel.unacked_index_key,
                            {tag: clock.time() - settings.SWEEP_QUEUED_AFTER_SECONDS - 1})
        try:
            assert job_sweep()["republished"] == 1
            assert poll_job(api, tenants.a, str(job.id))["status"] == "succeeded"
            assert len(gemini.requests) == 1
        finally:
            channel.client.hdel(channel.unacked_key, tag)
            channel.client.zrem(channel.unacked_index_key, tag)


def test_concurrent_sweeps_publish_once(api, worker, tenants, gemini):
    job = _queued_job(tenants)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: job_sweep(), range(4)))
    assert sum(r["republished"] for r in results) == 1
    assert job_sweep()["republished"] == 0  # and again: nothing is stale any more
    poll_job(api, tenants.a, str(job.id))
    assert len(gemini.requests) == 1


def test_sweep_recovers_an_expired_lease(api, worker, tenants, gemini):
    job = _queued_job(tenants)
    Job.objects.filter(pk=job.pk).update(status="running", attempts=1,
                                         lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert job_sweep()["recovered"] == 1
    done = poll_job(api, tenants.a, str(job.id))
    assert done["status"] == "succeeded" and done["attempts"] == 2


def test_too_many_attempts_fails_instead_of_looping(api, worker, tenants, settings):
    settings.JOB_MAX_ATTEMPTS = 3
    job = _queued_job(tenants)
    Job.objects.filter(pk=job.pk).update(status="running", attempts=3,
                                         lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert job_sweep()["failed"] == 1
    body = api.get(f"/api/jobs/{job.id}", **auth(tenants.a)).json()
    assert body["status"] == "failed" and body["error"]["code"] == "too_many_attempts"
    # a late redelivery of the same task does not revive it
    job_run(job_id=str(job.id))
    assert Job.objects.get(pk=job.pk).status == "failed"


def test_redelivery_beyond_max_attempts_fails(api, worker, tenants, settings, gemini):
    settings.JOB_MAX_ATTEMPTS = 2
    job = _queued_job(tenants)
    Job.objects.filter(pk=job.pk).update(attempts=2)
    job_run(job_id=str(job.id))
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "too_many_attempts" and len(gemini.requests) == 0


# --- enqueue lost ----------------------------------------------------------------------

@pytest.fixture
def dead_broker(monkeypatch):  # type: ignore[no-untyped-def]
    from banatie.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    app._pool = None
    app.amqp._producer_pool = None


def test_broker_unreachable_at_enqueue_is_a_fast_503(api, tenants, dead_broker, transactional_db):
    started = time.monotonic()
    r = t2i(api, tenants.a)
    elapsed = time.monotonic() - started
    assert r.status_code == 503, r.json()
    assert r.json()["code"] == "queue_unavailable" and int(r["Retry-After"]) >= 1
    assert elapsed < 8, elapsed
    job = Job.objects.get()
    assert job.status == "failed" and job.error_code == "queue_unavailable"


def test_broker_unreachable_with_prefer_async_is_503_too(api, tenants, dead_broker, transactional_db):
    r = t2i(api, tenants.a, HTTP_PREFER="respond-async")
    assert r.status_code == 503 and r.json()["code"] == "queue_unavailable"


def test_same_idempotency_key_works_once_the_broker_is_back(api, worker, tenants, monkeypatch):
    from banatie.celery import app

    good = (app.conf.broker_url, app._pool, app.amqp._producer_pool)
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    app._pool = app.amqp._producer_pool = None
    assert t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="retry-me").status_code == 503
    app.conf.broker_url, app._pool, app.amqp._producer_pool = good
    r = t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="retry-me")
    assert r.status_code == 200 and "Idempotent-Replayed" not in r


# --- upstream faults -------------------------------------------------------------------

def test_hang_longer_than_the_job_time_limit_frees_the_worker(api, worker, tenants, gemini, settings):
    settings.JOB_SOFT_TIME_LIMIT = 1
    gemini.enqueue(Reply.delay(6))
    started = time.monotonic()
    r = t2i(api, tenants.a)
    assert r.status_code == 504 and r.json()["code"] == "job_timed_out", r.json()
    assert time.monotonic() - started < 4
    assert t2i(api, tenants.a).status_code == 200  # the next job runs normally


def test_retry_after_from_upstream_is_honoured(api, worker, tenants, gemini, settings):
    settings.UPSTREAM_RETRY_MAX_SECONDS = 5
    gemini.enqueue(Reply.error(429, retry_after=1))
    started = time.monotonic()
    assert t2i(api, tenants.a).status_code == 200
    assert time.monotonic() - started >= 1.0
    assert len(gemini.requests) == 2


# --- Idempotency-Key -------------------------------------------------------------------

def test_idempotent_replay_returns_the_same_job_without_charging(api, worker, tenants, gemini, settings):
    settings.BANATIE_RATE_LIMIT = "10/h"
    first = t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="order-42")
    second = t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == second.status_code == 200
    assert first.json()["data"]["jobId"] == second.json()["data"]["jobId"]
    assert first.json()["data"]["filepath"] == second.json()["data"]["filepath"]
    assert second["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert first["X-RateLimit-Remaining"] == second["X-RateLimit-Remaining"] == "9"
    assert len(gemini.requests) == 1 and Job.objects.count() == 1


def test_idempotency_key_is_per_api_key(api, worker, tenants):
    a = t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="same", HTTP_PREFER="respond-async")
    b = t2i(api, tenants.b, HTTP_IDEMPOTENCY_KEY="same", HTTP_PREFER="respond-async")
    assert a.json()["jobId"] != b.json()["jobId"]


def test_idempotency_key_with_another_body_is_422(api, worker, tenants):
    t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="k1", HTTP_PREFER="respond-async")
    r = api.post("/api/text-to-image", {"prompt": "something else", "filename": "light"}, format="json",
                 **auth(tenants.a), HTTP_IDEMPOTENCY_KEY="k1")
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    assert Job.objects.count() == 1


def test_idempotency_key_expires_after_ttl(api, worker, tenants):
    first = t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="old", HTTP_PREFER="respond-async").json()["jobId"]
    Job.objects.filter(pk=first).update(created_at=timezone.now() - timedelta(hours=25))
    second = t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="old", HTTP_PREFER="respond-async").json()["jobId"]
    assert first != second


def test_invalid_idempotency_key_is_400(api, tenants, db):
    r = t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_invalid"


def test_idempotency_on_enhance_and_generate(api, worker, tenants, gemini):
    body = {"prompt": "a cat"}
    one = api.post("/api/enhance", body, format="json", **auth(tenants.a), HTTP_IDEMPOTENCY_KEY="e1")
    two = api.post("/api/enhance", body, format="json", **auth(tenants.a), HTTP_IDEMPOTENCY_KEY="e1")
    assert one.json()["jobId"] == two.json()["jobId"]
    form = {"prompt": "a dog", "filename": "dog"}
    g1 = api.post("/api/generate", form, format="multipart", **auth(tenants.a), HTTP_IDEMPOTENCY_KEY="g1")
    g2 = api.post("/api/generate", form, format="multipart", **auth(tenants.a), HTTP_IDEMPOTENCY_KEY="g1")
    assert g1.json()["data"]["jobId"] == g2.json()["data"]["jobId"]
    assert len(gemini.requests) == 2


def test_concurrent_duplicates_create_one_job(worker, live_server, tenants, gemini):
    gemini.latency = 0.5
    url = f"{live_server.url}/api/text-to-image"
    body = {"prompt": "a lighthouse at dusk", "filename": "light", "autoEnhance": False}

    def one(_: int) -> tuple[int, str]:
        r = requests.post(url, json=body, headers={"X-API-Key": tenants.a, "Idempotency-Key": "dup"}, timeout=30)
        return r.status_code, r.json()["data"]["jobId"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    assert {code for code, _ in results} == {200}
    assert len({job_id for _, job_id in results}) == 1
    assert Job.objects.count() == 1 and len(gemini.requests) == 1


# --- processes: the stack as `make run` starts it ---------------------------------------

@pytest.fixture
def stack(stack_factory):  # type: ignore[no-untyped-def]
    return stack_factory(
        JOB_SOFT_TIME_LIMIT="6", JOB_HARD_TIME_LIMIT="7", JOB_LEASE_SECONDS="8", JOB_HEARTBEAT_SECONDS="2",
        BROKER_VISIBILITY_TIMEOUT="10",
        SWEEP_INTERVAL_SECONDS="1", SWEEP_QUEUED_AFTER_SECONDS="2", SYNC_WAIT_SECONDS="20",
        UPSTREAM_RETRY_BASE_SECONDS="0.05",
    )


def _post(stack, key, prefer_async=False, timeout=40):  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": key, **({"Prefer": "respond-async"} if prefer_async else {})}
    return requests.post(f"{stack.url}/api/text-to-image", json={"prompt": "a lighthouse", "filename": "light",
                                                                 "autoEnhance": False},
                         headers=headers, timeout=timeout)


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    wait_for(predicate, timeout, what, interval=0.1)


def _job_done(stack, key, job_id, timeout=40) -> dict:  # type: ignore[no-untyped-def]
    body: dict = {}

    def finished() -> bool:
        nonlocal body
        body = requests.get(f"{stack.url}/api/jobs/{job_id}", headers={"X-API-Key": key}, timeout=5).json()
        return body["status"] in ("succeeded", "failed")

    _wait_for(finished, timeout, f"job {job_id}")
    return body


@pytest.mark.slow
def test_worker_killed_mid_job_is_redelivered_and_completes(stack, tenants, emulator):
    emulator.enqueue(Reply.delay(4))
    job_id = _post(stack, tenants.a, prefer_async=True).json()["jobId"]
    _wait_for(lambda: len(emulator.requests) == 1, 10, "the upstream call")
    stack.signal("worker", signal.SIGKILL)
    stack.wait_exit("worker")
    stack.start_worker()
    body = _job_done(stack, tenants.a, job_id)
    assert body["status"] == "succeeded", body
    assert body["attempts"] == 2 and len(emulator.requests) == 2
    assert sum(1 for p in (stack.workdir / "media").rglob("*") if p.is_file()) == 1


@pytest.mark.slow
def test_redis_restart_turns_waiting_requests_into_202_and_queued_jobs_still_finish(stack, tenants, emulator):
    emulator.latency = 3
    results: dict = {}

    def waiting_client() -> None:
        results["r"] = _post(stack, tenants.a)

    t = threading.Thread(target=waiting_client)
    t.start()
    _wait_for(lambda: len(emulator.requests) == 1, 10, "the first job to run")
    # A second job queued behind a stopped worker: its message lives only in Redis.
    stack.signal("worker", signal.SIGTERM)
    queued = _post(stack, tenants.a, prefer_async=True)
    port = stack.redis.port
    stack.redis.stop()
    t.join(15)
    assert results["r"].status_code == 202, results["r"].text  # not a hang, not a 500
    first_job = results["r"].json()["jobId"]
    stack.wait_exit("worker")
    from banatie.runner import EmbeddedRedis

    stack.redis = EmbeddedRedis(port=port, workdir=stack.workdir).start()  # an empty Redis
    emulator.latency = 0
    stack.start_worker()
    assert _job_done(stack, tenants.a, first_job)["status"] == "succeeded"
    assert _job_done(stack, tenants.a, queued.json()["jobId"])["status"] == "succeeded"


@pytest.mark.slow
def test_a_redis_restart_with_jobs_in_flight_leaves_the_same_workers_consuming(stack_factory, tenants, emulator):
    # Fewer jobs in flight than worker threads, so the worker also waits in BRPOP when Redis
    # dies: kombu then half-closed its channel and the worker exited (AttributeError in
    # _connparams). The fix: banatie.redis_transport.
    stack = stack_factory(WORKER_CONCURRENCY="8")
    emulator.latency = 3
    running = [_post(stack, tenants.a, prefer_async=True).json()["jobId"] for _ in range(3)]
    _wait_for(lambda: len(emulator.requests) == 3, 15, "three upstream calls")
    worker_pid = stack.procs["worker"][0].pid
    port = stack.redis.port
    stack.redis.proc.kill()  # kill -9
    stack.redis.proc.wait(5)
    time.sleep(1)
    from banatie.runner import EmbeddedRedis

    stack.redis = EmbeddedRedis(port=port, workdir=stack.workdir).start()
    emulator.latency = 0
    for job_id in running:  # in flight when Redis died: they finish
        assert _job_done(stack, tenants.a, job_id, timeout=30)["status"] == "succeeded"
    after = [_post(stack, tenants.a, prefer_async=True).json()["jobId"] for _ in range(5)]
    for job_id in after:  # and the same worker process keeps consuming
        assert _job_done(stack, tenants.a, job_id, timeout=30)["status"] == "succeeded"
    assert stack.procs["worker"][0].pid == worker_pid and stack.procs["worker"][0].poll() is None


@pytest.mark.slow
def test_sigterm_lets_running_jobs_and_waiting_requests_finish(stack, tenants, emulator):
    emulator.latency = 2
    results: dict = {}
    t = threading.Thread(target=lambda: results.setdefault("r", _post(stack, tenants.a)))
    t.start()
    _wait_for(lambda: len(emulator.requests) == 1, 10, "the job to start")
    stack.signal("worker", signal.SIGTERM)
    stack.signal("web", signal.SIGTERM)
    t.join(30)
    assert results["r"].status_code == 200, results["r"].text
    assert stack.wait_exit("worker") == 0 and stack.wait_exit("web") == 0
    job = Job.objects.get()
    assert job.status == "succeeded" and job.attempts == 1


@pytest.mark.slow
def test_a_dead_workers_job_is_finished_by_another_within_45_seconds(stack_factory, tenants, emulator):
    # The shipped lease, heartbeat and sweep interval (no overrides): a worker that dies is
    # noticed a lease later, not after the job's whole time limit.
    stack = stack_factory()
    emulator.enqueue(Reply.delay(30))  # the attempt that dies never gets its answer
    job_id = _post(stack, tenants.a, prefer_async=True).json()["jobId"]
    _wait_for(lambda: len(emulator.requests) == 1, 10, "the upstream call")
    killed_at = time.monotonic()
    stack.signal("worker", signal.SIGKILL)
    stack.wait_exit("worker")
    stack.start_worker()
    body = _job_done(stack, tenants.a, job_id, timeout=60)
    assert body["status"] == "succeeded" and body["attempts"] == 2, body
    assert time.monotonic() - killed_at < 45


@pytest.mark.slow
def test_sigterm_hands_back_a_job_the_worker_cannot_finish_within_its_grace(stack_factory, tenants, emulator):
    stack = stack_factory(WORKER_SHUTDOWN_GRACE_SECONDS="1")
    emulator.enqueue(Reply.delay(30))
    job_id = _post(stack, tenants.a, prefer_async=True).json()["jobId"]
    _wait_for(lambda: len(emulator.requests) == 1, 10, "the upstream call")
    stack.signal("worker", signal.SIGTERM)
    stack.wait_exit("worker", timeout=15)  # it stops after its grace, not after the job
    job = Job.objects.get(pk=job_id)
    # Back in the queue at once, and not taken again by the stopping worker itself.
    assert (job.status, job.lease_expires_at, job.attempts) == ("queued", None, 1)
    started = time.monotonic()
    stack.start_worker()
    assert _job_done(stack, tenants.a, job_id, timeout=20)["status"] == "succeeded"
    assert time.monotonic() - started < 15  # not a lease or a sweep later


def test_an_idempotent_replay_is_answered_even_when_the_budget_is_used_up(api, worker, tenants, gemini, settings):
    settings.BANATIE_RATE_LIMIT = "2/h"
    first = t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="order-7")
    assert first.status_code == 200
    assert t2i(api, tenants.a, HTTP_PREFER="respond-async").status_code == 202  # the budget's last request
    assert t2i(api, tenants.a, HTTP_PREFER="respond-async").status_code == 429
    again = t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="order-7")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["jobId"] == first.json()["data"]["jobId"]
    assert again["X-RateLimit-Remaining"] == "0"


def test_requests_refused_as_invalid_are_not_charged(api, worker, tenants, settings, media):
    settings.BANATIE_RATE_LIMIT = "1/h"
    refused = [
        api.post("/api/text-to-image", {"filename": "no-prompt"}, format="json", **auth(tenants.a)),
        api.post("/api/text-to-image", "prompt=x", content_type="text/plain", **auth(tenants.a)),
        t2i(api, tenants.a, HTTP_IDEMPOTENCY_KEY="x" * 300),
        api.post("/api/generate", {"prompt": "a cat", "filename": "cat", "files": [
            SimpleUploadedFile("cat.png", b"not an image at all", content_type="image/png")]}, format="multipart",
            **auth(tenants.a)),
        api.post("/api/enhance", {"prompt": ""}, format="json", **auth(tenants.a)),
    ]
    assert [r.status_code for r in refused] == [400, 415, 400, 400, 400]
    assert [r.json()["code"] for r in refused] == [
        "validation_failed", "unsupported_media_type", "idempotency_key_invalid", "reference_image_invalid",
        "validation_failed"]
    assert all(r["X-RateLimit-Remaining"] == "1" for r in refused)
    accepted = t2i(api, tenants.a, HTTP_PREFER="respond-async")
    assert accepted.status_code == 202 and accepted["X-RateLimit-Remaining"] == "0"
    assert t2i(api, tenants.a, HTTP_PREFER="respond-async").status_code == 429


# --- database connections ----------------------------------------------------------------

def test_a_claim_that_cannot_reach_the_database_is_retried_not_lost(api, worker, tenants, gemini, monkeypatch):
    from django.db import OperationalError

    from apps.jobs import services

    real_claim, failures = services.job_claim, []

    def claim_once_unavailable(*, job_id: str):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append(job_id)
            raise OperationalError("couldn't get a connection after 10.00 sec")
        return real_claim(job_id=job_id)

    monkeypatch.setattr(services, "job_claim", claim_once_unavailable)
    job_id = t2i(api, tenants.a, HTTP_PREFER="respond-async").json()["jobId"]
    # Redelivered within seconds (not left queued until the sweep, which is not running here).
    assert poll_job(api, tenants.a, job_id, timeout=15)["status"] == "succeeded"
    assert failures == [job_id] and Job.objects.get(pk=job_id).attempts == 1


def test_no_database_connection_is_held_while_the_upstream_call_runs(api, worker, tenants, gemini, monkeypatch):
    from django.db import connection

    from workers.providers import gemini as gemini_provider

    if connection.vendor == "sqlite":
        pytest.skip("SQLite keeps its per-thread file connection; there is no server pool to exhaust")
    real_call, held = gemini_provider._call_once, []

    def observed(**kwargs):  # type: ignore[no-untyped-def]
        held.append(connection.connection is not None)  # this worker thread's connection
        return real_call(**kwargs)

    monkeypatch.setattr(gemini_provider, "_call_once", observed)
    assert t2i(api, tenants.a).status_code == 200
    assert held == [False]


@pytest.mark.slow
def test_thirty_concurrent_uploads_of_large_reference_images_keep_web_memory_bounded(stack_factory, tenants):
    # Three 4000x4000 PNGs (tiny files, 16 Mpx each: a full decode is ~64 MB each) per
    # request, 30 at once. The web process reads headers and checksums only.
    import io

    import psutil
    from PIL import Image

    stack = stack_factory()
    files = []
    for color in ((200, 30, 30), (30, 200, 30), (30, 30, 200)):
        buf = io.BytesIO()
        Image.new("RGB", (4000, 4000), color).save(buf, "PNG")
        files.append(buf.getvalue())
    web = psutil.Process(stack.procs["web"][0].pid)

    def web_rss() -> int:
        return sum(p.memory_info().rss for p in [web, *web.children(recursive=True)])

    before, peak, stop = web_rss(), [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], web_rss())

    def upload(i: int) -> int:
        return requests.post(
            f"{stack.url}/api/generate", headers={"X-API-Key": tenants.a, "Prefer": "respond-async"},
            data={"prompt": f"a tree {i}", "filename": f"tree{i}"},
            files=[("files", (f"ref{n}.png", data, "image/png")) for n, data in enumerate(files)], timeout=60,
        ).status_code

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(30) as pool:
            statuses = list(pool.map(upload, range(30)))
    finally:
        stop.set()
        sampler.join()
    assert statuses == [202] * 30
    # Decoding would need 30 x 3 x 64 MB; checking headers and checksums needs next to nothing.
    grown = (peak[0] - before) / 2**20
    print(f"web RSS grew by {grown:.0f} MB")
    assert grown < 250, f"web RSS grew by {grown:.0f} MB"


def test_worker_log_lines_of_a_job_carry_the_request_id_of_its_request(api, worker, tenants, gemini, caplog):
    import logging

    from banatie.middleware import RequestIdLogFilter

    caplog.set_level(logging.WARNING)
    caplog.handler.addFilter(RequestIdLogFilter())
    gemini.enqueue(Reply.error(503))  # one retry: a warning logged by the worker thread
    r = t2i(api, tenants.a, HTTP_X_REQUEST_ID="trace-job-7")
    assert r.status_code == 200
    retried = [rec for rec in caplog.records if "retrying" in rec.getMessage()]
    assert retried and {rec.request_id for rec in retried} == {"trace-job-7"}
    assert {rec.threadName for rec in retried} != {threading.current_thread().name}  # the worker's own
