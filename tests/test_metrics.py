"""Observability (docs/operations.md): /metrics summed over a live stack's processes, who may
read it, and JSON logs that follow a request into its job."""
from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GEMINI_TEST_KEY, wait_for
from tests.gemini_emulator import IMAGE_OUTPUT_TOKENS, Reply

IMAGE_MODEL = "gemini-2.5-flash-image"
Samples = dict[tuple[str, frozenset], float]


def scrape(url: str, headers: dict[str, str] | None = None) -> tuple[str, Samples]:
    req = urllib.request.Request(f"{url}/metrics", headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - 127.0.0.1
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def t2i(url: str, key: str, **headers: str) -> requests.Response:
    return requests.post(f"{url}/api/text-to-image", json={"prompt": "a lighthouse at dusk", "filename": "light", "autoEnhance": False},
                         headers={"X-API-Key": key, **headers}, timeout=30)


# --- the counters of a known sequence, summed over two web processes and a worker -------------

def test_metrics_count_a_known_sequence_exactly_across_web_and_worker_processes(stack_factory, tenants, emulator):
    stack = stack_factory(WEB_CONCURRENCY="2", BANATIE_RATE_LIMIT="6/h", UPSTREAM_MAX_ATTEMPTS="2",
                          UPSTREAM_RETRY_BASE_SECONDS="0.01", UPSTREAM_RETRY_MAX_SECONDS="0.05")
    url, key = stack.url, tenants.a
    assert t2i(url, key).status_code == 200
    assert t2i(url, key).status_code == 200
    emulator.enqueue(Reply.blocked())
    blocked = t2i(url, key)
    assert blocked.status_code == 422 and blocked.json()["code"] == "content_blocked"
    emulator.enqueue(Reply.error(500), Reply.error(500))  # both allowed calls fail
    failed = t2i(url, key)
    assert failed.status_code == 503 and failed.json()["code"] == "upstream_unavailable"
    emulator.enqueue(Reply.error(429), Reply.default())  # retried within the job, then fine
    assert t2i(url, key).status_code == 200
    calls = len(emulator.requests)
    emulator.enqueue(Reply.delay(20))
    slow = t2i(url, key, Prefer="wait=1")  # the wait runs out: 202
    assert slow.status_code == 202
    job_id = slow.json()["jobId"]
    wait_for(lambda: len(emulator.requests) > calls, 10, "the slow job's Gemini call")
    cancel = requests.post(f"{url}/api/jobs/{job_id}/cancel", headers={"X-API-Key": key}, timeout=10)
    assert cancel.status_code == 200 and cancel.json()["status"] == "canceled"
    limited = t2i(url, key)  # the 7th job request of a 6/h budget
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limit_exceeded"

    # The canceled call's greenlet is killed a moment after the cancel: its outcome is "other".
    wait_for(lambda: value(scrape(url)[1], "banatie_upstream_requests_total", model=IMAGE_MODEL,
                           outcome="other") == 1, 15, "the abandoned call to be counted")
    text, m = scrape(url)
    assert value(m, "banatie_jobs_created_total", kind="generation") == 6
    finished = {(dict(labels)["status"], dict(labels)["error_code"]): v for (name, labels), v in m.items()
                if name == "banatie_jobs_finished_total"}
    assert finished == {("succeeded", "none"): 3, ("failed", "content_blocked"): 1,
                        ("failed", "upstream_unavailable"): 1, ("canceled", "job_canceled"): 1}
    upstream = {dict(labels)["outcome"]: v for (name, labels), v in m.items()
                if name == "banatie_upstream_requests_total"}
    assert upstream == {"ok": 3, "blocked": 1, "server_error": 2, "rate_limited": 1, "other": 1}
    assert value(m, "banatie_rate_limited_total") == 1
    assert value(m, "banatie_quota_rejections_total") == 0  # exists before anything counts it
    waits = {dict(labels)["outcome"]: v for (name, labels), v in m.items()
             if name == "banatie_sync_wait_outcomes_total"}
    assert waits == {"answered": 5, "timed_out_202": 1}
    # Per image the emulator reports 1290 image tokens (Gemini's figure for a 1K image) plus
    # one per word of its caption ("Here is your image: a lighthouse at dusk").
    assert value(m, "banatie_upstream_tokens_total", model=IMAGE_MODEL, direction="output") == 3 * (
        IMAGE_OUTPUT_TOKENS + len("Here is your image: a lighthouse at dusk".split()))
    assert value(m, "banatie_upstream_tokens_total", model=IMAGE_MODEL, direction="input") > 0
    # Histograms: every job claimed once was queued once; five ran to a success or failure.
    assert value(m, "banatie_job_queue_seconds_count", kind="generation") == 6
    assert value(m, "banatie_job_run_seconds_count", kind="generation") == 5
    assert value(m, "banatie_job_run_seconds_bucket", kind="generation", le="300.0") == 5
    assert value(m, "banatie_upstream_seconds_count", model=IMAGE_MODEL) == 8
    assert value(m, "banatie_jobs_in_queue") == 0 and value(m, "banatie_jobs_running") == 0
    # django-prometheus' families: HTTP by view, database queries.
    assert value(m, "django_http_responses_total_by_status_view_method_total", status="429", view="text-to-image",
                 method="POST") == 1
    assert any(name == "django_db_execute_total" and v > 0 for (name, _), v in m.items())
    # One scrape holds the web processes' counters (jobs created) and the worker's (upstream
    # calls): they were summed from the shared directory, one file set per process.
    pids = {p.stem.rsplit("_", 1)[-1] for p in (stack.workdir / "prometheus").glob("counter_*.db")}
    assert len(pids) >= 2

    # No label, and no log line of any process, holds a Banatie key or the Gemini key.
    assert "bnt_" not in text and GEMINI_TEST_KEY not in text
    for log in stack.workdir.glob("*.log"):
        content = log.read_text(errors="replace")
        assert "bnt_" not in content and GEMINI_TEST_KEY not in content, log.name


# --- who may read /metrics --------------------------------------------------------------------

def test_metrics_answer_a_loopback_caller_without_a_token(api, db):
    response = api.get("/metrics")  # Django's test client comes from 127.0.0.1
    assert response.status_code == 200
    assert b"banatie_quota_rejections_total" in response.content and b"banatie_jobs_in_queue" in response.content


def test_metrics_treat_an_ipv4_mapped_loopback_address_as_loopback(api, db, settings):
    settings.METRICS_TOKEN = ""
    assert api.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="::ffff:203.0.113.7").status_code == 404


