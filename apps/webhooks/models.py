from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class WebhookEndpoint(models.Model):
    """A URL of a project that is told about its jobs. ``secret`` signs every delivery
    (Standard Webhooks, ``whsec_`` + base64); after a rotation ``previous_secret`` signs too
    until ``previous_secret_expires_at``, so a receiver can switch without losing a delivery.
    Neither secret is ever shown again after the answer that created it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project_id = models.CharField(max_length=100)
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list)
    description = models.CharField(max_length=500, blank=True, default="")
    is_active = models.BooleanField(default=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Why the endpoint stopped receiving (a 410 Gone from the receiver); empty while active.
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey("keys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Every job transition asks for its project's active endpoints.
            models.Index(fields=["project_id", "is_active"], name="webhook_project_active_idx"),
        ]

    def __str__(self) -> str:
        return f"webhook {self.url} ({self.project_id})"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row. Written in the transaction that changed
    the job, with the exact body every attempt sends (so retries and redeliveries send the
    same bytes under the same ``event_id``, the ``webhook-id`` header)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=40, editable=False)
    type = models.CharField(max_length=32)
    # Not a foreign key: retention may delete the job, the log of what was sent stays.
    job_id = models.UUIDField()
    body = models.TextField(editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts since the delivery was last armed (created or redelivered): its place in
    # WEBHOOK_RETRY_SCHEDULE. ``attempts`` counts them all.
    round_attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a message for the coming attempt was last published (None: not published, the
    # sweep publishes it once due); the sweep re-publishes one that was lost.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # Held by the attempt being sent: no second worker sends the same attempt, and only the
    # holder may record its outcome. An expired lease is an attempt whose worker died.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # GET /api/webhooks/{id}/deliveries: newest first, keyset-paginated on (created_at, id).
            models.Index(fields=["endpoint", "-created_at", "-id"], name="delivery_endpoint_newest_idx"),
            # The sweep: pending deliveries by due time.
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} → {self.endpoint_id} ({self.status})"
