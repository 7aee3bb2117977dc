"""Waiting for a job: one Redis subscription per process wakes any number of waiting
requests, and a wake-up lost while Redis was away is made up for on re-subscription."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.jobs.models import Job
from apps.jobs.services import job_wait
from apps.jobs.wakeup import CHANNEL, listener_subscribed, signal_available, signal_job_done
from apps.keys.models import ApiKey



def _queued_jobs(key: ApiKey, n: int) -> list[Job]:
    return [Job.objects.create(api_key=key, project_id=key.project_scope, kind="enhancement", request={})
            for _ in range(n)]


def _finish(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, finished_at=timezone.now(), result={})


def _wait(job: Job, timeout: float) -> tuple[str, float]:
    started = time.monotonic()
    try:
        return job_wait(job=job, timeout=timeout).status, time.monotonic() - started
    finally:
        connection.close()


def _subscribers() -> int:
    return redis.Redis.from_url(settings.REDIS_URL).pubsub_numsub(CHANNEL)[0][1]


def test_many_waiters_share_one_subscription_and_each_wakes_on_its_own_job(transactional_db, tenants):
    jobs = _queued_jobs(tenants.a_key, 40)
    with ThreadPoolExecutor(len(jobs)) as pool:
        waits = [pool.submit(_wait, job, 30.0) for job in jobs]
        assert listener_subscribed(10)
        time.sleep(0.5)  # every waiter registered and waiting
        assert _subscribers() == 1
        for job in jobs[:20]:
            _finish(job)
            signal_job_done(str(job.pk))
        first = [w.result(timeout=10) for w in waits[:20]]
        assert all(status == "succeeded" and took < 10 for status, took in first)
        assert not any(w.done() for w in waits[20:])  # nobody else was woken for good
        for job in jobs[20:]:
            _finish(job)
            signal_job_done(str(job.pk))
        assert all(w.result(timeout=10)[0] == "succeeded" for w in waits[20:])


def test_a_finish_whose_signal_was_lost_is_noticed_when_the_subscription_drops(transactional_db, tenants):
    (job,) = _queued_jobs(tenants.a_key, 1)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_wait, job, 30.0)
        assert listener_subscribed(10)
        time.sleep(0.3)
        _finish(job)  # finished, but its signal never sent (as when Redis was away)
        redis.Redis.from_url(settings.REDIS_URL).client_kill_filter(_type="pubsub")
        status, took = waiting.result(timeout=15)
    assert status == "succeeded" and took < 15
    deadline = time.monotonic() + 10
    while not signal_available() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert signal_available() and listener_subscribed(10)  # the listener came back by itself


def test_a_wait_that_runs_out_returns_the_unfinished_job(transactional_db, tenants):
    (job,) = _queued_jobs(tenants.a_key, 1)
    status, took = _wait(job, 0.5)
    assert status == "queued" and took >= 0.5


def test_waiters_answer_at_once_when_the_signal_is_lost_and_wait_again_once_it_is_back(transactional_db, tenants):
    from apps.jobs import wakeup

    (job,) = _queued_jobs(tenants.a_key, 1)
    listener = wakeup._listener
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_wait, job, 30.0)
        assert listener_subscribed(10)
        time.sleep(0.3)
        listener.down = True  # as the listener marks it when Redis drops
        listener._wake(None)
        status, took = waiting.result(timeout=5)
    assert status == "queued" and took < 5
    listener.down = False
    status, took = _wait(job, 0.5)
    assert status == "queued" and took >= 0.5
