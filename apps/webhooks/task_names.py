"""Celery task names of the webhooks app. Services publish by name (send_task); tasks in
workers/tasks.py register under the same constants: no import between the two."""
from __future__ import annotations

WEBHOOK_DELIVERY_ATTEMPT = "webhooks.webhook_delivery_attempt"
WEBHOOK_SWEEP = "webhooks.webhook_sweep"
