from __future__ import annotations

from django.db import models


class UsageDaily(models.Model):
    """What the jobs created on one UTC day consumed, per project, key and image model: one
    row per combination, its counters added to when a job ends (apps.usage.services). GET
    /api/usage sums these rows, so it costs the same with a thousand jobs or a million, and
    the figures outlive the jobs' retention."""

    day = models.DateField()
    project_id = models.CharField(max_length=100)
    key_id = models.UUIDField()
    model = models.CharField(max_length=200, blank=True, default="")
    jobs = models.PositiveBigIntegerField(default=0)
    succeeded = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)
    canceled = models.PositiveBigIntegerField(default=0)
    images = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    # Jobs whose cost is unknown (a model without a price): not in cost_usd.
    unpriced_jobs = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "usage_daily"
        constraints = [models.UniqueConstraint(fields=["day", "project_id", "key_id", "model"],
                                               name="usage_daily_one_row")]
        indexes = [models.Index(fields=["project_id", "day"], name="usage_daily_project_day"),
                   models.Index(fields=["day"], name="usage_daily_day")]


class ProjectQuota(models.Model):
    """A project's limits, set by a master key (PUT /api/admin/projects/{projectId}) or in
    the admin; null = no limit. Checked when a job is created."""

    project_id = models.CharField(max_length=100, primary_key=True)
    daily_image_limit = models.PositiveIntegerField(null=True, blank=True)
    monthly_budget_usd = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "usage_project_quota"

    def __str__(self) -> str:
        return f"quotas of {self.project_id}"
