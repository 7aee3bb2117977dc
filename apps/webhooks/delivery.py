"""The webhook outbox: record an event's deliveries with the job's new state, send each
attempt from a Celery task, schedule the retries, sweep up what was never sent.

Guarantees:
- delivery_recorder (a listener of apps.jobs.transitions): the deliveries of a job event
  commit in the transaction that changes the job, or not at all; nothing is sent from the
  request or job path (the first attempt is published on commit).
- webhook_delivery_attempt: safe to run twice, concurrently or late: an attempt first takes
  the delivery's lease with a conditional UPDATE (pending, due, lease free), so one worker
  sends it; only the lease holder records the outcome.
- webhook_sweep: publishes every pending delivery that is due and that no message will
  reach (never published, lost, or its worker died mid-attempt); safe to run concurrently.
"""
from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from apps.jobs.models import Job
from apps.jobs.transitions import Recorder
from apps.webhooks.events import ALLOWED_EVENTS
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.webhooks.payloads import event_body, event_id_new
from apps.webhooks.sender import AttemptResult, attempt_send
from apps.webhooks.task_names import WEBHOOK_DELIVERY_ATTEMPT
from banatie import metrics
from banatie.celery import app as celery_app

logger = logging.getLogger(__name__)

_BROKER_ERRORS = (KombuOperationalError, RedisError, OSError)
# Waits up to this long are published with a countdown; longer ones are published by the
# sweep once due (a broker holding messages for hours is not a scheduler).
COUNTDOWN_MAX_SECONDS = 60.0
# A published attempt not taken this long after it was due is taken as lost (a worker
# killed between the commit and the publish, or holding it when it died): re-published.
LOST_AFTER = timedelta(seconds=30)
# Beyond the send's own timeout: name resolution and the database round trips of an attempt.
_LEASE_MARGIN_SECONDS = 10.0


def _publish(delivery_id: str, countdown: float | None = None) -> bool:
    """Publish one attempt by the task's name. A broker outage is not fatal: the delivery
    stays pending and the sweep publishes it."""
    try:
        celery_app.send_task(WEBHOOK_DELIVERY_ATTEMPT, (delivery_id,), countdown=countdown or None)
        return True
    except _BROKER_ERRORS as exc:
        logger.warning("could not publish webhook delivery %s (the sweep retries): %s", delivery_id,
                       type(exc).__name__)
        return False


def delivery_publish_on_commit(delivery_id: str) -> None:
    transaction.on_commit(lambda: _publish(delivery_id))


# --- recording (in the job's transaction) -----------------------------------------------

def delivery_recorder(job: Job, event: str) -> Recorder | None:
    """The transition listener: None when no active endpoint of the job's project subscribes
    to ``event`` (one SELECT), else the recorder that writes one delivery per endpoint."""
    if event not in ALLOWED_EVENTS:
        return None  # a transition no endpoint can subscribe to (job.created)
    endpoints = [endpoint_id for endpoint_id, events in
                 WebhookEndpoint.objects.filter(project_id=job.project_id, is_active=True)
                 .values_list("id", "events") if event in events]
    if not endpoints:
        return None

    def record(stored: Job) -> None:
        body = event_body(event=event, job=stored)
        now = timezone.now()
        first = now + timedelta(seconds=settings.WEBHOOK_RETRY_SCHEDULE[0])
        deliveries = WebhookDelivery.objects.bulk_create([
            WebhookDelivery(endpoint_id=endpoint_id, event_id=event_id_new(), type=event, job_id=stored.pk,
                            body=body, created_at=now, next_attempt_at=first,
                            enqueued_at=now if first <= now else None)
            for endpoint_id in endpoints
        ])
        if first <= now:
            for delivery in deliveries:
                delivery_publish_on_commit(str(delivery.pk))

    return record


# --- one attempt (in a worker) ----------------------------------------------------------

