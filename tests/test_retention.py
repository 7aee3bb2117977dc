"""Retention: finished jobs deleted JOB_RETENTION_DAYS after they finished, their images
only when IMAGE_RETENTION_DAYS is set and has passed. Jobs are real (the offline provider
through the in-process worker); the test moves their finished_at into the past."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from apps.jobs.models import Job
from apps.jobs.retention import jobs_retention
from apps.jobs.task_names import JOBS_RETENTION
from banatie.celery import app as celery_app
from tests.conftest import auth, poll_job, wait_for
from tests.gemini_emulator import Reply


@pytest.fixture(autouse=True)
def retention(settings):  # type: ignore[no-untyped-def]
    settings.JOB_RETENTION_DAYS = 30
    settings.IMAGE_RETENTION_DAYS = None
    return settings


def image(api, key, name="lighthouse") -> dict:  # type: ignore[no-untyped-def]
    r = api.post("/api/text-to-image", {"prompt": f"A {name} at dawn", "filename": name, "autoEnhance": False},
                 format="json", **auth(key))
    assert r.status_code == 200, r.json()
    return r.json()["data"]


def stored(data: dict) -> Path:
    return Path(django_settings.MEDIA_ROOT) / data["filepath"]


def served(api, data: dict) -> bytes | None:  # type: ignore[no-untyped-def]
    r = api.get(f"/api/images/{data['filepath']}")
    if r.status_code == 404:
        assert r.json()["code"] == "image_not_found"
        return None
    assert r.status_code == 200
    return b"".join(r.streaming_content)


def finished_days_ago(job_id: str, days: float) -> None:
    then = timezone.now() - timedelta(days=days)
    assert Job.objects.filter(pk=job_id).update(created_at=then, started_at=then, finished_at=then)


def job_status(api, key, job_id: str) -> int:  # type: ignore[no-untyped-def]
    return api.get(f"/api/jobs/{job_id}", **auth(key)).status_code


def run_task() -> dict[str, int]:
    """The task beat schedules, called by the name it is registered under."""
    return celery_app.tasks[JOBS_RETENTION].apply().get()


def test_old_finished_jobs_are_deleted_and_their_images_kept_forever_by_default(api, worker, gemini, tenants):
    old, young = image(api, tenants.a, "old"), image(api, tenants.a, "young")
    old_bytes = served(api, old)
    gemini.enqueue(Reply.error(400, "API key not valid."))
    old_failed = api.post("/api/enhance", {"prompt": "A fox"}, format="json", **auth(tenants.b))
    assert old_failed.status_code == 502 and old_failed.json()["code"] == "upstream_rejected"
    gemini.latency = 3.0
    running = api.post("/api/enhance", {"prompt": "A slow fox"}, format="json", **auth(tenants.b),
                       HTTP_PREFER="respond-async").json()["jobId"]
    finished_days_ago(old["jobId"], 31)
    finished_days_ago(old_failed.json()["jobId"], 45)
    finished_days_ago(young["jobId"], 29)
    Job.objects.filter(pk=running).update(created_at=timezone.now() - timedelta(days=90))

    assert run_task() == {"released": 0, "deleted": 2}

    assert job_status(api, tenants.a, old["jobId"]) == 404
    assert api.get(f"/api/jobs/{old['jobId']}", **auth(tenants.a)).json()["code"] == "job_not_found"
    assert job_status(api, tenants.b, old_failed.json()["jobId"]) == 404
    assert job_status(api, tenants.a, young["jobId"]) == 200
    unfinished = api.get(f"/api/jobs/{running}", **auth(tenants.b)).json()
    assert unfinished["status"] in ("queued", "running", "succeeded")  # untouched; it may have finished since
    # The deleted job's image is still stored and served, byte for byte.
    assert stored(old).is_file() and served(api, old) == old_bytes
    assert served(api, young) is not None
    assert run_task() == {"released": 0, "deleted": 0}
    poll_job(api, tenants.b, running)  # let the slow job end before the test's database is emptied


def test_images_are_deleted_once_image_retention_has_passed_and_the_job_stays_for_its_own(
        api, worker, tenants, retention):
    retention.IMAGE_RETENTION_DAYS = 7
    due, not_yet, both_due = image(api, tenants.a, "due"), image(api, tenants.a, "notyet"), image(api, tenants.b, "both")
    not_yet_bytes = served(api, not_yet)
    finished_days_ago(due["jobId"], 8)
    finished_days_ago(not_yet["jobId"], 6)
    finished_days_ago(both_due["jobId"], 31)

    assert run_task() == {"released": 2, "deleted": 1}

    # Past image retention: the file is gone and its URL answers 404; the job is still there.
    assert not stored(due).exists() and served(api, due) is None
    job = api.get(f"/api/jobs/{due['jobId']}", **auth(tenants.a)).json()
    assert job["status"] == "succeeded"
    assert Job.objects.get(pk=due["jobId"]).stored_released_at is not None
    # Not old enough: kept and served.
    assert stored(not_yet).is_file() and served(api, not_yet) == not_yet_bytes
    assert Job.objects.get(pk=not_yet["jobId"]).stored_released_at is None
    # Past both: the image first, then the row, in the same run.
    assert not stored(both_due).exists() and job_status(api, tenants.b, both_due["jobId"]) == 404

    released_at = Job.objects.get(pk=due["jobId"]).stored_released_at
    assert run_task() == {"released": 0, "deleted": 0}
    assert Job.objects.get(pk=due["jobId"]).stored_released_at == released_at  # done once
    assert served(api, not_yet) == not_yet_bytes


def test_a_job_row_is_kept_while_its_image_is_still_due_for_deletion(api, worker, tenants, retention):
    retention.IMAGE_RETENTION_DAYS = 60
    data = image(api, tenants.a)
    finished_days_ago(data["jobId"], 40)  # past JOB_RETENTION_DAYS (30), not past 60

    assert run_task() == {"released": 0, "deleted": 0}
    assert job_status(api, tenants.a, data["jobId"]) == 200 and served(api, data) is not None

    finished_days_ago(data["jobId"], 61)
    assert run_task() == {"released": 1, "deleted": 1}
    assert job_status(api, tenants.a, data["jobId"]) == 404
    assert not stored(data).exists() and served(api, data) is None


def test_jobs_without_an_image_are_released_and_deleted_the_same_way(api, worker, tenants, retention):
    retention.IMAGE_RETENTION_DAYS = 1
    retention.JOB_RETENTION_DAYS = 2
    r = api.post("/api/enhance", {"prompt": "A fox"}, format="json", **auth(tenants.a))
    assert r.status_code == 200
    job_id = r.json()["jobId"]
    finished_days_ago(job_id, 1.5)
    assert run_task() == {"released": 1, "deleted": 0}
    finished_days_ago(job_id, 3)
    assert run_task() == {"released": 0, "deleted": 1}
    assert job_status(api, tenants.a, job_id) == 404


def test_two_runs_at_once_delete_each_image_once_and_each_row_once(api, worker, tenants, retention):
    retention.IMAGE_RETENTION_DAYS = 1
    retention.JOB_RETENTION_DAYS = 1
    jobs = [image(api, tenants.a, f"img{n}") for n in range(4)]
    for data in jobs:
        finished_days_ago(data["jobId"], 2)
    start = threading.Barrier(2)

    def run(_: int) -> dict[str, int]:
        start.wait(timeout=10)  # both runs read the same due jobs, then race for each
        try:
            return jobs_retention()
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, range(2)))
    assert sum(r["released"] for r in results) == 4 and sum(r["deleted"] for r in results) == 4
    for data in jobs:
        assert job_status(api, tenants.a, data["jobId"]) == 404 and not stored(data).exists()


def test_the_beat_entry_runs_retention_in_the_worker(api, worker, tenants):
    data = image(api, tenants.a)
    finished_days_ago(data["jobId"], 31)
    entry = django_settings.CELERY_BEAT_SCHEDULE["jobs-retention"]
    assert entry["schedule"] == django_settings.RETENTION_INTERVAL_SECONDS == 3600
    celery_app.send_task(entry["task"])  # as beat publishes it
    wait_for(lambda: job_status(api, tenants.a, data["jobId"]) == 404, 15, "the worker to run retention")
    assert served(api, data) is not None


def _settings_in_a_new_process(**env: str) -> subprocess.CompletedProcess[str]:
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.JOB_RETENTION_DAYS, settings.IMAGE_RETENTION_DAYS, settings.RETENTION_INTERVAL_SECONDS)")
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "SECRET_KEY": "x", **env},
                          capture_output=True, text=True, timeout=60)


def test_retention_settings_default_to_30_days_and_images_kept_forever():
    env = {name: "" for name in ("JOB_RETENTION_DAYS", "IMAGE_RETENTION_DAYS", "RETENTION_INTERVAL_SECONDS")}
    assert _settings_in_a_new_process(**env).stdout.split() == ["30", "None", "3600.0"]
    proc = _settings_in_a_new_process(JOB_RETENTION_DAYS="90", IMAGE_RETENTION_DAYS="7")
    assert proc.stdout.split()[:2] == ["90", "7"]


@pytest.mark.parametrize("name", ["JOB_RETENTION_DAYS", "IMAGE_RETENTION_DAYS"])
def test_zero_retention_days_stop_startup_naming_the_variable(name):
    proc = _settings_in_a_new_process(**{name: "0"})
    assert proc.returncode != 0 and f"Environment variable {name}='0' is invalid" in proc.stderr
