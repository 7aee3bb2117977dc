"""Keeping the usage figures and enforcing project quotas, through the jobs core's
transition hook (apps.jobs.transitions), so both commit with the job's own state:

- job.created: a project with a quota is checked in the transaction that inserts the job,
  serialized per project (its quota row is locked), counting the images of its jobs still in
  flight as used: concurrent requests cannot overshoot the daily image limit, and the
  monthly budget by at most what the jobs in flight at that instant cost;
- job.succeeded / job.failed / job.canceled: the job's usage (apps.jobs.metering) is added
  to its creation day's row of UsageDaily (one upsert)."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from apps.jobs.kinds import kind_get
from apps.jobs.models import Job
from apps.jobs.transitions import JOB_CANCELED, JOB_CREATED, JOB_FAILED, JOB_SUCCEEDED, Recorder
from apps.usage.errors import QuotaExceeded
from apps.usage.models import ProjectQuota, UsageDaily
from banatie import metrics

_ENDED = {JOB_SUCCEEDED: "succeeded", JOB_FAILED: "failed", JOB_CANCELED: "canceled"}


def usage_recorder(job: Job, event: str) -> Recorder | None:
    """The transition listener (one SELECT for job.created; none for the others)."""
    if event == JOB_CREATED:
        quota = ProjectQuota.objects.filter(project_id=job.project_id).first()
        if quota is None or (quota.daily_image_limit is None and quota.monthly_budget_usd is None):
            return None
        return _quota_check
    if event in _ENDED:
        return lambda stored: _day_add(stored, _ENDED[event])
    return None


def utc_today() -> date:
    return timezone.now().astimezone(dt_timezone.utc).date()


def _seconds_until(day: date) -> int:
    start = datetime.combine(day, time.min, tzinfo=dt_timezone.utc)
    return max(1, int((start - timezone.now()).total_seconds()) + 1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def images_in_flight(project_id: str, day: date) -> int:
    """Images asked by the project's jobs created on ``day`` that have not ended yet."""
    return images_in_flight_per_project(day, project_id=project_id).get(project_id, 0)


def images_in_flight_per_project(day: date, *, project_id: str | None = None) -> dict[str, int]:
    """images_in_flight of every project with such jobs (or only ``project_id``), in one query."""
    start = datetime.combine(day, time.min, tzinfo=dt_timezone.utc)
    unfinished = Job.objects.filter(status__in=Job.UNFINISHED, created_at__gte=start,
                                    created_at__lt=start + timedelta(days=1))
    if project_id is not None:
        unfinished = unfinished.filter(project_id=project_id)
    asked: dict[str, int] = defaultdict(int)
    for project, kind, request in unfinished.values_list("project_id", "kind", "request"):
        asked[project] += kind_get(kind).images_asked(request)
    return asked


def images_used(project_id: str, day: date) -> int:
    return UsageDaily.objects.filter(project_id=project_id, day=day).aggregate(n=Sum("images"))["n"] or 0


def month_cost(project_id: str, day: date) -> Decimal:
    rows = UsageDaily.objects.filter(project_id=project_id, day__gte=day.replace(day=1), day__lte=day)
    return rows.aggregate(c=Sum("cost_usd"))["c"] or Decimal(0)


def _quota_check(job: Job) -> None:
    # The lock serializes this project's job creations (PostgreSQL; SQLite has one writer).
    quota = ProjectQuota.objects.select_for_update().get(project_id=job.project_id)
    today = utc_today()
    if quota.daily_image_limit is not None:
        asked = kind_get(job.kind).images_asked(job.request)
        # This job is inserted already: images_in_flight counts it.
        in_use = images_used(job.project_id, today) + images_in_flight(job.project_id, today)
        if asked and in_use > quota.daily_image_limit:
            used = in_use - asked
            metrics.quota_rejections.inc()
            raise QuotaExceeded(
                f"Project {job.project_id!r} may create {quota.daily_image_limit} images per UTC day; {used} are "
                f"used or in progress today and this request asks for {asked}.",
                details={"quota": "dailyImageLimit", "limit": quota.daily_image_limit, "usage": used,
                         "requested": asked},
                headers={"Retry-After": str(_seconds_until(today + timedelta(days=1)))},
            )
    if quota.monthly_budget_usd is not None:
        spent = month_cost(job.project_id, today)
        if spent >= quota.monthly_budget_usd:
            metrics.quota_rejections.inc()
            raise QuotaExceeded(
                f"Project {job.project_id!r} has spent ${spent:.6f} of its ${quota.monthly_budget_usd} budget "
                f"this UTC month.",
                details={"quota": "monthlyBudgetUsd", "limit": float(quota.monthly_budget_usd),
                         "usage": round(float(spent), 6)},
                headers={"Retry-After": str(_seconds_until(_next_month(today)))},
            )


_UPSERT = """
INSERT INTO usage_daily (day, project_id, key_id, model, jobs, succeeded, failed, canceled, images,
                         input_tokens, output_tokens, cost_usd, unpriced_jobs)
VALUES (%s, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (day, project_id, key_id, model) DO UPDATE SET
  jobs = usage_daily.jobs + 1,
  succeeded = usage_daily.succeeded + excluded.succeeded,
  failed = usage_daily.failed + excluded.failed,
  canceled = usage_daily.canceled + excluded.canceled,
  images = usage_daily.images + excluded.images,
  input_tokens = usage_daily.input_tokens + excluded.input_tokens,
  output_tokens = usage_daily.output_tokens + excluded.output_tokens,
  cost_usd = usage_daily.cost_usd + excluded.cost_usd,
  unpriced_jobs = usage_daily.unpriced_jobs + excluded.unpriced_jobs
"""


def _db(name: str, value: Any) -> Any:
    return UsageDaily._meta.get_field(name).get_db_prep_value(value, connection)


def _day_add(job: Job, status: str) -> None:
    """One upsert (SQLite and PostgreSQL both speak ON CONFLICT ... DO UPDATE): counters are
    added in the database, so concurrent finishes never lose one another's figures."""
    usage: dict[str, Any] = job.usage or {}
    cost = usage.get("costUsd")
    day = job.created_at.astimezone(dt_timezone.utc).date()
    values = [
        _db("day", day), job.project_id, _db("key_id", job.api_key_id), usage.get("model") or "",
        int(status == "succeeded"), int(status == "failed"), int(status == "canceled"),
        usage.get("images", 0), usage.get("inputTokens", 0), usage.get("outputTokens", 0),
        _db("cost_usd", Decimal(str(cost or 0))), int(cost is None),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, values)


def quota_set(*, project_id: str, daily_image_limit: int | None, monthly_budget_usd: Decimal | None) -> ProjectQuota:
    quota, _ = ProjectQuota.objects.update_or_create(project_id=project_id, defaults={
        "daily_image_limit": daily_image_limit, "monthly_budget_usd": monthly_budget_usd})
    return quota
