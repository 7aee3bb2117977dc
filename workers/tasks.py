"""Thin Celery tasks: they take ids and call a service. The service owns idempotency."""
from __future__ import annotations

from celery import shared_task

from apps.generation.services import job_run, job_sweep


@shared_task(name="jobs.run", ignore_result=True)
def run_job(job_id: str) -> None:
    job_run(job_id=job_id)


@shared_task(name="jobs.sweep", ignore_result=True)
def sweep_jobs() -> dict[str, int]:
    return job_sweep()
