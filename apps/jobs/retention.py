"""Retention: finished jobs are deleted JOB_RETENTION_DAYS after they finished; what they
stored (a generated image) is deleted IMAGE_RETENTION_DAYS after, only when that is set.

Guarantees of jobs_retention():
- unfinished jobs are never touched;
- with IMAGE_RETENTION_DAYS unset, no stored image is ever deleted (deleting a job row
  leaves its image servable forever);
- with it set, a job's image is deleted once (stored_released_at marks it, set by a
  conditional update only one run can win), and the job row is kept until that happened:
  a row is never deleted while it is the only record of an image still due for deletion;
- bounded: at most RETENTION_BATCH rows per step per run, oldest first (finished_at
  index); what is left waits for the next run;
- safe to run concurrently and repeatedly: every write is conditional, so two runs never
  delete an image twice, and deleting rows already gone is a no-op.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.jobs.kinds import kind_get
from apps.jobs.models import Job

logger = logging.getLogger(__name__)

RETENTION_BATCH = 1000


def _finished_before(cutoff: datetime) -> QuerySet[Job]:
    return Job.objects.filter(status__in=Job.FINISHED, finished_at__lt=cutoff).order_by("finished_at")


def jobs_retention() -> dict[str, int]:
    """One retention run: release the stored images that are due, then delete the job rows
    that are due. Returns {"released": n, "deleted": m} for this run."""
    now = timezone.now()
    counts = {"released": 0, "deleted": 0}
    due_rows = _finished_before(now - timedelta(days=settings.JOB_RETENTION_DAYS))
    if settings.IMAGE_RETENTION_DAYS is not None:
        counts["released"] = _release_stored(_finished_before(now - timedelta(days=settings.IMAGE_RETENTION_DAYS)),
                                             now=now)
        due_rows = due_rows.filter(stored_released_at__isnull=False)
    ids = list(due_rows.values_list("pk", flat=True)[:RETENTION_BATCH])
    if ids:
        # The same conditions again: a row is only deleted if it is still due (another run
        # may have deleted it; a deleted row simply is not counted).
        counts["deleted"], _ = due_rows.filter(pk__in=ids).delete()
    if any(counts.values()):
        logger.info("retention: %s", counts)
    return counts


def _release_stored(due: QuerySet[Job], *, now: datetime) -> int:
    """Delete what each due job stored (its kind's discard_result) and mark it released."""
    released = 0
    for job in due.filter(stored_released_at__isnull=True).only("pk", "kind", "result")[:RETENTION_BATCH]:
        # Marked and deleted in one transaction: only the run whose update wins deletes, and
        # if deleting fails (storage unreachable) the mark is rolled back and a later run
        # tries again. A crash after the delete but before the commit leaves the mark unset;
        # the next run then deletes a file already gone, which storages accept.
        with transaction.atomic():
            if not Job.objects.filter(pk=job.pk, stored_released_at__isnull=True).update(stored_released_at=now):
                continue
            kind_get(job.kind).discard_result(job.result)
        released += 1
    return released
