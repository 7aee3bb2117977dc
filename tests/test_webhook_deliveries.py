"""Real deliveries: jobs run by the real worker, events POSTed to a receiver on 127.0.0.1
(WEBHOOK_ALLOW_PRIVATE_TARGETS=true), every one verified by `standardwebhooks`. Retries,
410, redirects, Retry-After, a hanging receiver, rotation, redelivery, the delivery log,
DNS rebinding, and which events reach which endpoint."""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth.models import Permission
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from apps.webhooks import targets
from apps.webhooks.models import WebhookEndpoint
from tests.conftest import auth, poll_job, wait_for
from tests.gemini_emulator import Reply as GeminiReply
from tests.webhook_receiver import Reply

ALL_EVENTS = ["job.started", "job.succeeded", "job.failed", "job.canceled"]
T2I = {"prompt": "A lighthouse at dusk", "filename": "lighthouse", "autoEnhance": False}


@pytest.fixture(autouse=True)
def webhook_settings(settings):  # type: ignore[no-untyped-def]
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_SCHEDULE = (0,)
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    settings.PUBLIC_BASE_URL = "http://testserver"  # the APIClient's host: bodies compare to GET /api/jobs
    settings.GEMINI_API_KEY = ""  # the offline provider, unless a test asks for the emulator


def register(api, key: str, url: str, **body):  # type: ignore[no-untyped-def]
    r = api.post("/api/webhooks", {"url": url, **body}, format="json", **auth(key))
    assert r.status_code == 201, r.json()
    return r.json()["webhook"]["id"], r.json()["secret"]


def generate(api, key: str, *, wait: bool = True) -> dict:  # type: ignore[no-untyped-def]
    """A text-to-image job (answered 202 at once), polled to its end unless ``wait`` is off."""
    r = api.post("/api/text-to-image", T2I, format="json", HTTP_PREFER="respond-async", **auth(key))
    assert r.status_code == 202, r.json()
    return poll_job(api, key, r.json()["jobId"]) if wait else r.json()


def deliveries(api, key: str, webhook_id: str, query: str = "") -> dict:  # type: ignore[no-untyped-def]
    r = api.get(f"/api/webhooks/{webhook_id}/deliveries{query}", **auth(key))
    assert r.status_code == 200, r.json()
    return r.json()


