"""Thin Celery tasks: they take ids and call the service they are named after, which owns
idempotency. Registered under the names the jobs core publishes by (apps.jobs.task_names)."""
from __future__ import annotations

from celery import shared_task

from apps.jobs.services import job_run, job_sweep
from apps.jobs.task_names import JOB_RUN, JOB_SWEEP


@shared_task(name=JOB_RUN, ignore_result=True)
def job_run_task(job_id: str) -> None:
    job_run(job_id=job_id)


@shared_task(name=JOB_SWEEP, ignore_result=True)
def job_sweep_task() -> dict[str, int]:
    return job_sweep()
