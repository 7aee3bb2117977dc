"""Usage and cost per job (from the emulator's usage metadata), GET /api/usage (grouping and
scoping over three tenants), project quotas (daily images, monthly budget, 50 concurrent
requests against a limit of 10), at the HTTP level."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured

from apps.usage.models import ProjectQuota, UsageDaily
from apps.usage.services import utc_today
from banatie.env import env_prices
from tests.conftest import auth, poll_job
from tests.gemini_emulator import Reply

ROOT = Path(__file__).resolve().parent.parent
T2I = {"prompt": "A lighthouse in a storm", "filename": "lighthouse", "autoEnhance": False}
ASYNC = {"HTTP_PREFER": "respond-async"}


def _metered(input_tokens: int, output_tokens: int, image_tokens: int | None = None) -> Reply:
    """The emulator's usual answer, with the usage metadata we choose."""
    def build(emu, rec):  # type: ignore[no-untyped-def]
        body = emu.default_body(rec)
        body["usageMetadata"] = {"promptTokenCount": input_tokens, "candidatesTokenCount": output_tokens,
                                 "totalTokenCount": input_tokens + output_tokens + 7}
        if image_tokens is not None:
            body["usageMetadata"]["candidatesTokensDetails"] = [
                {"modality": "IMAGE", "tokenCount": image_tokens},
                {"modality": "TEXT", "tokenCount": output_tokens - image_tokens}]
        return body
    return Reply.custom(build)


IMAGE_USAGE = {"model": "gemini-2.5-flash-image", "images": 1, "inputTokens": 1000, "outputTokens": 2000,
               "imageOutputTokens": 1800, "totalTokens": 3007,
               "costUsd": round(1000 * 0.30 / 1e6 + 2000 * 30 / 1e6, 6)}  # 0.0603


def test_a_jobs_usage_is_on_the_sync_answer_the_job_and_the_list(api, worker, gemini, tenants):
    gemini.enqueue(_metered(1000, 2000, image_tokens=1800))
    r = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a))
    assert r.status_code == 200, r.content
    assert r.json()["data"]["usage"] == IMAGE_USAGE
    job_id = r.json()["data"]["jobId"]
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()["usage"] == IMAGE_USAGE
    listed = api.get("/api/jobs", **auth(tenants.a)).json()["jobs"]
    assert [job["usage"] for job in listed if job["jobId"] == job_id] == [IMAGE_USAGE]


def test_image_output_tokens_are_all_output_tokens_of_an_image_call_without_details(api, worker, gemini, tenants):
    gemini.enqueue(_metered(10, 1290))
    usage = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a)).json()["data"]["usage"]
    assert (usage["outputTokens"], usage["imageOutputTokens"]) == (1290, 1290)


def test_auto_enhance_adds_the_enhancement_calls_usage_priced_as_the_text_model(api, worker, gemini, tenants):
    gemini.enqueue(_metered(100, 50), _metered(1000, 2000, image_tokens=1800))
    r = api.post("/api/text-to-image", {**T2I, "autoEnhance": True}, format="json", **auth(tenants.a))
    assert r.status_code == 200, r.content
    assert [rec["model"] for rec in gemini.requests] == ["gemini-2.5-flash", "gemini-2.5-flash-image"]
    text_cost = 100 * 0.30 / 1e6 + 50 * 2.50 / 1e6
    assert r.json()["data"]["usage"] == {
        **IMAGE_USAGE, "inputTokens": 1100, "outputTokens": 2050, "totalTokens": 3007 + 157,
        "costUsd": round(IMAGE_USAGE["costUsd"] + text_cost, 6)}


