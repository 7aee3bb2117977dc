"""The outbox with the real processes (the Procfile's web, worker and beat): a worker
SIGKILLed after a job's outcome was committed but before its delivery was sent loses
nothing. The delivery was recorded with the job's state; the beat's webhook sweep finds its
attempt's lease expired and publishes it again, and a fresh worker delivers the same event."""
from __future__ import annotations

import json
import signal
import threading

import pytest
from standardwebhooks import Webhook

from tests.conftest import wait_for
from tests.webhook_receiver import Reply

pytestmark = pytest.mark.slow


def test_a_delivery_survives_a_worker_killed_before_it_was_sent(stack_factory, tenants, receiver):
    stack = stack_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS="true", WEBHOOK_TIMEOUT_SECONDS="3",
                          WEBHOOK_SWEEP_SECONDS="1", WEBHOOK_RETRY_SCHEDULE="0,1")
    headers = {"X-API-Key": tenants.a}
    status, created = stack.http("POST", "/api/webhooks", {"url": receiver.url + "/hook"}, headers=headers)
    assert status == 201, created
    release = threading.Event()
    receiver.script(Reply(hold=release))  # the first attempt never gets its answer
    try:
        status, accepted = stack.http("POST", "/api/text-to-image", {"prompt": "A red fox", "filename": "fox", "autoEnhance": False},
                                      headers={**headers, "Prefer": "respond-async"})
        assert status == 202, accepted
        (first,) = receiver.wait_for(1, timeout=30)  # the job is finished; its delivery is being sent
        status, job = stack.http("GET", f"/api/jobs/{accepted['jobId']}", headers=headers)
        assert job["status"] == "succeeded"
        stack.signal("worker", signal.SIGKILL)
        assert stack.wait_exit("worker") == -signal.SIGKILL
    finally:
        release.set()
    stack.start_worker()
    # The lease of the killed attempt runs out (timeout + margin), the sweep publishes it again.
    _, again = receiver.wait_for(2, timeout=60)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] and again.body == first.body
    event = Webhook(created["secret"]).verify(again.body, again.headers)
    assert event["type"] == "job.succeeded" and event["data"]["jobId"] == accepted["jobId"]
    log: list[dict] = []

    def delivered() -> bool:
        log[:] = stack.http("GET", f"/api/webhooks/{created['webhook']['id']}/deliveries", headers=headers)[1][
            "deliveries"]
        return bool(log) and log[0]["status"] == "succeeded"

    wait_for(delivered, 30, "the delivery to be recorded as succeeded")
    assert len(log) == 1 and log[0]["attempts"] == 2, json.dumps(log)


def test_a_delivery_recorded_but_never_published_is_sent_by_the_sweep(api, worker, tenants, receiver, settings,
                                                                      monkeypatch):
    """The other outbox path: the job's transaction committed its delivery, but the publish
    after the commit never happened (the broker refused it, or the process died right after
    the commit). The sweep sends it once it is LOST_AFTER overdue."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.webhooks import delivery as webhook_delivery
    from apps.webhooks.models import WebhookDelivery
    from tests.conftest import auth, poll_job

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_SCHEDULE = (0,)
    settings.GEMINI_API_KEY = ""
    created = api.post("/api/webhooks", {"url": receiver.url + "/hook", "events": ["job.succeeded"]},
                       format="json", **auth(tenants.a))
    secret = created.json()["secret"]
    monkeypatch.setattr(webhook_delivery, "_publish", lambda delivery_id, countdown=None: False)
    job = api.post("/api/text-to-image", {"prompt": "A lighthouse", "filename": "l", "autoEnhance": False},
                   format="json", HTTP_PREFER="respond-async", **auth(tenants.a)).json()
    assert poll_job(api, tenants.a, job["jobId"])["status"] == "succeeded"
    pending = WebhookDelivery.objects.get(job_id=job["jobId"])
    assert pending.status == WebhookDelivery.Status.PENDING and pending.attempts == 0
    monkeypatch.undo()
    assert webhook_delivery.webhook_sweep()["published"] == 0  # not overdue yet: its message may still come
    overdue = timezone.now() - webhook_delivery.LOST_AFTER - timedelta(seconds=1)
    WebhookDelivery.objects.filter(pk=pending.pk).update(next_attempt_at=overdue, enqueued_at=overdue)
    assert webhook_delivery.webhook_sweep()["published"] == 1
    (request,) = receiver.wait_for(1)
    assert request.headers["webhook-id"] == pending.event_id
    assert Webhook(secret).verify(request.body, request.headers)["data"]["jobId"] == job["jobId"]