def test_metrics_are_a_404_for_a_remote_caller_when_no_token_is_set(api, db, settings):
    settings.METRICS_TOKEN = ""
    response = api.get("/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "route_not_found" and body["message"] == "No route matches GET /metrics."
    assert b"banatie_" not in response.content


def test_metrics_need_the_token_from_a_remote_caller_when_it_is_set(api, db, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert api.get("/metrics", **remote).status_code == 404
    assert api.get("/metrics", **remote, HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    response = api.get("/metrics", **remote, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert response.status_code == 200 and b"banatie_jobs_created_total" in response.content


# --- JSON logs follow a request into its job ---------------------------------------------------

def json_lines(log: Path) -> list[dict]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{log.name}: not a JSON line: {line[:200]!r}")
        assert isinstance(parsed[-1], dict), line
    return parsed


def test_json_logs_carry_the_request_id_from_the_web_line_into_the_workers_lines(stack_factory, tenants, emulator):
    stack = stack_factory(LOG_FORMAT="json", LOG_LEVEL="info")
    response = t2i(stack.url, tenants.a, **{"X-Request-ID": "trace-json-1"})
    assert response.status_code == 200
    job_id = response.json()["data"]["jobId"]
    requests.get(f"{stack.url}/api/jobs/nope", headers={"X-API-Key": tenants.a}, timeout=10)
    for role in ("web", "worker", "beat"):  # a graceful stop: every process logs its end and exits
        stack.signal(role, signal.SIGTERM)
        assert stack.wait_exit(role, 60) == 0

    web = json_lines(stack.workdir / "web.log")
    worker = json_lines(stack.workdir / "worker.log")
    for log in stack.workdir.glob("*.log"):
        json_lines(log)  # beat's too: every line of the run is one JSON object
    for line in web + worker:
        assert {"timestamp", "level", "logger", "message", "requestId", "jobId", "keyPrefix", "projectId"} <= set(line)
    prefix = tenants.a_key.prefix
    ours = [line for line in web if line["requestId"] == "trace-json-1"]
    access = [line for line in ours if line["logger"] == "banatie.access"]
    assert len(access) == 1
    assert access[0]["method"] == "POST" and access[0]["route"] == "/api/text-to-image"
    assert access[0]["status"] == 200 and access[0]["durationMs"] >= 0
    assert access[0]["jobId"] == job_id and access[0]["keyPrefix"] == prefix
    assert access[0]["projectId"] == "project-a"
    in_worker = [line for line in worker if line["requestId"] == "trace-json-1"]
    assert in_worker and all(line["jobId"] == job_id and line["keyPrefix"] == prefix for line in in_worker)
    assert any(line["message"].startswith(f"job {job_id} succeeded") for line in in_worker)
    # The route's pattern, never the raw path with its id.
    unknown = [line for line in web if line["logger"] == "banatie.access" and line["status"] == 404]
    assert unknown and unknown[0]["route"] == "/api/jobs/{jobId}" and "nope" not in unknown[0]["message"]
    everything = "".join(log.read_text() for log in stack.workdir.glob("*.log"))
    assert "bnt_" not in everything and GEMINI_TEST_KEY not in everything


# --- webhook outcomes, counted where the outbox records them -----------------------------------

def test_metrics_need_the_token_when_a_proxy_on_this_host_forwarded_the_request(api, db, settings):
    # nginx on the same host: the peer is loopback, the caller is anyone on the internet.
    settings.METRICS_TOKEN = ""
    for header in ({"HTTP_X_FORWARDED_FOR": "203.0.113.7"}, {"HTTP_FORWARDED": "for=203.0.113.7"}):
        assert api.get("/metrics", **header).status_code == 404
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    proxied = api.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert proxied.status_code == 200 and b"banatie_jobs_created_total" in proxied.content


def test_other_methods_on_metrics_get_the_unknown_paths_404(api, db):
    unknown = api.post("/no-such-route")
    for method in (api.post, api.put, api.delete):
        response = method("/metrics")  # not CSRF's 403, which would tell a scan the route exists
        assert response.status_code == unknown.status_code == 404
        assert response.json()["code"] == unknown.json()["code"] == "route_not_found"
        assert response.json()["message"] == f"No route matches {response.request['REQUEST_METHOD']} /metrics."


def test_a_v1_sync_wait_is_counted_like_the_apis(api, worker, tenants, settings):
    from prometheus_client import REGISTRY

    settings.GEMINI_API_KEY = ""  # the offline provider

    def answered() -> float:
        return REGISTRY.get_sample_value("banatie_sync_wait_outcomes_total", {"outcome": "answered"}) or 0.0

    before = answered()
    response = api.post("/v1/images/generations", {"prompt": "a lighthouse at dusk", "n": 1}, format="json",
                        HTTP_AUTHORIZATION=f"Bearer {tenants.a}")
    assert response.status_code == 200, response.content
    assert answered() == before + 1


def webhook_outcomes() -> dict[str, float]:
    from prometheus_client import REGISTRY  # the test process's own: its worker runs in it

    return {s.labels["outcome"]: s.value for family in REGISTRY.collect() if family.name == "banatie_webhook_deliveries"
            for s in family.samples if s.name.endswith("_total")}


def test_webhook_deliveries_are_counted_by_outcome(api, worker, tenants, receiver, settings):
    from tests.test_webhook_deliveries import generate, register, settled
    from tests.webhook_receiver import Reply as Answer

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_SCHEDULE = (0, 0.1)  # two attempts in all
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    settings.GEMINI_API_KEY = ""  # the offline provider
    before = webhook_outcomes()
    receiver.script(Answer(200), Answer(500), Answer(500), Answer(410))
    webhook_id, _ = register(api, tenants.a, receiver.url + "/hook", events=["job.succeeded"])
    generate(api, tenants.a)  # delivered at once
    settled(api, tenants.a, webhook_id, 1)
    generate(api, tenants.a)  # 500, retried once, 500 again: failed
    settled(api, tenants.a, webhook_id, 2)
    generate(api, tenants.a)  # 410: the endpoint is disabled
    settled(api, tenants.a, webhook_id, 3)
    after = webhook_outcomes()
    grown = {outcome: after.get(outcome, 0) - before.get(outcome, 0) for outcome in after}
    assert {k: v for k, v in grown.items() if v} == {"delivered": 1, "retrying": 1, "failed": 1, "gone": 1}


# --- quota refusals -------------------------------------------------------------------------------

def counter_value(name: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name) or 0.0


def test_quota_refusals_are_counted_and_rate_limits_are_not_mixed_in(api, tenants, db):
    body = {"prompt": "a lighthouse at dusk", "filename": "light", "autoEnhance": False}
    api.put("/api/admin/projects/project-a", {"dailyImageLimit": 0, "monthlyBudgetUsd": None}, format="json",
            HTTP_X_API_KEY=tenants.master)
    quota, limited = counter_value("banatie_quota_rejections_total"), counter_value("banatie_rate_limited_total")
    over = api.post("/api/text-to-image", body, format="json", HTTP_X_API_KEY=tenants.a)
    assert over.status_code == 429 and over.json()["code"] == "quota_exceeded"
    assert counter_value("banatie_quota_rejections_total") == quota + 1
    assert counter_value("banatie_rate_limited_total") == limited


def test_a_call_the_deadline_skips_is_not_counted_as_an_upstream_call(gemini, db):
    import time

    from prometheus_client import REGISTRY

    from apps.jobs.deadline import job_deadline
    from apps.jobs.errors import JobTimedOut
    from workers.providers.gemini import GeminiImageProvider

    def calls() -> float:
        return sum(s.value for family in REGISTRY.collect() if family.name == "banatie_upstream_requests"
                   for s in family.samples if s.name.endswith("_total"))

    before, served = calls(), len(gemini.requests)
    with job_deadline(0.01):
        time.sleep(0.05)
        with pytest.raises(JobTimedOut):
            GeminiImageProvider(model=IMAGE_MODEL).generate(prompt="a fox", reference_images=[], aspect_ratio="1:1")
    assert calls() == before and len(gemini.requests) == served  # nothing went out, nothing counted