def test_enhance_answers_its_usage_in_metadata(api, worker, gemini, tenants):
    gemini.enqueue(_metered(120, 80))
    r = api.post("/api/enhance", {"prompt": "a cat on a roof"}, format="json", **auth(tenants.a))
    assert r.status_code == 200, r.content
    assert r.json()["metadata"]["usage"] == {
        "model": "gemini-2.5-flash", "images": 0, "inputTokens": 120, "outputTokens": 80, "imageOutputTokens": 0,
        "totalTokens": 207, "costUsd": round(120 * 0.30 / 1e6 + 80 * 2.50 / 1e6, 6)}


def test_the_offline_provider_reports_zero_tokens_and_no_cost(api, worker, tenants, settings):
    settings.GEMINI_API_KEY = ""
    usage = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a)).json()["data"]["usage"]
    assert usage["images"] == 1 and usage["costUsd"] == 0
    assert (usage["inputTokens"], usage["outputTokens"], usage["imageOutputTokens"], usage["totalTokens"]) == (0,) * 4


def test_a_failed_job_keeps_the_tokens_its_calls_used_and_no_images(api, worker, gemini, tenants):
    def blocked(emu, rec):  # type: ignore[no-untyped-def]
        body = Reply.blocked("IMAGE_SAFETY").payload(emu, rec)
        body["usageMetadata"] = {"promptTokenCount": 40, "candidatesTokenCount": 0, "totalTokenCount": 40}
        return body
    gemini.enqueue(Reply.custom(blocked))
    r = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a))
    assert r.status_code == 422 and r.json()["code"] == "content_blocked"
    job = api.get(f"/api/jobs/{r.json()['jobId']}", **auth(tenants.a)).json()
    assert job["status"] == "failed"
    assert job["usage"] == {"model": "gemini-2.5-flash-image", "images": 0, "inputTokens": 40, "outputTokens": 0,
                            "imageOutputTokens": 0, "totalTokens": 40, "costUsd": round(40 * 0.30 / 1e6, 6)}


def test_a_model_without_a_price_has_a_null_cost(api, worker, gemini, tenants, settings):
    settings.GEMINI_PRICES = {}
    gemini.enqueue(_metered(1000, 2000))
    usage = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a)).json()["data"]["usage"]
    assert usage["costUsd"] is None and usage["inputTokens"] == 1000


def test_a_per_image_price_replaces_the_output_tokens_price(api, worker, gemini, tenants, settings):
    settings.GEMINI_PRICES = {"gemini-2.5-flash-image": {"input": 1.0, "output": 30.0, "image": 0.04}}
    gemini.enqueue(_metered(1000, 2000))
    usage = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a)).json()["data"]["usage"]
    assert usage["costUsd"] == round(1000 * 1.0 / 1e6 + 0.04, 6)


def test_gemini_prices_are_read_merged_over_the_defaults_and_bad_ones_stop_start_up(monkeypatch):
    defaults = {"gemini-2.5-flash-image": {"input": 0.30, "output": 30.0}}
    monkeypatch.setenv("GEMINI_PRICES", '{"my-model": {"input": 1, "output": 2, "image": 0.1}}')
    assert env_prices("GEMINI_PRICES", defaults) == {**defaults, "my-model": {"input": 1.0, "output": 2.0, "image": 0.1}}
    for bad in ("not json", '{"m": {"input": 1}}', '{"m": {"input": -1, "output": 2}}', '{"m": {"input": 1, '
                '"output": 2, "per": 3}}', '["m"]'):
        monkeypatch.setenv("GEMINI_PRICES", bad)
        with pytest.raises(ImproperlyConfigured, match="GEMINI_PRICES"):
            env_prices("GEMINI_PRICES", defaults)


