"""Upstream pacing (apps.jobs.pacing): GEMINI_MAX_CONCURRENCY across every worker process,
GEMINI_MAX_RPM over a rolling minute, one 429's Retry-After pausing every worker's calls,
waiting jobs that stay queued and still honour cancel and Cancel-After, and Redis away."""
from __future__ import annotations

import threading
import time

import pytest
import redis
import requests
from django.conf import settings as django_settings

from apps.jobs import pacing
from tests.conftest import auth, poll_job, wait_for
from tests.gemini_emulator import Reply

T2I = {"prompt": "A lighthouse in a storm", "filename": "lighthouse", "autoEnhance": False}
ASYNC = {"HTTP_PREFER": "respond-async"}


@pytest.fixture
def clean_pacing():  # type: ignore[no-untyped-def]
    """The in-process tests share the suite's Redis: no pacing state from an earlier test."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter("banatie:pace:*"))
    if keys:
        client.delete(*keys)
    yield
    keys = list(client.scan_iter("banatie:pace:*"))
    if keys:
        client.delete(*keys)


def _submit(stack, key: str, **headers: str) -> str:  # type: ignore[no-untyped-def]
    r = requests.post(f"{stack.url}/api/text-to-image", json=T2I, timeout=10,
                      headers={"X-API-Key": key, "Prefer": "respond-async", **headers})
    assert r.status_code == 202, r.text
    return r.json()["jobId"]


def _job(stack, key: str, job_id: str) -> dict:  # type: ignore[no-untyped-def]
    return requests.get(f"{stack.url}/api/jobs/{job_id}", headers={"X-API-Key": key}, timeout=10).json()


def test_forty_jobs_on_two_worker_processes_never_have_more_than_five_calls_in_flight(stack_factory, tenants,
                                                                                     emulator):
    stack = stack_factory(WORKER_PROCESSES="2", WORKER_CONCURRENCY="20", GEMINI_MAX_CONCURRENCY="5")
    emulator.latency = 0.4
    ids = [_submit(stack, tenants.a) for _ in range(40)]
    # While the first calls run, the jobs behind them wait in the queue, with a position.
    wait_for(lambda: emulator.in_flight == 5, 20, "five upstream calls in flight")
    waiting = [body for body in (_job(stack, tenants.a, i) for i in ids[-10:]) if body["status"] == "queued"]
    assert waiting and all(isinstance(body["queuePosition"], int) for body in waiting)
    finished = {}

    def all_done() -> bool:
        for job_id in ids:
            if job_id not in finished:
                body = _job(stack, tenants.a, job_id)
                if body["status"] in ("succeeded", "failed", "canceled"):
                    finished[job_id] = body
        return len(finished) == len(ids)

    wait_for(all_done, 90, "the 40 jobs to finish", interval=0.5)
    assert {body["status"] for body in finished.values()} == {"succeeded"}
    assert len(emulator.requests) == 40  # one call per job: nobody failed into a retry
    assert emulator.max_in_flight == 5  # reached, never passed


def test_no_sixty_second_window_sees_more_than_the_rpm_limit(api, worker, gemini, tenants, settings, clean_pacing):
    settings.GEMINI_MAX_RPM = 30
    ids = [api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a), **ASYNC).json()["jobId"]
           for _ in range(34)]
    bodies = [poll_job(api, tenants.a, job_id, timeout=100) for job_id in ids]
    assert {body["status"] for body in bodies} == {"succeeded"}
    times = sorted(r["time"] for r in gemini.requests)
    assert len(times) == 34
    for i, start in enumerate(times):
        # The emulator sees a call a few milliseconds after it started (the windows are of starts).
        in_window = sum(1 for t in times[i:] if t < start + 59.9)
        assert in_window <= 30, f"{in_window} calls within 60 s of call {i}"
    assert times[-1] - times[0] >= 59  # the last four waited for the window to move on


def test_an_upstream_429_with_retry_after_pauses_every_workers_calls(api, worker, gemini, tenants, settings,
                                                                    clean_pacing):
    settings.UPSTREAM_RETRY_MAX_SECONDS = 5  # a 2 s Retry-After is honoured in full
    gemini.enqueue(Reply.error(429, retry_after=2))
    first = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a), **ASYNC).json()["jobId"]
    wait_for(lambda: len(gemini.requests) == 1, 10, "the call answered 429")
    refused_at = gemini.requests[0]["time"]
    time.sleep(0.3)  # the worker has read the 429 (and paused the model) by now
    others = [api.post("/api/text-to-image", T2I, format="json", **auth(tenants.b), **ASYNC).json()["jobId"]
              for _ in range(5)]
    bodies = [poll_job(api, key, job_id, timeout=20)
              for key, job_id in [(tenants.a, first), *((tenants.b, i) for i in others)]]
    assert {body["status"] for body in bodies} == {"succeeded"}
    later = [r["time"] for r in gemini.requests[1:]]
    assert len(later) == 6  # the retry of the first job, and one call for each other job
    assert min(later) >= refused_at + 1.95, [round(t - refused_at, 2) for t in later]


def test_a_job_waiting_for_a_slot_stays_queued_and_honours_cancel_and_its_deadline(api, worker, gemini, tenants,
                                                                                 settings, clean_pacing):
    settings.GEMINI_MAX_CONCURRENCY = 1
    gemini.enqueue(Reply.delay(3))
    running = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a), **ASYNC).json()["jobId"]
    wait_for(lambda: gemini.in_flight == 1, 10, "the first call in flight")
    waiting = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a), **ASYNC).json()["jobId"]
    time.sleep(0.5)
    body = api.get(f"/api/jobs/{waiting}", **auth(tenants.a)).json()
    assert body["status"] == "queued" and body["queuePosition"] == 0 and body["attempts"] == 0
    canceled = api.post(f"/api/jobs/{waiting}/cancel", **auth(tenants.a)).json()
    assert canceled["status"] == "canceled" and canceled["error"]["code"] == "job_canceled"
    # A synchronous request with a deadline shorter than the wait for the slot.
    late = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a), HTTP_CANCEL_AFTER="1s")
    assert late.status_code == 409 and late.json()["code"] == "deadline_exceeded"
    assert poll_job(api, tenants.a, running)["status"] == "succeeded"
    time.sleep(0.5)
    assert len(gemini.requests) == 1  # neither the canceled nor the expired job called Gemini
    for job_id in (waiting, late.json()["jobId"]):
        assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()["startedAt"] is None


def test_pacing_lets_calls_through_when_redis_cannot_be_reached(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.GEMINI_MAX_CONCURRENCY = 1
    settings.REDIS_TIMEOUT_SECONDS = 0.5
    entered = []
    done = threading.Event()

    def call() -> None:
        with pacing.upstream_call("gemini-2.5-flash-image"):
            entered.append(1)
            with pacing.upstream_call("gemini-2.5-flash-image"):  # a second one at once: not held back
                entered.append(2)
        done.set()

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    assert done.wait(10) and entered == [1, 2]
    assert pacing.slot_take("gemini-2.5-flash-image", give_up=lambda wait: True) is None
