"""Wire shapes of the jobs core: the 202 answer, GET /api/jobs/{id} and GET /api/jobs, a
job's error; and the input vocabulary every job-creating endpoint shares (the prompt, the
style options)."""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from apps.jobs.errors import JobError
from apps.jobs.kinds import kind_get, kind_names
from apps.jobs.models import Job
from apps.jobs.selectors import job_queue_position
from banatie.serializers import (
    ChoiceListField, InstantField, IsoDateTimeField, OutputSerializer, QueryParamsSerializer, StrictCharField,
    StrictChoiceField, StrictSerializer, WholeObjectField, page_cursor_field, page_limit_field,
)
from workers.providers.templates import OUTPUT_FORMATS

PROMPT_REQUIRED = {"required": "Prompt is required", "blank": "Prompt is required", "null": "Prompt is required"}


def prompt_field(*, min_length: int, max_length: int) -> StrictCharField:
    return StrictCharField(
        min_length=min_length, max_length=max_length, trim_whitespace=True,
        error_messages={
            **PROMPT_REQUIRED,
            "min_length": f"Prompt must be at least {min_length} characters.",
            "max_length": f"Prompt must be at most {max_length} characters.",
        },
    )


class StyleOptionsSerializer(StrictSerializer):
    """Options shared by /api/enhance `options` and the generate endpoints' enhancementOptions."""

    # Validated into the snake_case keys the providers take (source=).

    mood = StrictCharField(required=False, allow_blank=True, max_length=200)
    lighting = StrictCharField(required=False, allow_blank=True, max_length=200)
    cameraAngle = StrictCharField(required=False, allow_blank=True, max_length=200, source="camera_angle")
    outputFormat = StrictChoiceField(choices=OUTPUT_FORMATS, required=False, source="output_format")
    negativePrompts = serializers.ListField(
        child=StrictCharField(max_length=100), required=False, max_length=20, source="negative_prompts",
    )


# GET /api/jobs query parameters (validated into jobs_list_for_key's keyword arguments). An
# empty parameter (limit=) counts as not sent; a parameter sent twice is refused (which one
# would win is not obvious), except a list (status), whose values add up.
class JobListInputSerializer(QueryParamsSerializer):
    projectId = StrictCharField(required=False, max_length=100, source="project_id", help_text=(
        "Master keys: list this project's jobs instead of the master keys' own. A project key may only pass "
        "its own project's id."))
    status = ChoiceListField(choices=Job.Status.values, required=False, source="statuses", help_text=(
        "Only jobs in one of these statuses, comma-separated: `status=queued,running`."))
    kind = StrictChoiceField(choices=[], required=False, help_text="Only jobs of this kind.")
    createdAfter = InstantField(required=False, source="created_after", help_text=(
        "Only jobs created strictly after this instant (ISO 8601; without an offset it is UTC)."))
    createdBefore = InstantField(required=False, source="created_before", help_text=(
        "Only jobs created strictly before this instant (ISO 8601; without an offset it is UTC)."))
    limit = page_limit_field("Jobs")
    cursor = page_cursor_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Kinds register when the apps are ready, after this class was defined.
        self.fields["kind"].choices = kind_names()



# --- output ----------------------------------------------------------------------------

ACCEPTED_MESSAGE = "Job accepted; poll statusUrl for the result."


class JobAcceptedOutputSerializer(OutputSerializer):
    success = serializers.SerializerMethodField()
    message = serializers.SerializerMethodField()
    jobId = serializers.UUIDField(source="id")
    status = serializers.ChoiceField(choices=Job.Status.choices)
    statusUrl = serializers.CharField(source="status_url")

    def get_success(self, job: Job) -> bool:
        return True

    def get_message(self, job: Job) -> str:
        return ACCEPTED_MESSAGE


@extend_schema_field(OpenApiTypes.INT)
class RetryAfterField(WholeObjectField):
    """The error's Retry-After in seconds; absent when it has none."""

    def to_representation(self, err: JobError) -> int | None:
        value = err.headers.get("Retry-After")
        return int(value) if value is not None else None


class JobErrorOutputSerializer(OutputSerializer):
    omit_when_empty = ("details",)
    omit_when_none = ("retryAfter",)

    code = serializers.CharField()
    status = serializers.IntegerField(source="status_code",
                                      help_text="The HTTP status the synchronous call answered with.")
    error = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(required=False)
    retryAfter = RetryAfterField()


@extend_schema_field(serializers.DictField(
    help_text="When succeeded: the `data` of /api/text-to-image and /api/generate, or the /api/enhance result."))
class JobDataField(WholeObjectField):
    """A succeeded job's result, rendered by its kind; absent otherwise."""

    def to_representation(self, job: Job) -> dict[str, Any] | None:
        if job.status != Job.Status.SUCCEEDED:
            return None
        return kind_get(job.kind).data(job, self.context["request"])


@extend_schema_field(JobErrorOutputSerializer)
class JobFailureField(WholeObjectField):
    """A failed or canceled job's error, as the synchronous call answered it (canceled:
    job_canceled or deadline_exceeded); absent otherwise."""

    def to_representation(self, job: Job) -> dict[str, Any] | None:
        if job.status not in (Job.Status.FAILED, Job.Status.CANCELED):
            return None
        return JobErrorOutputSerializer(JobError.of(job)).data


class JobTimingsOutputSerializer(OutputSerializer):
    queueSeconds = serializers.FloatField(allow_null=True, help_text=(
        "From creation to the last start (or to the end, if it never started); null while queued."))
    runSeconds = serializers.FloatField(allow_null=True, help_text="From the last start to the end; null until both.")