def _retry_delay(attempt: int, result: AttemptResult) -> float | None:
    """Seconds before the next attempt of a delivery that failed its ``attempt``-th attempt
    of this round, or None when WEBHOOK_RETRY_SCHEDULE is used up. ±10 % jitter spreads
    retries of many deliveries; a receiver's Retry-After (429/503) is waited at least."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempt >= len(schedule):
        return None
    delay = schedule[attempt] * random.uniform(0.9, 1.1)
    if result.retry_after is not None:
        delay = max(delay, result.retry_after)
    return delay


def _secrets(endpoint: WebhookEndpoint) -> list[str]:
    previous = endpoint.previous_secret and endpoint.previous_secret_expires_at
    if previous and endpoint.previous_secret_expires_at > timezone.now():
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


def webhook_delivery_attempt(*, delivery_id: str) -> None:
    """Send the delivery's due attempt and record what happened: 2xx → succeeded; 410 →
    the endpoint is disabled and its pending deliveries fail; anything else → the next
    attempt per WEBHOOK_RETRY_SCHEDULE, or failed once it is used up. A no-op when the
    delivery is not pending, not due yet, or another attempt holds its lease."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + _LEASE_MARGIN_SECONDS)
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    delivery = (WebhookDelivery.objects.select_related("endpoint")
                .filter(free, pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
                .first())
    if delivery is None:
        return
    taken = (WebhookDelivery.objects
             .filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING, lease_expires_at=delivery.lease_expires_at,
                     round_attempts=delivery.round_attempts)
             .update(lease_expires_at=lease, attempts=delivery.attempts + 1,
                     round_attempts=delivery.round_attempts + 1))
    if not taken:
        return  # another worker took this attempt
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        result = AttemptResult(None, f"endpoint disabled: {endpoint.disabled_reason or 'inactive'}")
        _record(delivery, lease, {"status": WebhookDelivery.Status.FAILED, "next_attempt_at": None}, result)
        metrics.webhook_deliveries.labels(outcome="endpoint_disabled").inc()
        return
    result = attempt_send(url=endpoint.url, secrets=_secrets(endpoint), event_id=delivery.event_id,
                          body=delivery.body)
    if result.delivered:
        _record(delivery, lease, {"status": WebhookDelivery.Status.SUCCEEDED, "delivered_at": timezone.now(),
                                  "next_attempt_at": None}, result)
        metrics.webhook_deliveries.labels(outcome="delivered").inc()
        return
    if result.gone:
        _endpoint_gone(delivery, lease, result)
        metrics.webhook_deliveries.labels(outcome="gone").inc()
        return
    delay = _retry_delay(delivery.round_attempts + 1, result)
    if delay is None:
        _record(delivery, lease, {"status": WebhookDelivery.Status.FAILED, "next_attempt_at": None}, result)
        metrics.webhook_deliveries.labels(outcome="failed").inc()
        return
    metrics.webhook_deliveries.labels(outcome="retrying").inc()
    soon = delay <= COUNTDOWN_MAX_SECONDS
    later = timezone.now()
    if _record(delivery, lease, {"next_attempt_at": later + timedelta(seconds=delay),
                                 "enqueued_at": later if soon else None}, result) and soon:
        _publish(str(delivery.pk), countdown=delay)


def _record(delivery: WebhookDelivery, lease: Any, values: dict[str, Any], result: AttemptResult) -> bool:
    """The attempt's outcome, if this attempt still holds the lease (a redelivery or the
    sweep may have re-armed the delivery meanwhile: then theirs is the next word)."""
    return bool(WebhookDelivery.objects.filter(pk=delivery.pk, lease_expires_at=lease).update(
        last_status_code=result.status_code, last_error=result.error, lease_expires_at=None, **values))


def _endpoint_gone(delivery: WebhookDelivery, lease: Any, result: AttemptResult) -> None:
    """410 Gone: the receiver asked never to be sent anything again."""
    reason = f"The receiver answered 410 Gone at {timezone.now().isoformat(timespec='seconds')}."
    with transaction.atomic():
        _record(delivery, lease, {"status": WebhookDelivery.Status.FAILED, "next_attempt_at": None}, result)
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(is_active=False, disabled_reason=reason)
        WebhookDelivery.objects.filter(endpoint_id=delivery.endpoint_id, status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.FAILED, next_attempt_at=None, lease_expires_at=None,
            last_error=f"endpoint disabled: {reason}")
    logger.warning("webhook endpoint %s disabled: its receiver answered 410 Gone", delivery.endpoint_id)


# --- re-arming and the sweep ------------------------------------------------------------

def delivery_rearm(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Pending again with a fresh schedule, its next attempt now (same event id and body);
    an attempt in flight can no longer record its outcome. Published on commit."""
    now = timezone.now()
    values = {"status": WebhookDelivery.Status.PENDING, "round_attempts": 0, "next_attempt_at": now,
              "enqueued_at": now, "lease_expires_at": None, "delivered_at": None}
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**values)
    for name, value in values.items():
        setattr(delivery, name, value)
    delivery_publish_on_commit(str(delivery.pk))
    return delivery


def webhook_sweep() -> dict[str, int]:
    """Publish due pending deliveries no message will reach: never published (their wait
    was longer than a countdown), whose attempt's worker died (lease expired), or whose
    message was lost (due for LOST_AFTER and not taken). Each re-publish is won by one
    sweep (a conditional UPDATE), so concurrent sweeps publish it once."""
    now = timezone.now()
    due = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
    lost = now - LOST_AFTER
    waiting = (
        Q(lease_expires_at__isnull=True, enqueued_at__isnull=True)
        | Q(lease_expires_at__lt=now)
        | Q(lease_expires_at__isnull=True, next_attempt_at__lt=lost, enqueued_at__lt=lost)
    )
    published = 0
    for delivery_id, lease, enqueued in due.filter(waiting).values_list("pk", "lease_expires_at", "enqueued_at")[:500]:
        won = WebhookDelivery.objects.filter(
            pk=delivery_id, status=WebhookDelivery.Status.PENDING, lease_expires_at=lease, enqueued_at=enqueued,
        ).update(enqueued_at=now, lease_expires_at=None)
        if won and _publish(str(delivery_id)):
            published += 1
    if published:
        logger.info("webhook sweep: published %d due deliveries", published)
    return {"published": published}
