"""GET /api/jobs: the caller's jobs, newest first, filtered, keyset-paginated with a signed
cursor. Jobs are created through the API with `Prefer: respond-async` and no worker, so they
stay queued; a test that needs other statuses runs, cancels or edits them in its setup, and
asserts only what the API answers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.core import signing
from django.utils import timezone as django_timezone

from apps.jobs.models import Job
from apps.jobs.services import job_run
from tests.conftest import auth

pytestmark = pytest.mark.django_db

T2I = {"prompt": "A lighthouse on a cliff at dusk", "filename": "lighthouse", "autoEnhance": False}
ENHANCE = {"prompt": "A red fox in the snow"}
BASE = datetime(2020, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _generous_budget(settings):  # type: ignore[no-untyped-def]
    settings.BANATIE_RATE_LIMIT = "100000/h"  # the setup creates many jobs; the list itself is never charged
    settings.GEMINI_API_KEY = ""  # the offline provider, for the jobs a test runs


def create(api, key: str, *, kind: str = "generation", **headers: str) -> str:  # type: ignore[no-untyped-def]
    path, body = ("/api/text-to-image", T2I) if kind == "generation" else ("/api/enhance", ENHANCE)
    response = api.post(path, body, format="json", HTTP_PREFER="respond-async", **auth(key), **headers)
    assert response.status_code == 202, response.json()
    return response.json()["jobId"]


def listing(api, key: str, **params: Any):  # type: ignore[no-untyped-def]
    return api.get("/api/jobs", params, **auth(key))


def ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.json()
    return [job["jobId"] for job in response.json()["jobs"]]


def walk(api, key: str, *, between_pages=lambda: None, **params: Any) -> list[str]:  # type: ignore[no-untyped-def]
    """Every page from the first, following nextCursor (bounded)."""
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        body = listing(api, key, **params, **({"cursor": cursor} if cursor else {})).json()
        seen += [job["jobId"] for job in body["jobs"]]
        assert body["hasMore"] == (body["nextCursor"] is not None)
        if not body["hasMore"]:
            return seen
        cursor = body["nextCursor"]
        between_pages()
    raise AssertionError("more than 50 pages")


def created_at(job_id: str, when: datetime) -> None:
    Job.objects.filter(pk=job_id).update(created_at=when)


def newest_first(api, key: str, count: int, **kw: str) -> list[str]:  # type: ignore[no-untyped-def]
    """``count`` jobs a second apart, listed newest first."""
    made = [create(api, key, **kw) for _ in range(count)]
    for n, job_id in enumerate(made):
        created_at(job_id, BASE + timedelta(seconds=n))
    return made[::-1]


# --- scoping ---------------------------------------------------------------------------

def test_jobs_list_shows_each_tenant_only_its_own_jobs(api, tenants):
    a_jobs = newest_first(api, tenants.a, 2)
    b_jobs = newest_first(api, tenants.b, 1)
    master_jobs = newest_first(api, tenants.master, 1)

    assert ids(listing(api, tenants.a)) == a_jobs
    assert ids(listing(api, tenants.b)) == b_jobs
    assert ids(listing(api, tenants.master)) == master_jobs
    assert ids(listing(api, tenants.master, projectId="project-a")) == a_jobs
    assert ids(listing(api, tenants.master, projectId="project-b")) == b_jobs
    assert ids(listing(api, tenants.master, projectId="project-none")) == []
    assert ids(listing(api, tenants.a, projectId="project-a")) == a_jobs  # its own project: no effect


def test_jobs_list_refuses_a_project_key_naming_another_project(api, tenants):
    newest_first(api, tenants.b, 1)
    response = listing(api, tenants.a, projectId="project-b")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "master_key_required"
    assert body["message"].startswith("Only a master key may list another project's jobs")
    assert listing(api, tenants.a, projectId="_master").status_code == 403  # nor the master keys' jobs


def test_jobs_list_needs_a_key_and_only_answers_get(api, tenants):
    response = api.get("/api/jobs")
    assert response.status_code == 401 and response.json()["code"] == "api_key_missing"
    response = api.post("/api/jobs", {}, format="json", **auth(tenants.a))
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD, OPTIONS"


def test_jobs_list_takes_a_trailing_slash(api, tenants):
    job_id = create(api, tenants.a)
    assert ids(api.get("/api/jobs/", **auth(tenants.a))) == [job_id]


# --- what a listed job looks like ------------------------------------------------------

def test_jobs_list_shows_each_job_exactly_as_get_job_does(api, tenants):
    queued, running, succeeded, failed, canceled = (create(api, tenants.a, kind=kind) for kind in (
        "generation", "enhancement", "generation", "enhancement", "generation"))
    now = django_timezone.now()
    Job.objects.filter(pk=running).update(status=Job.Status.RUNNING, started_at=now, attempts=1)
    job_run(job_id=succeeded)
    Job.objects.filter(pk=failed).update(status=Job.Status.FAILED, started_at=now, finished_at=now, attempts=1,
                                         error_code="upstream_invalid_response", error_message="Not JSON.")
    assert api.post(f"/api/jobs/{canceled}/cancel", **auth(tenants.a)).status_code == 200

    listed = listing(api, tenants.a).json()
    assert listed["success"] is True and listed["hasMore"] is False and listed["nextCursor"] is None
    by_status = {job["status"]: job for job in listed["jobs"]}
    assert set(by_status) == {"queued", "running", "succeeded", "failed", "canceled"}
    assert [job["jobId"] for job in listed["jobs"]] == [canceled, failed, succeeded, running, queued]
    for job in listed["jobs"]:
        assert job == api.get(f"/api/jobs/{job['jobId']}", **auth(tenants.a)).json()
    assert by_status["succeeded"]["data"]["url"].startswith("http://testserver/api/images/project-a/")
    assert by_status["failed"]["error"]["code"] == "upstream_invalid_response"
    assert by_status["queued"]["queuePosition"] == 0


def test_jobs_list_shows_a_job_past_its_cancel_after_as_canceled(api, tenants):
    job_id = create(api, tenants.a, HTTP_CANCEL_AFTER="1h")
    Job.objects.filter(pk=job_id).update(cancel_after=django_timezone.now() - timedelta(seconds=1))
    job = listing(api, tenants.a).json()["jobs"][0]
    assert (job["status"], job["cancelReason"], job["error"]["code"]) == ("canceled", "deadline", "deadline_exceeded")
    assert job == api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()


@pytest.fixture
def warm_key(api, tenants) -> str:  # type: ignore[no-untyped-def]
    """Key A after one use: in this process's key cache (as in tests/test_sql_per_job.py)."""
    assert api.get("/api/me", **auth(tenants.a)).status_code == 200
    return tenants.a