def test_start_up_warns_about_a_configured_model_without_a_price(tmp_path):
    env = {**os.environ, "SECRET_KEY": "x", "GEMINI_IMAGE_MODEL": "gemini-9-unpriced-image",
           "BANATIE_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    run = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "GEMINI_PRICES has no price for gemini-9-unpriced-image" in run.stderr


# --- GET /api/usage ----------------------------------------------------------------------

def _run_jobs(api, gemini, key: str, count: int, *, tokens: tuple[int, int] = (1000, 2000)) -> None:  # type: ignore[no-untyped-def]
    for _ in range(count):
        gemini.enqueue(_metered(*tokens))
        assert api.post("/api/text-to-image", T2I, format="json", **auth(key)).status_code == 200


def test_usage_sums_each_projects_jobs_and_groups_them(api, worker, gemini, tenants):
    _run_jobs(api, gemini, tenants.a, 2)
    _run_jobs(api, gemini, tenants.b, 1, tokens=(10, 20))
    _run_jobs(api, gemini, tenants.master, 1)
    gemini.enqueue(Reply.blocked())
    assert api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a)).status_code == 422
    body = api.get("/api/usage", **auth(tenants.a)).json()
    assert body["success"] is True and body["projectId"] == "project-a" and body["groupBy"] == "day"
    cost = round(2 * IMAGE_USAGE["costUsd"] + 5 * 0.30 / 1e6, 6)  # the blocked call: the emulator's 5 prompt tokens
    assert body["totals"] == {"jobs": 3, "succeeded": 2, "failed": 1, "canceled": 0, "images": 2,
                              "inputTokens": 2005, "outputTokens": 4000, "costUsd": cost, "unpricedJobs": 0}
    today = datetime.now(timezone.utc).date().isoformat()
    assert body["groups"] == [{"group": today, **body["totals"]}]
    assert body["from"] == today[:8] + "01" and body["to"][:8] == today[:8]
    by_key = api.get("/api/usage?groupBy=key", **auth(tenants.a)).json()["groups"]
    assert [(g["group"], g["jobs"]) for g in by_key] == [(str(tenants.a_key.id), 3)]
    by_model = api.get("/api/usage?groupBy=model", **auth(tenants.b)).json()
    assert [(g["group"], g["images"], g["inputTokens"]) for g in by_model["groups"]] == [
        ("gemini-2.5-flash-image", 1, 10)]
    everything = api.get("/api/usage?groupBy=project", **auth(tenants.master)).json()
    assert everything["projectId"] is None
    assert {g["group"]: g["jobs"] for g in everything["groups"]} == {"_master": 1, "project-a": 3, "project-b": 1}
    one = api.get("/api/usage?projectId=project-b", **auth(tenants.master)).json()
    assert one["projectId"] == "project-b" and one["totals"]["jobs"] == 1


def test_usage_is_scoped_and_checks_its_parameters(api, db, tenants):
    other = api.get("/api/usage?projectId=project-b", **auth(tenants.a))
    assert other.status_code == 403 and other.json()["code"] == "master_key_required"
    assert api.get("/api/usage?projectId=project-a", **auth(tenants.a)).status_code == 200
    grouped = api.get("/api/usage?groupBy=project", **auth(tenants.a))
    assert grouped.status_code == 403 and grouped.json()["code"] == "master_key_required"
    for query, field in [("from=2026-13-01", "from"), ("to=yesterday", "to"), ("groupBy=week", "groupBy"),
                         ("from=2026-05-02&to=2026-05-01", "from"), ("color=red", "color")]:
        r = api.get(f"/api/usage?{query}", **auth(tenants.a))
        assert r.status_code == 400 and field in r.json()["details"], (query, r.json())
    assert api.get("/api/usage").status_code == 401
    window = api.get("/api/usage?from=2026-01-01&to=2026-01-31", **auth(tenants.a)).json()
    assert (window["from"], window["to"], window["groups"]) == ("2026-01-01", "2026-01-31", [])


# --- quotas ------------------------------------------------------------------------------

