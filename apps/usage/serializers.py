"""Wire shapes of GET /api/usage and /api/admin/projects."""
from __future__ import annotations

import calendar
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from apps.keys.serializers import ID_VALIDATOR
from apps.usage.selectors import GROUP_COLUMNS
from apps.usage.services import utc_today
from banatie.serializers import (
    OutputSerializer, QueryParamsSerializer, StrictCharField, StrictChoiceField, StrictIntegerField, StrictSerializer,
)


def _project_id_field(help_text: str, **options: Any) -> StrictCharField:
    options.setdefault("required", False)
    return StrictCharField(max_length=100, source="project_id", help_text=help_text,
                           validators=[ID_VALIDATOR], **options)


class UsageInputSerializer(QueryParamsSerializer):
    projectId = _project_id_field(
        "Master keys: this project's usage; left out: every project's. A project key may only pass its own.")
    # `from` is a Python keyword: the field is added below under its wire name.
    to = serializers.DateField(required=False, input_formats=["iso-8601"], source="date_to", help_text=(
        "Last UTC day included (YYYY-MM-DD); default: the last day of the current month."))
    groupBy = StrictChoiceField(choices=list(GROUP_COLUMNS), required=False, default="day", source="group_by",
                                help_text="Rows per day, key (its id), model, or project (master keys only).")

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False, input_formats=["iso-8601"], source="date_from",
                                               help_text="First UTC day included (YYYY-MM-DD); default: the "
                                                         "first day of the current month.")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today = utc_today()
        attrs.setdefault("date_from", today.replace(day=1))
        attrs.setdefault("date_to", today.replace(day=calendar.monthrange(today.year, today.month)[1]))
        if attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"from": [f"from ({attrs['date_from']}) is after to ({attrs['date_to']})."]})
        return attrs


class UsageFiguresOutputSerializer(OutputSerializer):
    jobs = serializers.IntegerField(help_text="Jobs that ended (counted on the UTC day they were created).")
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    canceled = serializers.IntegerField()
    images = serializers.IntegerField(help_text="Images delivered.")
    inputTokens = serializers.IntegerField(source="input_tokens")
    outputTokens = serializers.IntegerField(source="output_tokens")
    costUsd = serializers.SerializerMethodField(help_text=(
        "USD, 6 decimals, of the jobs with a known price (unpricedJobs counts the others)."))
    unpricedJobs = serializers.IntegerField(source="unpriced_jobs", help_text=(
        "Jobs whose model had no price in GEMINI_PRICES: their cost is not in costUsd."))

    def get_costUsd(self, figures: dict[str, Any]) -> float:  # noqa: N802 - the wire name
        return round(float(figures["cost_usd"] or Decimal(0)), 6)


class UsageGroupOutputSerializer(UsageFiguresOutputSerializer):
    group = serializers.SerializerMethodField(help_text=(
        "The day (YYYY-MM-DD), the key's id, the model (empty when the job never reached one) or the project."))

    def get_group(self, row: dict[str, Any]) -> str:
        return str(row["group"])


class UsageOutputSerializer(OutputSerializer):
    success = serializers.SerializerMethodField()
    projectId = serializers.CharField(source="project_id", allow_null=True, help_text=(
        "The project reported on; null when a master key asked for every project."))
    groupBy = serializers.CharField(source="group_by")
    totals = UsageFiguresOutputSerializer()
    groups = UsageGroupOutputSerializer(many=True)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = serializers.DateField(source="date_from")
        fields["to"] = serializers.DateField(source="date_to")
        return fields

    def get_success(self, report: Any) -> bool:
        return True


class ProjectPathInputSerializer(StrictSerializer):
    # Not trimmed: the id is checked exactly as the path carries it.
    projectId = _project_id_field("The project's id.", required=True, trim_whitespace=False)


class ProjectQuotaInputSerializer(StrictSerializer):
    dailyImageLimit = StrictIntegerField(allow_null=True, min_value=0, max_value=10_000_000, source="daily_image_limit",
                                         help_text="Images per UTC day (null: no limit). Required: send null for none.")
    monthlyBudgetUsd = serializers.FloatField(
        allow_null=True, min_value=0, max_value=1_000_000_000, source="monthly_budget_usd",
        help_text="USD per UTC month, kept to the cent (null: no limit). Required: send null for none.")

    def validate_monthlyBudgetUsd(self, value: float | None) -> Decimal | None:  # noqa: N802 - the wire name
        return None if value is None else Decimal(str(round(value, 2)))


class ProjectOutputSerializer(OutputSerializer):
    projectId = serializers.CharField(source="project_id")
    dailyImageLimit = serializers.IntegerField(source="daily_image_limit", allow_null=True)
    monthlyBudgetUsd = serializers.FloatField(source="monthly_budget_usd", allow_null=True)
    imagesToday = serializers.IntegerField(source="images_today", help_text=(
        "Images of jobs created today (UTC): delivered, plus those asked by jobs still in flight."))
    month = UsageFiguresOutputSerializer(help_text="This UTC month's usage.")


class ProjectDetailOutputSerializer(OutputSerializer):
    success = serializers.SerializerMethodField()
    project = ProjectOutputSerializer(source="*")

    def get_success(self, project: Any) -> bool:
        return True


class ProjectListOutputSerializer(OutputSerializer):
    success = serializers.SerializerMethodField()
    projects = ProjectOutputSerializer(many=True, source="*")

    def get_success(self, projects: Any) -> bool:
        return True
