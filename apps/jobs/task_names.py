"""Celery task names of the jobs core. Services publish by name (send_task), tasks in
workers/tasks.py register under the same constants: no import between the two."""
from __future__ import annotations

JOB_RUN = "jobs.job_run"
JOB_SWEEP = "jobs.job_sweep"
JOBS_RETENTION = "jobs.jobs_retention"
