from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Job(models.Model):
    """One unit of slow work. Its id is also the Celery task id and the public job id.

    ``kind`` names a registered job kind (apps.jobs.kinds), not a fixed list: a feature
    app adds a kind without editing this model. The table keeps the name it had when jobs
    lived in apps.generation, so existing databases move over with their rows."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELED = "canceled"

    class CancelReason(models.TextChoices):
        REQUESTED = "requested"  # POST /api/jobs/{id}/cancel (or the admin action)
        DEADLINE = "deadline"  # its Cancel-After passed

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELED)
    UNFINISHED = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    api_key = models.ForeignKey("keys.ApiKey", on_delete=models.PROTECT, related_name="jobs")
    project_id = models.CharField(max_length=100, db_index=True)
    kind = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    request = models.JSONField(default=dict)
    result = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    error_details = models.JSONField(null=True, blank=True)
    retry_after = models.FloatField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Last time the task was published; the sweep re-publishes jobs queued for too long.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True, default="")
    # The client's Cancel-After, as an instant: past it the job ends canceled (deadline).
    cancel_after = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=16, choices=CancelReason.choices, blank=True, default="")
    # What its upstream calls consumed and cost, once it ended (apps.jobs.metering); null before.
    usage = models.JSONField(null=True, blank=True)
    # When retention deleted what the job stored (IMAGE_RETENTION_DAYS); the row may stay longer.
    stored_released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "generation_job"
        ordering = ["-created_at"]
        # The admin's "Cancel selected jobs" action (apps/jobs/admin.py): cancel, never change.
        permissions = [("cancel_job", "Can cancel jobs")]
        # Named as the original migration named it, so no index is rebuilt.
        indexes = [
            models.Index(fields=["status", "created_at"], name="generation__status_dd70ec_idx"),
            # GET /api/jobs: a project's jobs, newest first, keyset-paginated on (created_at, id).
            models.Index(fields=["project_id", "-created_at", "-id"], name="job_project_newest_idx"),
            # Retention: finished jobs by age.
            models.Index(fields=["finished_at"], name="job_finished_at_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="one_job_per_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.id} ({self.status})"

    @property
    def status_url(self) -> str:
        return f"/api/jobs/{self.id}"

    @property
    def cancel_reason_or_none(self) -> str | None:
        return self.cancel_reason or None

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
