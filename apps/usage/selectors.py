"""Reads of the usage figures: GET /api/usage and the projects' quotas (aggregates over
UsageDaily, indexed by project and day)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum

from apps.keys.errors import MasterKeyRequired
from apps.keys.models import ApiKey
from apps.keys.selectors import project_ids_with_keys, project_scope_resolve
from apps.usage.models import ProjectQuota, UsageDaily
from apps.usage.services import images_in_flight_per_project, utc_today

_COUNTERS = ("jobs", "succeeded", "failed", "canceled", "images", "input_tokens", "output_tokens", "cost_usd",
             "unpriced_jobs")
# Django copies an aggregate when a query resolves it, so these can serve every query.
_SUMS = {name: Sum(name) for name in _COUNTERS}
GROUP_COLUMNS = {"day": "day", "key": "key_id", "model": "model", "project": "project_id"}


@dataclass(frozen=True)
class UsageReport:
    project_id: str | None  # None: every project (a master key that named none)
    date_from: date
    date_to: date
    group_by: str
    totals: dict[str, Any]
    groups: list[dict[str, Any]]


def usage_scope(*, key: ApiKey, project_id: str | None, group_by: str) -> str | None:
    """The project a report covers: a project key's own; a master key's choice, or None for all."""
    scope = project_scope_resolve(key=key, project_id=project_id, verb="read", noun="usage")
    if not key.is_master and group_by == "project":
        raise MasterKeyRequired("Only a master key may group usage by project.",
                                hint="Use groupBy=day, key or model with a project key.")
    return scope


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {name: (row.get(name) or (Decimal(0) if name == "cost_usd" else 0)) for name in _COUNTERS}


def usage_report(*, scope: str | None, date_from: date, date_to: date, group_by: str) -> UsageReport:
    rows: QuerySet[UsageDaily] = UsageDaily.objects.filter(day__gte=date_from, day__lte=date_to)
    if scope is not None:
        rows = rows.filter(project_id=scope)
    column = GROUP_COLUMNS[group_by]
    groups = [{"group": row[column], **_figures(row)}
              for row in rows.values(column).annotate(**_SUMS).order_by(column)]
    return UsageReport(project_id=scope, date_from=date_from, date_to=date_to, group_by=group_by,
                       totals=_figures(rows.aggregate(**_SUMS)), groups=groups)


@dataclass(frozen=True)
class ProjectUsage:
    project_id: str
    daily_image_limit: int | None
    monthly_budget_usd: Decimal | None
    images_today: int  # ended and in flight
    month: dict[str, Any]


def project_usage(project_id: str, quota: ProjectQuota | None = None) -> ProjectUsage:
    return _projects_usage([project_id], {project_id: quota} if quota else {}, only=project_id)[0]


def projects_usage() -> list[ProjectUsage]:
    """Every project that has keys (or a quota), with its quotas and this month's usage: four
    queries however many projects there are."""
    quotas = {quota.project_id: quota for quota in ProjectQuota.objects.all()}
    return _projects_usage(sorted(set(project_ids_with_keys()) | set(quotas)), quotas)


def _projects_usage(project_ids: list[str], quotas: dict[str, ProjectQuota], *,
                    only: str | None = None) -> list[ProjectUsage]:
    """Two queries: this month's rows summed per project (today's images among them), and the
    images of today's jobs still in flight. ``only``: read just that project's rows."""
    today = utc_today()
    month = UsageDaily.objects.filter(day__gte=today.replace(day=1), day__lte=today)
    if only is not None:
        month = month.filter(project_id=only)
    # images_today first: it must sum the column, before the "images" annotation takes that name.
    sums = month.values("project_id").annotate(images_today=Sum("images", filter=Q(day=today)), **_SUMS).order_by()
    by_project = {row["project_id"]: row for row in sums}
    in_flight = images_in_flight_per_project(today, project_id=only)
    usage = []
    for project_id in project_ids:
        quota, row = quotas.get(project_id), by_project.get(project_id, {})
        usage.append(ProjectUsage(
            project_id=project_id,
            daily_image_limit=quota.daily_image_limit if quota else None,
            monthly_budget_usd=quota.monthly_budget_usd if quota else None,
            images_today=(row.get("images_today") or 0) + in_flight.get(project_id, 0),
            month=_figures(row),
        ))
    return usage