def test_quotas_are_set_by_a_master_key_and_listed_with_this_months_usage(api, worker, gemini, tenants):
    body = {"dailyImageLimit": 5, "monthlyBudgetUsd": 12.5}
    assert api.put("/api/admin/projects/project-a", body, format="json", **auth(tenants.a)).status_code == 403
    missing = api.put("/api/admin/projects/project-a", {"dailyImageLimit": 5}, format="json", **auth(tenants.master))
    assert missing.status_code == 400 and "monthlyBudgetUsd" in missing.json()["details"]
    negative = api.put("/api/admin/projects/project-a", {**body, "dailyImageLimit": -1}, format="json",
                       **auth(tenants.master))
    assert negative.status_code == 400 and "dailyImageLimit" in negative.json()["details"]
    for bad in ("no%20spaces", "project-z%0A"):  # Python's `$` alone would let the newline through
        bad_id = api.put(f"/api/admin/projects/{bad}", body, format="json", **auth(tenants.master))
        assert bad_id.status_code == 400 and bad_id.json()["field"] == "projectId", bad_id.json()
    _run_jobs(api, gemini, tenants.a, 1)
    r = api.put("/api/admin/projects/project-a", body, format="json", **auth(tenants.master))
    assert r.status_code == 200, r.content
    project = r.json()["project"]
    assert (project["projectId"], project["dailyImageLimit"], project["monthlyBudgetUsd"], project["imagesToday"]) == \
        ("project-a", 5, 12.5, 1)
    assert project["month"]["costUsd"] == IMAGE_USAGE["costUsd"]
    listed = api.get("/api/admin/projects", **auth(tenants.master)).json()["projects"]
    assert [p["projectId"] for p in listed] == ["project-a", "project-b"]
    assert listed[1]["dailyImageLimit"] is None and listed[1]["month"]["jobs"] == 0
    assert api.get("/api/admin/projects", **auth(tenants.b)).status_code == 403


def test_the_projects_list_costs_the_same_few_queries_however_many_projects(api, tenants,
                                                                           django_assert_max_num_queries):
    today = utc_today()
    for n, project_id in enumerate(("project-a", "project-c", "project-d", "project-e"), start=1):
        ProjectQuota.objects.create(project_id=project_id, daily_image_limit=100, monthly_budget_usd=None)
        UsageDaily.objects.create(day=today, project_id=project_id, key_id=uuid.uuid4(), jobs=n, succeeded=n,
                                  images=n, cost_usd=Decimal("0.5") * n)
    UsageDaily.objects.create(day=today.replace(day=1) - timedelta(days=1), project_id="project-a",
                              key_id=uuid.uuid4(), jobs=50, images=50)  # last month: not in this month's figures
    assert api.post("/api/text-to-image", T2I, format="json", **ASYNC, **auth(tenants.a)).status_code == 202
    assert api.get("/api/me", **auth(tenants.master)).status_code == 200  # the master key is in the key cache
    # The quotas, the projects with keys, this month's sums per project, today's jobs in flight.
    with django_assert_max_num_queries(4):
        projects = api.get("/api/admin/projects", **auth(tenants.master)).json()["projects"]
    assert [(p["projectId"], p["imagesToday"], p["month"]["jobs"], p["month"]["costUsd"]) for p in projects] == [
        ("project-a", 1 + 1, 1, 0.5), ("project-b", 0, 0, 0.0), ("project-c", 2, 2, 1.0), ("project-d", 3, 3, 1.5),
        ("project-e", 4, 4, 2.0)]


def test_a_daily_image_limit_refuses_the_job_that_would_pass_it(api, worker, gemini, tenants):
    api.put("/api/admin/projects/project-a", {"dailyImageLimit": 2, "monthlyBudgetUsd": None}, format="json",
            **auth(tenants.master))
    _run_jobs(api, gemini, tenants.a, 2)
    over = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a))
    assert over.status_code == 429 and over.json()["code"] == "quota_exceeded"
    assert over.json()["details"] == {"quota": "dailyImageLimit", "limit": 2, "usage": 2, "requested": 1}
    assert 1 <= int(over["Retry-After"]) <= 86400
    assert len(gemini.requests) == 2  # the refused job never ran
    assert api.get("/api/jobs", **auth(tenants.a)).json()["jobs"].__len__() == 2  # nor was it kept
    # Another project is not affected; enhancement jobs make no image.
    _run_jobs(api, gemini, tenants.b, 1)
    assert api.post("/api/enhance", {"prompt": "a cat"}, format="json", **auth(tenants.a)).status_code == 200