def settled(api, key: str, webhook_id: str, count: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """The endpoint's deliveries once ``count`` exist and none is pending (bounded wait)."""
    found: list[dict] = []

    def done() -> bool:
        found[:] = deliveries(api, key, webhook_id)["deliveries"]
        return len(found) == count and all(d["status"] != "pending" for d in found)

    wait_for(done, 20, f"{count} settled deliveries")
    return found


def verified(secret: str, request) -> dict:  # type: ignore[no-untyped-def]
    return Webhook(secret).verify(request.body, request.headers)


def test_every_delivery_is_signed_and_carries_the_job_as_get_shows_it(api, worker, tenants, receiver):
    webhook_id, secret = register(api, tenants.a, receiver.url + "/hook", events=ALL_EVENTS)
    job = generate(api, tenants.a)
    started, succeeded = receiver.wait_for(2)
    for request in (started, succeeded):
        assert request.path == "/hook" and request.headers["content-type"] == "application/json"
        assert re.fullmatch(r"msg_[0-9a-f]{32}", request.headers["webhook-id"])
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 300
        assert request.headers["webhook-signature"].startswith("v1,")
    bodies = {verified(secret, r)["type"]: verified(secret, r) for r in (started, succeeded)}
    assert set(bodies) == {"job.started", "job.succeeded"}
    assert bodies["job.started"]["data"]["status"] == "running"
    shown = api.get(f"/api/jobs/{job['jobId']}", **auth(tenants.a)).json()
    assert bodies["job.succeeded"]["data"] == shown  # exactly GET /api/jobs/{id}, absolute image URL included
    assert shown["data"]["url"].startswith("http://testserver/api/images/")
    assert datetime.fromisoformat(bodies["job.succeeded"]["timestamp"].replace("Z", "+00:00")).tzinfo
    log = settled(api, tenants.a, webhook_id, 2)
    assert {d["eventId"] for d in log} == {started.headers["webhook-id"], succeeded.headers["webhook-id"]}
    assert all(d["status"] == "succeeded" and d["attempts"] == 1 and d["lastStatusCode"] == 200
               and d["lastError"] is None and d["nextAttemptAt"] is None and d["deliveredAt"] for d in log)
    assert {d["jobId"] for d in log} == {job["jobId"]}


def test_each_event_reaches_only_the_endpoints_subscribed_to_it(api, worker, tenants, receiver, gemini):
    register(api, tenants.a, receiver.url + "/started", events=["job.started"])
    register(api, tenants.a, receiver.url + "/endings")  # the default: the three terminal events
    succeeded = generate(api, tenants.a)["jobId"]
    gemini.fail_all(GeminiReply.error(400))  # upstream_rejected: the job fails
    failed = generate(api, tenants.a)["jobId"]
    gemini.fail_all(None)
    gemini.latency = 3.0
    running = generate(api, tenants.a, wait=False)["jobId"]
    wait_for(lambda: api.get(f"/api/jobs/{running}", **auth(tenants.a)).json()["status"] == "running", 10, "running")
    assert api.post(f"/api/jobs/{running}/cancel", **auth(tenants.a)).status_code == 200
    received = receiver.wait_for(6)
    seen = sorted((r.path, json.loads(r.body)["type"], json.loads(r.body)["data"]["jobId"]) for r in received)
    assert seen == sorted([
        ("/started", "job.started", succeeded), ("/started", "job.started", failed),
        ("/started", "job.started", running),
        ("/endings", "job.succeeded", succeeded), ("/endings", "job.failed", failed),
        ("/endings", "job.canceled", running),
    ])
    canceled = next(json.loads(r.body) for r in received if json.loads(r.body)["type"] == "job.canceled")
    assert canceled["data"]["cancelReason"] == "requested" and canceled["data"]["error"]["code"] == "job_canceled"


def test_another_projects_jobs_never_reach_an_endpoint(api, worker, tenants, receiver):
    webhook_id, secret = register(api, tenants.b, receiver.url + "/b")
    generate(api, tenants.a)  # project a: nothing for b's endpoint
    generate(api, tenants.master)  # the master keys' own scope: nothing either
    b_job = generate(api, tenants.b)["jobId"]
    (only,) = receiver.wait_for(1)
    assert verified(secret, only)["data"]["jobId"] == b_job
    assert [d["jobId"] for d in settled(api, tenants.b, webhook_id, 1)] == [b_job]
    assert len(receiver.requests) == 1


def test_a_failing_receiver_is_retried_on_the_schedule_with_one_webhook_id(api, worker, tenants, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0, 0.2, 0.2)
    receiver.script(Reply(500), Reply(503))
    webhook_id, secret = register(api, tenants.a, receiver.url + "/hook")
    generate(api, tenants.a)
    attempts = receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in attempts}) == 1
    assert len({r.body for r in attempts}) == 1  # the same bytes every time
    for request in attempts:
        verified(secret, request)
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3 and delivery["lastStatusCode"] == 200


def test_a_delivery_fails_once_the_schedule_is_used_up_and_stays_in_the_log(api, worker, tenants, receiver,
                                                                           settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0, 0.1)
    receiver.default = Reply(500)
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook")
    generate(api, tenants.a)
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    assert delivery["status"] == "failed" and delivery["attempts"] == 2
    assert delivery["lastStatusCode"] == 500 and delivery["lastError"] == "HTTP 500"
    assert delivery["nextAttemptAt"] is None and delivery["deliveredAt"] is None
    assert len(receiver.requests) == 2


def test_a_receiver_that_is_down_is_retried(api, worker, tenants, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0, 0.1)
    webhook_id, _ = register(api, tenants.a, "http://127.0.0.1:9/nothing-listens")
    generate(api, tenants.a)
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    assert delivery["status"] == "failed" and delivery["attempts"] == 2 and delivery["lastStatusCode"] is None
    assert "Connect" in delivery["lastError"] or "refused" in delivery["lastError"].lower()


