"""Django admin for jobs: look, filter, search, and cancel. Nothing is added, changed or
deleted here: jobs are created by the API, moved by the state machine (services.py) and
deleted by retention (retention.py)."""
from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.jobs.errors import JobAlreadyFinished
from apps.jobs.models import Job
from apps.jobs.services import job_cancel


def _pretty(value: Any) -> SafeString | str:
    if value is None:
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def _jobs(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "project_id", "created_at", "finished_at", "attempts", "error_code")
    list_filter = ("status", "kind", "project_id")
    # icontains on the UUID: SQLite stores it as 32 hex digits and Django strips the
    # hyphens from the search term; PostgreSQL compares its text form. A full id matches both.
    search_fields = ("id", "project_id")
    date_hierarchy = "created_at"
    # The job table grows fast: no second COUNT(*) of the whole table on every filtered page.
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("id", "kind", "status", "project_id", "api_key", "attempts", "cancel_reason",
                           "error_code", "error_message", "retry_after")}),
        ("Request", {"fields": ("request_json", "idempotency_key", "request_hash")}),
        ("Result", {"fields": ("result_json", "error_details_json")}),
        ("Times", {"fields": ("created_at", "enqueued_at", "started_at", "finished_at", "lease_expires_at",
                              "cancel_after", "stored_released_at")}),
    )
    readonly_fields = tuple(name for _, section in fieldsets for name in section["fields"])
    actions = ["cancel_selected"]

    @admin.display(description="request")
    def request_json(self, obj: Job) -> SafeString | str:
        return _pretty(obj.request)

    @admin.display(description="result")
    def result_json(self, obj: Job) -> SafeString | str:
        return _pretty(obj.result)

    @admin.display(description="error details")
    def error_details_json(self, obj: Job) -> SafeString | str:
        return _pretty(obj.error_details)

    # Read-only: the view permission shows a job; no one saves, adds or deletes one here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False  # retention deletes jobs (and, when configured, their images)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """The custom "jobs.cancel_job" permission (Job.Meta.permissions): without it the
        action is neither listed nor accepted."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('cancel', opts)}")

    @admin.action(description="Cancel selected jobs", permissions=["cancel"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        """As POST /api/jobs/{id}/cancel does, job by job (cancelReason "requested")."""
        canceled = finished = 0
        for job in queryset:
            if job.is_finished:
                finished += 1
                continue
            try:
                job_cancel(job=job)
                canceled += 1
            except JobAlreadyFinished:  # it finished between the read and the cancel
                finished += 1
        message = f"Canceled {_jobs(canceled)}."
        if finished:
            message += f" Skipped {_jobs(finished)} already finished."
        self.message_user(request, message, messages.SUCCESS if canceled else messages.WARNING)
