"""POST /api/enhance through the whole pipeline: API → job row → Celery (real worker,
real Redis) → provider (offline, or Gemini emulator through the real SDK) → response."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from apps.jobs.models import Job
from workers.providers.templates import TEMPLATES
from tests.conftest import GEMINI_TEST_KEY, auth, poll_job
from tests.gemini_emulator import Reply

BODY = {
    "prompt": "A mountain landscape",
    "options": {
        "imageStyle": "photorealistic", "aspectRatio": "landscape", "mood": "serene and peaceful",
        "lighting": "golden hour", "cameraAngle": "wide shot", "outputFormat": "detailed",
        "negativePrompts": ["blurry", "low quality"],
    },
}


def enhance(api, key, body=BODY, **headers):  # type: ignore[no-untyped-def]
    return api.post("/api/enhance", body, format="json", **auth(key), **headers)


def test_enhance_sync_returns_documented_body_offline(api, worker, tenants):
    r = enhance(api, tenants.a)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["success"] is True and body["originalPrompt"] == "A mountain landscape"
    enhanced = body["enhancedPrompt"]
    assert "A mountain landscape" in enhanced and enhanced != body["originalPrompt"]
    for phrase in ("golden hour", "serene and peaceful", "wide shot", "blurry"):
        assert phrase in enhanced
    assert body["detectedLanguage"] == "en" and body["appliedTemplate"] == "photorealistic"
    meta = body["metadata"]
    assert meta["style"] == "photorealistic" and meta["aspectRatio"] == "landscape"
    assert "lighting_enhancement" in meta["enhancements"] and meta["provider"] == "offline"
    job = Job.objects.get(pk=body["jobId"])
    assert job.status == "succeeded" and job.attempts == 1 and job.project_id == "project-a"


def test_enhance_through_gemini_sends_schema_and_key(api, worker, tenants, gemini):
    gemini.text_reply = {"enhancedPrompt": "Majestic peaks at golden hour", "detectedLanguage": "en",
                         "appliedTemplate": "photorealistic", "enhancements": ["lighting_enhancement"]}
    r = enhance(api, tenants.a)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["enhancedPrompt"] == "Majestic peaks at golden hour"
    assert body["metadata"]["enhancements"] == ["lighting_enhancement"]
    assert body["metadata"]["provider"] == "gemini"
    (sent,) = gemini.requests
    assert sent["model"] == "gemini-2.5-flash"
    assert sent["headers"]["x-goog-api-key"] == GEMINI_TEST_KEY
    config = sent["json"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config.get("responseSchema") or config.get("responseJsonSchema")
    assert {"enhancedPrompt", "detectedLanguage", "appliedTemplate", "enhancements"} <= set(schema["properties"])
    instruction = sent["json"]["systemInstruction"]["parts"][0]["text"]
    for phrase in ("golden hour", "serene and peaceful", "wide shot", "blurry, low quality"):
        assert phrase in instruction
    assert sent["json"]["contents"][0]["parts"][0]["text"] == "A mountain landscape"


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_is_applied(api, worker, tenants, template):
    r = enhance(api, tenants.a, {"prompt": "a red apple on a table", "options": {"imageStyle": template}})
    assert r.status_code == 200
    assert r.json()["appliedTemplate"] == template and f"template_{template}" in r.json()["metadata"]["enhancements"]


def test_templates_reach_gemini_as_instructions(api, worker, tenants, gemini):
    enhance(api, tenants.a, {"prompt": "a red apple", "options": {"imageStyle": "sticker", "outputFormat": "concise"}})
    instruction = gemini.requests[-1]["json"]["systemInstruction"]["parts"][0]["text"].lower()
    assert "sticker" in instruction and "concise" in instruction


def test_sync_wait_running_out_answers_202_then_poll_succeeds(api, worker, tenants, gemini, settings):
    settings.SYNC_WAIT_SECONDS = 0.2
    gemini.latency = 1.0
    r = enhance(api, tenants.a)
    assert r.status_code == 202
    body = r.json()
    assert body["status"] in ("queued", "running") and r["Location"] == f"/api/jobs/{body['jobId']}"
    assert "Preference-Applied" not in r
    done = poll_job(api, tenants.a, body["jobId"])
    assert done["status"] == "succeeded" and done["data"]["enhancedPrompt"]
    assert done["startedAt"] and done["finishedAt"] and done["attempts"] == 1


def test_prefer_respond_async_answers_202_at_once(api, worker, tenants, gemini):
    gemini.latency = 0.5
    started = time.monotonic()
    r = enhance(api, tenants.a, HTTP_PREFER="respond-async")
    assert time.monotonic() - started < 0.4
    assert r.status_code == 202 and r["Preference-Applied"] == "respond-async"
    body = r.json()
    assert body["statusUrl"] == f"/api/jobs/{body['jobId']}" == r["Location"]
    done = poll_job(api, tenants.a, body["jobId"])
    assert done["data"]["originalPrompt"] == "A mountain landscape"


def test_job_of_another_project_is_the_same_404(api, worker, tenants):
    job_id = enhance(api, tenants.a, HTTP_PREFER="respond-async").json()["jobId"]
    theirs = api.get(f"/api/jobs/{job_id}", **auth(tenants.b))
    malformed = api.get("/api/jobs/not-a-uuid", **auth(tenants.b))
    unknown = api.get("/api/jobs/00000000-0000-4000-8000-000000000000", **auth(tenants.b))
    for r in (theirs, malformed, unknown):
        assert r.status_code == 404 and r.json()["code"] == "job_not_found"
    assert {k: v for k, v in theirs.json().items() if k != "requestId"} == \
        {k: v for k, v in unknown.json().items() if k != "requestId"}
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).status_code == 200


def test_prefer_with_parameters_is_understood(api, worker, tenants):
    r = enhance(api, tenants.a, HTTP_PREFER="respond-async; foo=bar, handling=lenient")
    assert r.status_code == 202 and r["Preference-Applied"] == "respond-async"


def test_prefer_wait_shortens_the_sync_wait(api, worker, tenants, gemini):
    gemini.latency = 1.0
    started = time.monotonic()
    r = enhance(api, tenants.a, HTTP_PREFER="wait=0.2")
    assert r.status_code == 202 and r["Preference-Applied"] == "wait=0.2"
    assert time.monotonic() - started < 0.9
    assert poll_job(api, tenants.a, r.json()["jobId"])["status"] == "succeeded"


def test_upstream_auth_failure_does_not_blame_the_client_key(api, worker, tenants, gemini):
    gemini.enqueue(Reply.error(403, "API key not valid. Please pass a valid API key."))
    r = enhance(api, tenants.a)
    assert r.status_code == 502 and r.json()["code"] == "upstream_rejected"
    assert "Your Banatie key is fine" in r.json()["message"] and "not valid" not in r.json()["message"]


def test_jobs_route_needs_a_key(api, db):
    assert api.get("/api/jobs/00000000-0000-4000-8000-000000000000").json()["code"] == "api_key_missing"


def test_upstream_500_becomes_503_with_retry_after_after_bounded_retries(api, worker, tenants, gemini, settings):
    settings.UPSTREAM_MAX_ATTEMPTS = 3
    gemini.fail_all(Reply.error(500))
    r = enhance(api, tenants.a)
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == "upstream_unavailable" and int(r["Retry-After"]) >= 1
    assert body["originalPrompt"] == "A mountain landscape"
    assert len(gemini.requests) == 3
    job = Job.objects.get()
    assert job.status == "failed" and job.error_code == "upstream_unavailable"
    polled = api.get(f"/api/jobs/{job.id}", **auth(tenants.a)).json()
    assert polled["error"]["code"] == "upstream_unavailable" and polled["error"]["status"] == 503


def test_upstream_429_then_success_is_retried(api, worker, tenants, gemini):
    gemini.enqueue(Reply.error(429, retry_after=1))
    r = enhance(api, tenants.a)
    assert r.status_code == 200 and len(gemini.requests) == 2


def test_upstream_429_retry_after_is_passed_on(api, worker, tenants, gemini, settings):
    settings.UPSTREAM_MAX_ATTEMPTS = 1
    gemini.enqueue(Reply.error(429, retry_after=7))
    r = enhance(api, tenants.a)
    assert r.status_code == 503 and r["Retry-After"] == "7"


def test_malformed_upstream_answer_is_502(api, worker, tenants, gemini):
    gemini.enqueue(Reply.malformed())
    r = enhance(api, tenants.a)
    assert r.status_code == 502 and r.json()["code"] == "upstream_invalid_response"
    assert len(gemini.requests) == 1  # not retried: a broken answer is not a passing outage


def test_blocked_prompt_is_422_content_blocked(api, worker, tenants, gemini):
    gemini.enqueue(Reply.prompt_blocked("SAFETY"))
    r = enhance(api, tenants.a)
    assert r.status_code == 422 and r.json()["code"] == "content_blocked"
    assert r.json()["details"]["reason"] == "SAFETY"


def test_upstream_timeout_is_retried_then_503(api, worker, tenants, gemini, settings):
    settings.GEMINI_TIMEOUT_SECONDS = 1
    settings.UPSTREAM_MAX_ATTEMPTS = 2
    gemini.fail_all(Reply.delay(3))
    r = enhance(api, tenants.a)
    assert r.status_code == 503 and r.json()["code"] == "upstream_unavailable"
    assert "in time" in r.json()["message"]
    assert len(gemini.requests) == 2
    assert r.json()["jobId"] == str(Job.objects.get().id)
    gemini.clear_fail_all()


# --- validation ------------------------------------------------------------------------

def test_missing_prompt_is_400_prompt_is_required(api, tenants, db):
    r = api.post("/api/enhance", {"options": {}}, format="json", **auth(tenants.a))
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "Validation failed: Prompt is required" and body["field"] == "prompt"
    assert Job.objects.count() == 0


def test_too_long_prompt_is_400_and_repeats_original_prompt(api, tenants, db):
    r = api.post("/api/enhance", {"prompt": "x" * 5001}, format="json", **auth(tenants.a))
    assert r.status_code == 400 and r.json()["originalPrompt"] == "x" * 5001
    assert "5000" in r.json()["message"]


@pytest.mark.parametrize(
    "options,field,allowed",
    [({"imageStyle": "anime"}, "options.imageStyle", "photorealistic"),
     ({"aspectRatio": "huge"}, "options.aspectRatio", "landscape"),
     ({"outputFormat": "long"}, "options.outputFormat", "concise"),
     ({"style": "x"}, "options.style", None),
     ({"negativePrompts": "blurry"}, "options.negativePrompts", None)],
)
def test_bad_option_is_400_listing_allowed_values(api, tenants, db, options, field, allowed):
    r = api.post("/api/enhance", {"prompt": "p", "options": options}, format="json", **auth(tenants.a))
    assert r.status_code == 400
    assert field in r.json()["details"], r.json()
    if allowed:
        assert allowed in r.json()["details"][field][0]


# --- rate limits -----------------------------------------------------------------------

@pytest.fixture
def fake_clock(monkeypatch):  # type: ignore[no-untyped-def]
    """The clock the rate limit reads (time.time in apps.keys.throttling)."""
    import types

    import apps.keys.throttling as throttling

    clock = types.SimpleNamespace(now=1_900_000_000.0)
    monkeypatch.setattr(throttling, "time", types.SimpleNamespace(time=lambda: clock.now))
    return clock


def test_rate_limit_headers_exhaustion_and_window_reset(api, worker, tenants, settings, fake_clock):
    settings.BANATIE_RATE_LIMIT = "3/m"
    seen = []
    for _ in range(3):
        r = enhance(api, tenants.a, HTTP_PREFER="respond-async")
        assert r.status_code == 202
        assert r["X-RateLimit-Limit"] == "3"
        assert r["X-RateLimit-Reset"].endswith("Z")
        seen.append(int(r["X-RateLimit-Remaining"]))
    assert seen == [2, 1, 0]
    over = enhance(api, tenants.a, HTTP_PREFER="respond-async")
    assert over.status_code == 429
    assert over.json()["code"] == "rate_limit_exceeded" and over.json()["error"] == "Rate limit exceeded"
    assert 1 <= int(over["Retry-After"]) <= 60 and over["X-RateLimit-Remaining"] == "0"
    assert Job.objects.count() == 3
    # another key has its own budget
    assert enhance(api, tenants.b, HTTP_PREFER="respond-async").status_code == 202
    fake_clock.now += 61
    again = enhance(api, tenants.a, HTTP_PREFER="respond-async")
    assert again.status_code == 202 and again["X-RateLimit-Remaining"] == "2"


def test_a_budget_counted_before_an_upgrade_carries_over(api, worker, tenants, settings, fake_clock):
    # The counter django-ratelimit 4.1 (the counter before this code) kept for this key id,
    # 100/h, at the fake clock's instant: its name and window end, printed from it. A deploy
    # in mid-window must keep the budget already used, and the window's end.
    import uuid

    from django.core.cache import caches

    from apps.keys.models import ApiKey

    settings.BANATIE_RATE_LIMIT = "100/h"
    ApiKey.objects.filter(pk=tenants.a_key.pk).update(id=uuid.UUID("6ef6a2ad-a1f7-4223-9ff6-179f9a746866"))
    caches["default"].set("rl:e02ba468ccd78ab4fc190d32b3cf71c51da54243622ce7ca52c218b98a751318", 99, 3605)
    last = enhance(api, tenants.a, HTTP_PREFER="respond-async")
    assert last.status_code == 202 and last["X-RateLimit-Remaining"] == "0"
    over = enhance(api, tenants.a, HTTP_PREFER="respond-async")
    assert over.status_code == 429 and over["Retry-After"] == "1923"


def test_rejected_keys_do_not_consume_budget(api, worker, tenants, settings):
    settings.BANATIE_RATE_LIMIT = "1/h"
    bad = tenants.a[:-3] + "zzz"
    for _ in range(3):
        assert enhance(api, bad).status_code == 401
    r = enhance(api, tenants.a, HTTP_PREFER="respond-async")
    assert r.status_code == 202 and r["X-RateLimit-Remaining"] == "0"


def test_me_reports_budget_used(api, worker, tenants, settings):
    settings.BANATIE_RATE_LIMIT = "5/h"
    enhance(api, tenants.a, HTTP_PREFER="respond-async")
    rate = api.get("/api/me", **auth(tenants.a)).json()["rateLimit"]
    assert rate["limit"] == 5 and rate["remaining"] == 4 and rate["used"] == 1


def test_unreachable_counter_store_is_503_not_500(api, tenants, settings, db):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    started = time.monotonic()
    r = enhance(api, tenants.a)
    assert r.status_code == 503 and r.json()["code"] == "rate_limiter_unavailable"
    assert r["Retry-After"] and time.monotonic() - started < 5
    assert Job.objects.count() == 0


# --- many waiting clients --------------------------------------------------------------

@pytest.mark.slow
def test_forty_concurrent_sync_requests_wait_together(stack_factory, tenants, emulator):
    # Against the real web server (gunicorn gevent, as the Procfile runs it), not a test server.
    stack = stack_factory(WORKER_CONCURRENCY="48")
    emulator.latency = 1.0
    url = f"{stack.url}/api/enhance"

    def one(i: int) -> int:
        r = requests.post(url, json={"prompt": f"prompt number {i}"}, headers={"X-API-Key": tenants.a}, timeout=30)
        return r.status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=40) as pool:
        codes = list(pool.map(one, range(40)))
    elapsed = time.monotonic() - started
    assert codes == [200] * 40
    assert elapsed < 8, f"40 requests with 1 s upstream took {elapsed:.1f}s"
    assert len(emulator.requests) == 40


def test_an_upstream_outage_of_a_few_seconds_is_ridden_out_inside_the_job(api, worker, tenants, gemini, settings):
    # Real (scaled-down) backoff, default attempts: 0.25, 0.5, 1, 1, 1 ... s covers ~6 s.
    import threading

    settings.UPSTREAM_RETRY_BASE_SECONDS = 0.25
    settings.UPSTREAM_RETRY_MAX_SECONDS = 1.0
    gemini.fail_all(Reply.error(503))
    threading.Timer(2.5, gemini.clear_fail_all).start()  # a 2.5-second 503 blip
    r = enhance(api, tenants.a)
    assert r.status_code == 200, r.json()
    assert 3 <= len(gemini.requests) <= 8


def test_upstream_retries_stop_at_the_jobs_deadline(api, worker, tenants, gemini, settings):
    settings.UPSTREAM_MAX_ATTEMPTS = 30
    settings.UPSTREAM_RETRY_BASE_SECONDS = 0.5
    settings.UPSTREAM_RETRY_MAX_SECONDS = 1.0
    settings.JOB_SOFT_TIME_LIMIT = 3
    gemini.fail_all(Reply.error(503))
    started = time.monotonic()
    r = enhance(api, tenants.a)
    assert r.status_code == 503 and r.json()["code"] == "upstream_unavailable"
    assert time.monotonic() - started < 6 and len(gemini.requests) < 30