def test_410_gone_disables_the_endpoint_and_nothing_more_is_sent(api, worker, tenants, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0, 0.1, 0.1)
    receiver.script(Reply(410))
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook")
    generate(api, tenants.a)
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    assert delivery["status"] == "failed" and delivery["attempts"] == 1 and delivery["lastStatusCode"] == 410
    (webhook,) = api.get("/api/webhooks", **auth(tenants.a)).json()["webhooks"]
    assert webhook["isActive"] is False and "410 Gone" in webhook["disabledReason"]
    generate(api, tenants.a)  # a disabled endpoint records nothing new
    assert len(deliveries(api, tenants.a, webhook_id)["deliveries"]) == 1
    assert len(receiver.requests) == 1


def test_a_redirect_is_not_followed(api, worker, tenants, receiver):
    receiver.script(Reply(302, headers={"Location": receiver.url + "/elsewhere"}))
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook")
    generate(api, tenants.a)
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    assert delivery["status"] == "failed" and delivery["lastStatusCode"] == 302
    assert "redirects are not followed" in delivery["lastError"] and "/elsewhere" in delivery["lastError"]
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_retry_after_on_503_is_waited(api, worker, tenants, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (0, 0.1)
    receiver.script(Reply(503, headers={"Retry-After": "3"}))
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook")
    generate(api, tenants.a)
    receiver.wait_for(1)
    first_seen = time.time()
    wait_for(lambda: deliveries(api, tenants.a, webhook_id)["deliveries"][0]["lastStatusCode"] == 503, 10, "1st")
    (delivery,) = deliveries(api, tenants.a, webhook_id)["deliveries"]
    due = datetime.fromisoformat(delivery["nextAttemptAt"].replace("Z", "+00:00")).timestamp()
    assert due - first_seen >= 2.5  # the receiver's 3 s, not the schedule's 0.1 s
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 2


def test_a_hanging_receiver_delays_neither_the_job_nor_its_synchronous_waiter(api, worker, tenants, receiver,
                                                                              settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 30
    release = threading.Event()
    receiver.script(Reply(hold=release))  # the job.started delivery hangs until released
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook", events=ALL_EVENTS)
    try:
        answer = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a))
        # The synchronous request got its image while the receiver still holds job.started,
        assert answer.status_code == 200 and answer.json()["success"] is True
        assert not release.is_set()
        # and job.succeeded went out beside the hanging delivery, not after it.
        started, succeeded = receiver.wait_for(2)
        assert json.loads(succeeded.body)["type"] == "job.succeeded" and not release.is_set()
    finally:
        release.set()
    log = settled(api, tenants.a, webhook_id, 2)
    assert all(d["status"] == "succeeded" for d in log)


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one(api, worker, tenants, receiver):
    webhook_id, old = register(api, tenants.a, receiver.url + "/hook")
    new = api.post(f"/api/webhooks/{webhook_id}/rotate-secret", **auth(tenants.a)).json()["secret"]
    generate(api, tenants.a)
    (during,) = receiver.wait_for(1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verified(old, during)
    verified(new, during)
    # 24 hours later (the clock the code reads: the stored expiry, moved into the past).
    WebhookEndpoint.objects.filter(pk=webhook_id).update(
        previous_secret_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    generate(api, tenants.a)
    _, after = receiver.wait_for(2)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verified(new, after)
    with pytest.raises(WebhookVerificationError):
        verified(old, after)


def test_redeliver_sends_the_same_event_again_with_its_webhook_id(api, worker, tenants, receiver):
    webhook_id, secret = register(api, tenants.a, receiver.url + "/hook")
    generate(api, tenants.a)
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    r = api.post(f"/api/webhooks/{webhook_id}/deliveries/{delivery['id']}/redeliver", **auth(tenants.a))
    assert r.status_code == 202, r.json()
    assert r["Location"] == f"/api/webhooks/{webhook_id}/deliveries"
    assert r.json()["delivery"]["status"] == "pending" and r.json()["delivery"]["eventId"] == delivery["eventId"]
    first, again = receiver.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == delivery["eventId"]
    assert again.body == first.body
    verified(secret, again)
    wait_for(lambda: deliveries(api, tenants.a, webhook_id)["deliveries"][0]["attempts"] == 2, 10, "2nd attempt")
    (redelivered,) = settled(api, tenants.a, webhook_id, 1)
    assert redelivered["status"] == "succeeded" and redelivered["attempts"] == 2


def test_redeliver_answers_404_for_unknown_or_foreign_deliveries(api, worker, tenants, receiver):
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook")
    other_id, _ = register(api, tenants.a, receiver.url + "/other")
    generate(api, tenants.a)
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    for path, code in [
        (f"/api/webhooks/{webhook_id}/deliveries/00000000-0000-4000-8000-000000000000/redeliver", "delivery_not_found"),
        (f"/api/webhooks/{other_id}/deliveries/{delivery['id']}/redeliver", "delivery_not_found"),
        (f"/api/webhooks/{webhook_id}/deliveries/not-a-uuid/redeliver", "delivery_not_found"),
    ]:
        r = api.post(path, **auth(tenants.a))
        assert r.status_code == 404 and r.json()["code"] == code, path
    r = api.post(f"/api/webhooks/{webhook_id}/deliveries/{delivery['id']}/redeliver", **auth(tenants.b))
    assert r.status_code == 404 and r.json()["code"] == "webhook_not_found"


def test_the_delivery_log_pages_newest_first(api, worker, tenants, receiver):
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook")
    jobs = [generate(api, tenants.a)["jobId"] for _ in range(3)]
    settled(api, tenants.a, webhook_id, 3)
    first = deliveries(api, tenants.a, webhook_id, "?limit=2")
    assert [d["jobId"] for d in first["deliveries"]] == jobs[:0:-1] and first["hasMore"] is True
    second = deliveries(api, tenants.a, webhook_id, f"?limit=2&cursor={first['nextCursor']}")
    assert [d["jobId"] for d in second["deliveries"]] == jobs[:1]
    assert second["hasMore"] is False and second["nextCursor"] is None
    for query, code in (("?cursor=forged", "invalid_cursor"), ("?limit=0", "validation_failed"),
                        ("?limit=101", "validation_failed")):
        r = api.get(f"/api/webhooks/{webhook_id}/deliveries{query}", **auth(tenants.a))
        assert r.status_code == 400 and r.json()["code"] == code, query


def test_a_name_that_now_resolves_to_loopback_is_refused_at_delivery(api, worker, tenants, receiver, settings,
                                                                    monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    answers = {"hooks.example.com": ["93.184.215.14"]}
    monkeypatch.setattr(targets, "resolve", lambda host, port: answers[host])
    port = receiver.server.server_address[1]
    webhook_id, _ = register(api, tenants.a, f"https://hooks.example.com:{port}/hook")  # public at registration
    answers["hooks.example.com"] = ["127.0.0.1"]  # DNS rebinding
    generate(api, tenants.a)
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    assert delivery["status"] == "failed" and delivery["lastStatusCode"] is None
    assert delivery["lastError"].startswith("refused:") and "127.0.0.1" in delivery["lastError"]
    assert "loopback" in delivery["lastError"]
    assert receiver.requests == []


def test_a_transition_that_did_not_happen_records_nothing(api, worker, tenants, receiver):
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook")
    job = generate(api, tenants.a)
    assert api.post(f"/api/jobs/{job['jobId']}/cancel", **auth(tenants.a)).status_code == 409
    poll_job(api, tenants.a, job["jobId"])
    assert [d["type"] for d in settled(api, tenants.a, webhook_id, 1)] == ["job.succeeded"]


def test_the_admins_redeliver_action_sends_the_same_event_again(api, worker, tenants, receiver, admin_client,
                                                                 django_user_model, client):
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook")
    generate(api, tenants.a)
    (delivery,) = settled(api, tenants.a, webhook_id, 1)
    changelist = "/admin/webhooks/webhookdelivery/"
    action = {"action": "redeliver_selected", "_selected_action": [delivery["id"]]}
    # A staff user who may only view deliveries is not offered the action.
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(viewer)
    assert client.get(changelist).status_code == 200
    client.post(changelist, action)
    assert len(receiver.requests) == 1
    r = admin_client.post(changelist, action, follow=True)
    assert r.status_code == 200 and "1 delivery will be sent again." in r.content.decode()
    first, again = receiver.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == delivery["eventId"]