def _seconds(start: Any, end: Any) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


@extend_schema_field(JobTimingsOutputSerializer)
class JobTimingsField(WholeObjectField):
    def to_representation(self, job: Job) -> dict[str, Any]:
        return JobTimingsOutputSerializer({
            "queueSeconds": _seconds(job.created_at, job.started_at or job.finished_at),
            "runSeconds": _seconds(job.started_at, job.finished_at),
        }).data


@extend_schema_field(serializers.IntegerField(allow_null=True, help_text=(
    "While queued: how many jobs (of any project) were queued before this one; null otherwise.")))
class QueuePositionField(WholeObjectField):
    def to_representation(self, job: Job) -> int | None:
        if job.status != Job.Status.QUEUED:
            return None
        return job_queue_position(job)


class JobUsageOutputSerializer(OutputSerializer):
    """What a finished job's upstream calls consumed (apps.jobs.metering)."""

    model = serializers.CharField(allow_null=True, help_text=(
        "The image model (the text model for an enhancement job); null when the job never got that far."))
    images = serializers.IntegerField(help_text="Images the job delivered.")
    inputTokens = serializers.IntegerField(help_text="Input tokens of all its upstream calls (Gemini's usage_metadata).")
    outputTokens = serializers.IntegerField(help_text="Output tokens of all its upstream calls.")
    imageOutputTokens = serializers.IntegerField(help_text="The output tokens that were image tokens.")
    totalTokens = serializers.IntegerField(help_text="All tokens Gemini counted.")
    costUsd = serializers.FloatField(allow_null=True, help_text=(
        "USD from GEMINI_PRICES when the job ended (6 decimals); 0 on the offline provider; "
        "null when a model it called has no price."))


def usage_field() -> JobUsageOutputSerializer:
    # Left out (omit_when_none) until the job ends, and for jobs that ended before usage was kept.
    return JobUsageOutputSerializer(required=False, help_text=(
        "What the job's upstream calls consumed and cost; present once it ended."))


class JobDetailOutputSerializer(OutputSerializer):
    omit_when_none = ("data", "error", "usage")

    success = serializers.SerializerMethodField()
    jobId = serializers.UUIDField(source="id")
    kind = serializers.ChoiceField(choices=[])
    status = serializers.ChoiceField(choices=Job.Status.choices)
    attempts = serializers.IntegerField()
    createdAt = IsoDateTimeField(source="created_at")
    startedAt = IsoDateTimeField(source="started_at", allow_null=True)
    finishedAt = IsoDateTimeField(source="finished_at", allow_null=True)
    statusUrl = serializers.CharField(source="status_url")
    queuePosition = QueuePositionField()
    timings = JobTimingsField()
    cancelReason = serializers.ChoiceField(source="cancel_reason_or_none", choices=Job.CancelReason.choices, allow_null=True)
    cancelAfter = IsoDateTimeField(source="cancel_after", allow_null=True,
                                   help_text="The job's Cancel-After deadline as an instant; null without one.")
    usage = usage_field()
    data = JobDataField()
    error = JobFailureField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Kinds register when the apps are ready, after this class was defined.
        self.fields["kind"].choices = kind_names()

    def get_success(self, job: Job) -> bool:
        return job.status not in (Job.Status.FAILED, Job.Status.CANCELED)


def job_detail_schema(**kwargs: Any) -> PolymorphicProxySerializer:
    """GET /api/jobs/{id} in the OpenAPI schema: one variant per registered kind (its `kind`
    a one-value enum, its `data` the kind's own serializer), discriminated by `kind`. The
    answer itself is JobDetailOutputSerializer's; only the schema is split. ``kwargs`` go
    to the serializer (many=True: a list of jobs)."""
    variants = {}
    for name in kind_names():
        kind = kind_get(name)
        title = "".join(part.capitalize() for part in name.split("_"))
        kind_field = extend_schema_field({"type": "string", "enum": [name]})(
            type(f"{title}KindField", (serializers.CharField,), {}))
        fields: dict[str, Any] = {"kind": kind_field()}
        if kind.data_schema is not None:
            fields["data"] = kind.data_schema(required=False, help_text=(
                f"When succeeded: the result of the {name} job, as its synchronous endpoint answers it."))
        variants[name] = type(f"{title}JobDetailOutputSerializer", (JobDetailOutputSerializer,), fields)
    return PolymorphicProxySerializer(component_name="JobDetailOutput", serializers=variants,
                                      resource_type_field_name="kind", **kwargs)


_JOBS_HELP = "Newest first; each exactly as GET /api/jobs/{jobId} answers it."


class JobListOutputSerializer(OutputSerializer):
    success = serializers.SerializerMethodField()
    jobs = JobDetailOutputSerializer(many=True, help_text=_JOBS_HELP)
    nextCursor = serializers.CharField(source="next_cursor", allow_null=True, help_text=(
        "Pass as `cursor` for the next page; null on the last page."))
    hasMore = serializers.BooleanField(source="has_more", help_text="Whether a next page exists.")

    def get_success(self, page: Any) -> bool:
        return True


def job_list_schema() -> type[JobListOutputSerializer]:
    """GET /api/jobs in the OpenAPI schema: its `jobs` items are job_detail_schema()'s
    variants (the body itself is JobListOutputSerializer's)."""
    return type("JobListOutputSerializer", (JobListOutputSerializer,), {
        "jobs": job_detail_schema(many=True, help_text=_JOBS_HELP),
    })