def test_a_page_of_finished_jobs_costs_one_statement(api, warm_key, django_assert_max_num_queries):
    made = newest_first(api, warm_key, 5)
    Job.objects.filter(pk__in=made).update(status=Job.Status.FAILED, finished_at=BASE + timedelta(minutes=1),
                                           error_code="upstream_invalid_response")
    with django_assert_max_num_queries(1):  # the page; no query per job (nor for its api_key)
        assert len(ids(listing(api, warm_key, limit=5))) == 5


def test_a_page_of_queued_jobs_adds_one_count_per_job(api, warm_key, django_assert_max_num_queries):
    newest_first(api, warm_key, 3)
    with django_assert_max_num_queries(1 + 3):  # the page, then each job's queuePosition
        assert [job["queuePosition"] for job in listing(api, warm_key).json()["jobs"]] == [2, 1, 0]


# --- filters ---------------------------------------------------------------------------

def test_jobs_list_filters_by_one_or_several_statuses(api, tenants):
    queued, running, failed = newest_first(api, tenants.a, 3)[::-1]
    Job.objects.filter(pk=running).update(status=Job.Status.RUNNING)
    Job.objects.filter(pk=failed).update(status=Job.Status.FAILED, error_code="upstream_invalid_response")

    assert ids(listing(api, tenants.a, status="queued")) == [queued]
    assert ids(listing(api, tenants.a, status="queued,failed")) == [failed, queued]
    assert ids(listing(api, tenants.a, status="running, failed,running")) == [failed, running]
    assert ids(api.get("/api/jobs?status=queued&status=running", **auth(tenants.a))) == [running, queued]
    assert ids(listing(api, tenants.a, status="succeeded,canceled")) == []
    assert ids(listing(api, tenants.a, status="")) == [failed, running, queued]  # empty: not sent


def test_jobs_list_filters_by_kind(api, tenants):
    generation = create(api, tenants.a)
    enhancement = create(api, tenants.a, kind="enhancement")
    assert ids(listing(api, tenants.a, kind="generation")) == [generation]
    assert ids(listing(api, tenants.a, kind="enhancement")) == [enhancement]


def test_jobs_list_filters_by_creation_time_with_exclusive_bounds(api, tenants):
    third, second, first = newest_first(api, tenants.a, 3)  # BASE, BASE + 1 s, BASE + 2 s

    assert ids(listing(api, tenants.a, createdAfter="2020-03-01T12:00:00Z")) == [third, second]
    assert ids(listing(api, tenants.a, createdBefore="2020-03-01T12:00:02Z")) == [second, first]
    assert ids(listing(api, tenants.a, createdAfter="2020-03-01T12:00:00Z",
                       createdBefore="2020-03-01T12:00:02Z")) == [second]
    # A naive instant is UTC; an offset is honoured (the client encodes its + as %2B).
    assert ids(listing(api, tenants.a, createdAfter="2020-03-01T12:00:01")) == [third]
    assert ids(listing(api, tenants.a, createdAfter="2020-03-01T14:00:00.500+02:00")) == [third, second]
    assert ids(listing(api, tenants.a, createdBefore="2020-03-01T12:00:00.000001Z")) == [first]
    # Bounds beyond what a datetime holds in UTC are no bound at all.
    assert ids(listing(api, tenants.a, createdAfter="0001-01-01T00:00:00+05:00")) == [third, second, first]
    assert ids(listing(api, tenants.a, createdBefore="9999-12-31T23:00:00-05:00")) == [third, second, first]


