"""Canceling jobs and their deadlines (Cancel-After), at the HTTP level: the answers, what the
upstream saw, what was stored, and that a canceled job's upstream call stops holding its
worker's slot."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import auth, wait_for
from tests.gemini_emulator import Reply

T2I = {"prompt": "A lighthouse in a storm", "filename": "lighthouse", "autoEnhance": False}
ASYNC = {"HTTP_PREFER": "respond-async"}


def _stored_images(media_root: str) -> list[str]:
    media = Path(media_root)
    return sorted(str(p.relative_to(media)) for p in media.rglob("*.png")) if media.exists() else []


def _t2i(api, key: str, **headers: str):  # type: ignore[no-untyped-def]
    return api.post("/api/text-to-image", T2I, format="json", **auth(key), **headers)


def _cancel(api, key: str, job_id: str):  # type: ignore[no-untyped-def]
    return api.post(f"/api/jobs/{job_id}/cancel", **auth(key))


def _status(api, key: str, job_id: str) -> str:  # type: ignore[no-untyped-def]
    return api.get(f"/api/jobs/{job_id}", **auth(key)).json()["status"]


# --- POST /api/jobs/{id}/cancel: the answers ---------------------------------------------

def test_canceling_a_running_job_answers_the_canceled_job_and_again_unchanged(api, worker, gemini, tenants, settings):
    gemini.latency = 3.0
    job_id = _t2i(api, tenants.a, **ASYNC).json()["jobId"]
    wait_for(lambda: len(gemini.requests) == 1, 10, "the upstream call")
    first = _cancel(api, tenants.a, job_id)
    assert first.status_code == 200
    body = first.json()
    assert body["jobId"] == job_id and body["status"] == "canceled" and body["success"] is False
    assert body["cancelReason"] == "requested" and body["queuePosition"] is None
    assert body["error"]["code"] == "job_canceled" and body["error"]["status"] == 409
    assert body["attempts"] == 1 and body["startedAt"] and body["finishedAt"]
    assert body["timings"]["runSeconds"] is not None and "data" not in body
    again = _cancel(api, tenants.a, job_id)
    assert again.status_code == 200 and again.json() == body
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json() == body


def test_canceling_a_finished_job_is_409_naming_its_status(api, worker, gemini, tenants):
    done = _t2i(api, tenants.a)
    assert done.status_code == 200
    answer = _cancel(api, tenants.a, done.json()["data"]["jobId"])
    assert answer.status_code == 409
    assert answer.json()["code"] == "job_already_finished" and answer.json()["details"]["status"] == "succeeded"
    gemini.enqueue(Reply.blocked("IMAGE_SAFETY"))
    failed = _t2i(api, tenants.a)
    assert failed.status_code == 422
    answer = _cancel(api, tenants.a, failed.json()["jobId"])
    assert answer.status_code == 409 and answer.json()["details"]["status"] == "failed"
    assert _status(api, tenants.a, failed.json()["jobId"]) == "failed"  # unchanged


def test_cancel_is_scoped_like_get_unknown_and_foreign_jobs_are_404(api, worker, gemini, tenants):
    gemini.latency = 2.0
    job_id = _t2i(api, tenants.a, **ASYNC).json()["jobId"]
    for key in (tenants.b, tenants.master):
        answer = _cancel(api, key, job_id)
        assert answer.status_code == 404 and answer.json()["code"] == "job_not_found"
    for bad in ("not-a-job", "00000000-0000-0000-0000-000000000000"):
        assert _cancel(api, tenants.a, bad).status_code == 404
    assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 401
    assert api.get(f"/api/jobs/{job_id}/cancel", **auth(tenants.a)).status_code == 405
    assert _status(api, tenants.a, job_id) in ("queued", "running")  # none of that touched it
    assert _cancel(api, tenants.a, job_id).status_code == 200


def test_a_synchronous_request_waiting_on_a_job_answers_409_as_soon_as_it_is_canceled(
        worker, gemini, tenants, live_server):
    gemini.latency = 20.0  # the upstream would hold the request far longer than the test waits
    answer: dict = {}

    def sync_client() -> None:
        answer["r"] = requests.post(f"{live_server.url}/api/text-to-image", json=T2I,
                                    headers={"X-API-Key": tenants.a}, timeout=15)

    client = threading.Thread(target=sync_client)
    client.start()
    wait_for(lambda: len(gemini.requests) == 1, 10, "the upstream call")
    from apps.jobs.models import Job

    job_id = str(Job.objects.get().pk)
    assert requests.post(f"{live_server.url}/api/jobs/{job_id}/cancel", headers={"X-API-Key": tenants.a},
                         timeout=10).status_code == 200
    client.join(10)
    assert not client.is_alive(), "the waiting request did not answer after the cancel"
    assert answer["r"].status_code == 409
    assert answer["r"].json()["code"] == "job_canceled" and answer["r"].json()["jobId"] == job_id


def test_the_result_of_a_canceled_running_job_is_discarded_and_nothing_is_stored(api, worker, gemini, tenants,
                                                                                  settings):
    # The in-process worker runs the job's work in a thread it cannot kill: the upstream
    # answers after the cancel, the image is stored, and then deleted again.
    gemini.enqueue(Reply.delay(1.5))
    job_id = _t2i(api, tenants.a, **ASYNC).json()["jobId"]
    wait_for(lambda: len(gemini.requests) == 1, 10, "the upstream call")
    assert _cancel(api, tenants.a, job_id).status_code == 200
    time.sleep(3.0)  # well after the upstream answered and the abandoned work ended
    assert _stored_images(settings.MEDIA_ROOT) == []
    body = api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()
    assert body["status"] == "canceled" and "data" not in body
    assert len(gemini.requests) == 1  # no retry, no second attempt


def test_a_worker_that_missed_the_cancel_signal_lets_go_at_its_next_heartbeat(api, worker, gemini, tenants,
                                                                               settings, caplog):
    from django.utils import timezone

    from apps.jobs.models import Job

    settings.JOB_HEARTBEAT_SECONDS = 0.2
    gemini.latency = 20.0
    job_id = _t2i(api, tenants.a, **ASYNC).json()["jobId"]
    wait_for(lambda: len(gemini.requests) == 1, 10, "the upstream call")
    # Canceled behind the service's back: no signal is published.
    Job.objects.filter(pk=job_id).update(status=Job.Status.CANCELED, finished_at=timezone.now())
    wait_for(lambda: any("its work was abandoned" in r.getMessage() and job_id in r.getMessage()
                          for r in caplog.records), 10, "the worker to abandon the job")


# --- Cancel-After ------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["abc", "0", "-5", "25h", "1441m", "86401", "5d", "1 h 2m", ""])
def test_a_malformed_cancel_after_is_400_naming_the_header(api, db, tenants, value):
    for path, body, fmt in (("/api/text-to-image", T2I, "json"), ("/api/enhance", {"prompt": "a fox"}, "json"),
                            ("/api/generate", {"prompt": "a fox", "filename": "fox"}, "multipart")):
        answer = api.post(path, body, format=fmt, HTTP_CANCEL_AFTER=value, **auth(tenants.a))
        assert answer.status_code == 400, (path, value, answer.json())
        assert answer.json()["code"] == "cancel_after_invalid" and answer.json()["field"] == "Cancel-After"
        assert "Cancel-After" in answer.json()["message"]


@pytest.mark.parametrize("value,seconds", [("30s", 30), ("2m", 120), ("1h", 3600), ("90", 90), ("24h", 86400),
                                           ("1.5m", 90)])
def test_cancel_after_becomes_the_job_deadline(api, db, tenants, value, seconds):
    from datetime import datetime

    body = api.get(_t2i(api, tenants.a, HTTP_CANCEL_AFTER=value, **ASYNC)["Location"], **auth(tenants.a)).json()
    created = datetime.fromisoformat(body["createdAt"].replace("Z", "+00:00"))
    deadline = datetime.fromisoformat(body["cancelAfter"].replace("Z", "+00:00"))
    assert abs((deadline - created).total_seconds() - seconds) < 0.01


def test_a_deadline_that_passes_while_running_cancels_the_job_and_the_waiter_gets_409(api, worker, gemini, tenants,
                                                                                      settings):
    gemini.latency = 3.0
    answer = _t2i(api, tenants.a, HTTP_CANCEL_AFTER="1s")
    assert answer.status_code == 409, answer.json()
    assert answer.json()["code"] == "deadline_exceeded"
    job = api.get(f"/api/jobs/{answer.json()['jobId']}", **auth(tenants.a)).json()
    assert job["status"] == "canceled" and job["cancelReason"] == "deadline"
    assert job["error"]["code"] == "deadline_exceeded" and job["attempts"] == 1
    assert len(gemini.requests) == 1
    time.sleep(3.0)  # the abandoned upstream call answered meanwhile
    assert _stored_images(settings.MEDIA_ROOT) == []
    assert api.get(f"/api/jobs/{job['jobId']}", **auth(tenants.a)).json()["status"] == "canceled"


def test_a_poll_shows_a_job_past_its_deadline_as_canceled(api, worker, gemini, tenants):
    gemini.latency = 3.0
    job_id = _t2i(api, tenants.a, HTTP_CANCEL_AFTER="0.5", **ASYNC).json()["jobId"]
    time.sleep(0.6)
    body = api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()
    assert body["status"] == "canceled" and body["cancelReason"] == "deadline"


# --- the real server model: a queued job's message in Redis, and the worker's slot ---------

def _post(stack, key: str, *, prefer_async: bool = False, timeout: float = 30, **headers: str):  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": key, **({"Prefer": "respond-async"} if prefer_async else {}), **headers}
    return requests.post(f"{stack.url}/api/text-to-image", json=T2I, headers=headers, timeout=timeout)


def _stack_job(stack, key: str, job_id: str) -> dict:  # type: ignore[no-untyped-def]
    return requests.get(f"{stack.url}/api/jobs/{job_id}", headers={"X-API-Key": key}, timeout=5).json()


def _stack_cancel(stack, key: str, job_id: str):  # type: ignore[no-untyped-def]
    return requests.post(f"{stack.url}/api/jobs/{job_id}/cancel", headers={"X-API-Key": key}, timeout=10)


def _queue_length(stack) -> int:  # type: ignore[no-untyped-def]
    import redis

    return int(redis.Redis.from_url(stack.redis.url).llen("celery"))


def test_a_queued_job_canceled_with_its_message_in_redis_never_reaches_gemini(stack_factory, tenants, emulator):
    stack = stack_factory(WORKER_CONCURRENCY="1")
    emulator.enqueue(Reply.delay(30))  # the first job holds the worker's only slot
    first = _post(stack, tenants.a, prefer_async=True).json()["jobId"]
    wait_for(lambda: len(emulator.requests) == 1, 15, "the first upstream call")
    queued = _post(stack, tenants.a, prefer_async=True).json()["jobId"]
    wait_for(lambda: _queue_length(stack) == 1, 10, "the second job's message in Redis")
    assert _stack_job(stack, tenants.a, queued)["queuePosition"] == 0
    assert _stack_cancel(stack, tenants.a, queued).json()["status"] == "canceled"
    # A third job, queued behind the canceled one, with a deadline that passes while it waits.
    late = _post(stack, tenants.a, timeout=30, **{"Cancel-After": "1s"})
    assert late.status_code == 409 and late.json()["code"] == "deadline_exceeded"
    assert _stack_job(stack, tenants.a, late.json()["jobId"])["cancelReason"] == "deadline"
    # Canceling the first frees the slot at once: the worker stops waiting on its upstream
    # call (30 s away) and takes the queued messages, which must not reach Gemini.
    assert _stack_cancel(stack, tenants.a, first).status_code == 200
    after = _post(stack, tenants.a, timeout=20)
    assert after.status_code == 200, after.text  # served long before the abandoned call would have answered
    wait_for(lambda: _queue_length(stack) == 0, 10, "the canceled jobs' messages to be consumed")
    prompts = [emulator.prompt_of(r) for r in emulator.requests]
    assert len(prompts) == 2, prompts  # the first job's call and the last one's; none for the canceled two
    for job_id in (queued, late.json()["jobId"]):
        body = _stack_job(stack, tenants.a, job_id)
        assert body["status"] == "canceled" and body["attempts"] == 0 and body["startedAt"] is None
    media = stack.workdir / "media"
    stored = [p for p in media.rglob("*.png")] if media.exists() else []
    assert len(stored) == 1  # only the last job's image
