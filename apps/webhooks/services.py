"""Webhook endpoint use cases: register, delete, rotate the secret, redeliver.

Guarantees:
- webhook_create: the URL passed the SSRF rules (apps.webhooks.targets) when it is saved;
  the secret is returned once, here, and never again.
- webhook_rotate_secret: the old secret keeps signing (beside the new one) for
  PREVIOUS_SECRET_HOURS, so deliveries in that window verify with either.
- delivery_redeliver: the same delivery (same webhook-id and body) is pending again with a
  fresh schedule and published on commit; an attempt in flight cannot overwrite it.
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.keys.models import ApiKey
from apps.webhooks.delivery import delivery_rearm
from apps.webhooks.events import DEFAULT_EVENTS
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.webhooks.targets import url_check_at_registration

PREVIOUS_SECRET_HOURS = 24


@dataclass(frozen=True)
class WebhookWithSecret:
    webhook: WebhookEndpoint
    secret: str  # shown once


def secret_new() -> str:
    """A signing secret as Standard Webhooks writes it: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_create(*, project_id: str, url: str, events: list[str] | None, description: str,
                   created_by: ApiKey | None) -> WebhookWithSecret:
    """Register an endpoint (WebhookUrlNotAllowed for a URL the SSRF rules refuse).
    ``events`` None: the terminal ones (DEFAULT_EVENTS)."""
    url_check_at_registration(url)
    secret = secret_new()
    endpoint = WebhookEndpoint.objects.create(
        project_id=project_id, url=url, events=list(events or DEFAULT_EVENTS), description=description,
        secret=secret, created_by=created_by,
    )
    return WebhookWithSecret(endpoint, secret)


def webhook_delete(*, webhook: WebhookEndpoint) -> WebhookEndpoint:
    """Delete the endpoint and its delivery log; an attempt in flight finds nothing to record."""
    webhook_id = webhook.pk
    webhook.delete()
    webhook.pk = webhook_id  # Django clears it; the answer names what was deleted
    return webhook


def webhook_rotate_secret(*, webhook: WebhookEndpoint) -> WebhookWithSecret:
    """A new secret, returned once; the current one signs too for PREVIOUS_SECRET_HOURS."""
    secret = secret_new()
    webhook.previous_secret, webhook.secret = webhook.secret, secret
    webhook.previous_secret_expires_at = timezone.now() + timedelta(hours=PREVIOUS_SECRET_HOURS)
    webhook.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return WebhookWithSecret(webhook, secret)


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the delivery again: same webhook-id, next attempt now, a fresh retry schedule."""
    with transaction.atomic():
        return delivery_rearm(delivery=delivery)