# --- limit and pages -------------------------------------------------------------------

def test_jobs_list_pages_twenty_jobs_by_default_and_takes_1_to_100(api, tenants):
    made = newest_first(api, tenants.a, 21)
    first = listing(api, tenants.a).json()
    assert [job["jobId"] for job in first["jobs"]] == made[:20]
    assert first["hasMore"] is True and first["nextCursor"]
    assert ids(listing(api, tenants.a, limit=1)) == made[:1]
    assert ids(listing(api, tenants.a, limit=100)) == made
    last = listing(api, tenants.a, cursor=first["nextCursor"]).json()
    assert [job["jobId"] for job in last["jobs"]] == made[20:]
    assert last["hasMore"] is False and last["nextCursor"] is None


def test_jobs_list_walks_every_page_once_while_new_jobs_arrive(api, tenants):
    originals = newest_first(api, tenants.a, 7)
    arrived: list[str] = []

    def new_job() -> None:  # created between page fetches, newer than everything listed so far
        arrived.append(create(api, tenants.a))

    assert walk(api, tenants.a, limit=3, between_pages=new_job) == originals
    assert len(arrived) == 2
    assert ids(listing(api, tenants.a, limit=2)) == arrived[::-1]  # a new walk starts with them


def test_jobs_list_pages_jobs_created_in_the_same_instant_by_id(api, tenants):
    made = [create(api, tenants.a) for _ in range(5)]
    Job.objects.filter(pk__in=made).update(created_at=BASE)
    walked = walk(api, tenants.a, limit=2)
    assert len(walked) == 5 and set(walked) == set(made)
    assert walked == sorted(made, reverse=True)  # ties go by id, descending


def test_jobs_list_keeps_its_filters_across_pages(api, tenants):
    made = newest_first(api, tenants.a, 6)
    failed = made[::2]
    Job.objects.filter(pk__in=failed).update(status=Job.Status.FAILED, error_code="upstream_invalid_response")
    assert walk(api, tenants.a, limit=1, status="failed") == failed
    assert walk(api, tenants.a, limit=1, status="queued", createdBefore="2020-03-01T12:00:04Z") == made[3::2]


# --- refused parameters ----------------------------------------------------------------

@pytest.mark.parametrize("query,name,says", [
    ("limit=0", "limit", "from 1 to 100"),
    ("limit=101", "limit", "from 1 to 100"),
    ("limit=x", "limit", "from 1 to 100"),
    ("status=done", "status", "use one or more of: queued, running, succeeded, failed, canceled"),
    ("status=queued,done", "status", "'done' is not allowed"),
    ("kind=video", "kind", "use one of: enhancement, generation"),
    ("createdAfter=yesterday", "createdAfter", "ISO 8601"),
    ("createdBefore=2026-13-01T00:00:00Z", "createdBefore", "ISO 8601"),
    ("createdAfter=2020-03-01T12:00:00+02:00", "createdAfter", "%2B"),  # an unencoded + arrives as a space
    ("frobnicate=1", "frobnicate", "Unknown field 'frobnicate'"),
    ("cursour=abc", "cursour", "Did you mean 'cursor'?"),
    ("limit=1&limit=2", "limit", "Send limit once"),
])
def test_jobs_list_refuses_a_bad_parameter_naming_it(api, tenants, query, name, says):
    response = api.get(f"/api/jobs?{query}", **auth(tenants.a))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_failed"
    assert body["field"] == name and list(body["details"]) == [name]
    assert says in body["message"] and body["message"].startswith(f"{name}: ")


def test_jobs_list_refuses_a_cursor_it_did_not_issue(api, tenants, settings):
    newest_first(api, tenants.a, 2)
    real = listing(api, tenants.a, limit=1).json()["nextCursor"]
    payload, signed = real.split(":", 1)
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    foreign = signing.dumps({"c": BASE.isoformat(), "i": "00000000-0000-4000-8000-000000000000"},
                            key="another-installation", salt="banatie.jobs.cursor")
    wrong_shape = signing.dumps(["not", "a", "position"], salt="banatie.jobs.cursor")
    for cursor in ("garbage", f"{flipped}:{signed}", real[:-3], foreign, wrong_shape):
        response = listing(api, tenants.a, cursor=cursor)
        assert response.status_code == 400, cursor
        body = response.json()
        assert body["code"] == "invalid_cursor" and body["error"] == "Validation failed" and body["field"] == "cursor"
        assert "nextCursor" in body["hint"]
    assert listing(api, tenants.a, cursor=real).status_code == 200
