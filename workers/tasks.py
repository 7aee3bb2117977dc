"""Thin Celery tasks: they take ids and call the service they are named after, which owns
idempotency. Registered under the names the apps publish by (apps.jobs.task_names,
apps.webhooks.task_names)."""
from __future__ import annotations

import random

from celery import Task, shared_task
from celery.exceptions import Reject

from apps.jobs.errors import ClaimUnavailable
from apps.jobs.retention import jobs_retention
from apps.jobs.services import job_run, job_sweep
from apps.jobs.task_names import JOB_RUN, JOB_SWEEP, JOBS_RETENTION
from apps.webhooks.delivery import webhook_delivery_attempt, webhook_sweep
from apps.webhooks.task_names import WEBHOOK_DELIVERY_ATTEMPT, WEBHOOK_SWEEP
from workers.lifecycle import worker_stopping


# A claim that cannot reach the database is retried (a new message, then this one is
# acked), never acked and forgotten; past max_retries the sweep republishes the job.
@shared_task(bind=True, name=JOB_RUN, ignore_result=True, max_retries=30)
def job_run_task(self: Task, job_id: str) -> None:
    if worker_stopping():
        raise Reject("this worker is stopping", requeue=True)  # back to the queue, unclaimed
    try:
        job_run(job_id=job_id)
    except ClaimUnavailable as exc:
        raise self.retry(exc=exc, countdown=random.uniform(0.5, 2.0)) from None


@shared_task(name=JOB_SWEEP, ignore_result=True)
def job_sweep_task() -> dict[str, int]:
    return job_sweep()


@shared_task(name=JOBS_RETENTION, ignore_result=True)
def jobs_retention_task() -> dict[str, int]:
    return jobs_retention()


# No Celery retry: a failed attempt schedules its own next one (WEBHOOK_RETRY_SCHEDULE), and
# the sweep re-publishes an attempt whose worker died.
@shared_task(name=WEBHOOK_DELIVERY_ATTEMPT, ignore_result=True)
def webhook_delivery_attempt_task(delivery_id: str) -> None:
    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name=WEBHOOK_SWEEP, ignore_result=True)
def webhook_sweep_task() -> dict[str, int]:
    return webhook_sweep()