def test_a_monthly_budget_refuses_jobs_once_it_is_spent(api, worker, gemini, tenants):
    api.put("/api/admin/projects/project-a", {"dailyImageLimit": None, "monthlyBudgetUsd": 0.05}, format="json",
            **auth(tenants.master))
    _run_jobs(api, gemini, tenants.a, 1)  # $0.0603: over the budget once it ended
    over = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a))
    assert over.status_code == 429 and over.json()["code"] == "quota_exceeded"
    assert over.json()["details"] == {"quota": "monthlyBudgetUsd", "limit": 0.05, "usage": IMAGE_USAGE["costUsd"]}
    assert int(over["Retry-After"]) <= 31 * 86400


def test_fifty_concurrent_requests_against_a_limit_of_ten_create_ten_jobs(stack_factory, emulator, tenants, api):
    api.put("/api/admin/projects/project-a", {"dailyImageLimit": 10, "monthlyBudgetUsd": None}, format="json",
            **auth(tenants.master))
    stack = stack_factory(WORKER_CONCURRENCY="20")  # the Procfile's gunicorn and worker
    emulator.latency = 1.0  # every accepted job is still in flight when the last request arrives
    statuses: list[int | str] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def post() -> None:
        start.wait(10)
        try:
            r = requests.post(f"{stack.url}/api/text-to-image", json=T2I, timeout=30,
                              headers={"X-API-Key": tenants.a, "Prefer": "respond-async"})
            outcome: int | str = r.status_code if r.status_code in (202, 429) else f"{r.status_code} {r.text[:300]}"
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        with lock:
            statuses.append(outcome)

    threads = [threading.Thread(target=post) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses, key=str) == [202] * 10 + [429] * 40, statuses
    jobs = api.get("/api/jobs?limit=100", **auth(tenants.a)).json()["jobs"]
    assert len(jobs) == 10
    for job in jobs:
        assert poll_job(api, tenants.a, job["jobId"], timeout=30)["status"] == "succeeded"
    assert len(emulator.requests) == 10


def test_a_webhook_delivery_carries_the_jobs_usage(api, worker, gemini, tenants, settings, receiver):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_SCHEDULE = (0,)
    r = api.post("/api/webhooks", {"url": receiver.url, "events": ["job.succeeded"]}, format="json",
                 **auth(tenants.a))
    assert r.status_code == 201, r.content
    gemini.enqueue(_metered(1000, 2000, image_tokens=1800))
    assert api.post("/api/text-to-image", T2I, format="json", **auth(tenants.a)).status_code == 200
    (delivery,) = receiver.wait_for(1)
    assert json.loads(delivery.body)["data"]["usage"] == IMAGE_USAGE


def test_quotas_are_edited_in_the_django_admin_and_the_figures_only_read(client, admin_user, api, worker, gemini,
                                                                       tenants):
    from apps.usage.models import ProjectQuota

    client.force_login(admin_user)
    r = client.post("/admin/usage/projectquota/add/", {"project_id": "project-b", "daily_image_limit": "1",
                                                       "monthly_budget_usd": ""})
    assert r.status_code == 302, r.content[:500]
    assert ProjectQuota.objects.get(project_id="project-b").daily_image_limit == 1
    _run_jobs(api, gemini, tenants.b, 1)
    over = api.post("/api/text-to-image", T2I, format="json", **auth(tenants.b))
    assert over.status_code == 429 and over.json()["details"]["quota"] == "dailyImageLimit"
    figures = client.get("/admin/usage/usagedaily/")
    assert figures.status_code == 200 and b"project-b" in figures.content
    assert client.get("/admin/usage/usagedaily/add/").status_code == 403
