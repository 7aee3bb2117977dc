"""Errors of the usage app (in the catalogue, docs/errors.md)."""
from __future__ import annotations

from banatie.errors import ApiError


class QuotaExceeded(ApiError):
    status_code = 429
    code = "quota_exceeded"
    error = "Quota exceeded"
    hint = ("Wait until Retry-After (the next UTC day for dailyImageLimit, the next UTC month for "
            "monthlyBudgetUsd), ask fewer images, or have an admin raise the quota "
            "(PUT /api/admin/projects/{projectId}).")
