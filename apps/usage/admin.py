from django.contrib import admin

from apps.usage.models import ProjectQuota, UsageDaily


@admin.register(ProjectQuota)
class ProjectQuotaAdmin(admin.ModelAdmin):
    list_display = ("project_id", "daily_image_limit", "monthly_budget_usd", "updated_at")
    search_fields = ("project_id",)


@admin.register(UsageDaily)
class UsageDailyAdmin(admin.ModelAdmin):
    # The figures are kept by the jobs' transitions: readable here, never edited.
    list_display = ("day", "project_id", "key_id", "model", "jobs", "succeeded", "failed", "canceled", "images",
                    "input_tokens", "output_tokens", "cost_usd", "unpriced_jobs")
    list_filter = ("day", "model")
    search_fields = ("project_id",)
    date_hierarchy = "day"

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def, override]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def, override]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def, override]
        return False
