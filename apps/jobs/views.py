from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import HttpResponseBase, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.jobs.events import job_events_response
from apps.jobs.selectors import job_get_for_key, job_idempotent_replay_exists, jobs_list_for_key
from apps.jobs.serializers import (
    JobDetailOutputSerializer, JobListInputSerializer, JobListOutputSerializer, job_detail_schema, job_list_schema,
)
from apps.jobs.services import job_cancel, job_expire_if_due
from apps.keys.throttling import RateLimitedView
from banatie.openapi import errors
from banatie.renderers import EventStreamRenderer


JOB_ID = OpenApiParameter("jobId", str, OpenApiParameter.PATH, description="The job's id (uuid).")


class JobListView(APIView):
    @extend_schema(
        operation_id="jobs_list", tags=["jobs"], summary="List your jobs, newest first",
        description="The caller's jobs (a project key: its project's; a master key: the master keys' own, or one "
                    "project's with `projectId`), newest first, each as GET /api/jobs/{jobId} answers it. Pages "
                    "are keyset-paginated: follow `nextCursor` until it is null; jobs created meanwhile never "
                    "shift a later page, so no job is listed twice or skipped. `createdAfter` and "
                    "`createdBefore` are exclusive. Not rate limited.",
        parameters=[JobListInputSerializer],
        responses={200: job_list_schema(), **errors(400, 401, 403, 405, 500)},
    )
    def get(self, request: Request) -> Response:
        params = JobListInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        page = jobs_list_for_key(key=request.auth, **params.validated_data)
        # As GET /api/jobs/{jobId} shows them: a job past its Cancel-After is canceled.
        page = replace(page, jobs=[job_expire_if_due(job) for job in page.jobs])
        return Response(JobListOutputSerializer(page, context={"request": request}).data)


class JobDetailView(APIView):
    @extend_schema(
        operation_id="job_retrieve", tags=["jobs"], summary="Status and result of a job",
        parameters=[JOB_ID], responses={200: job_detail_schema(), **errors(401, 404, 405, 500)},
    )
    def get(self, request: Request, jobId: str) -> Response:  # noqa: N803 - the documented name
        job = job_expire_if_due(job_get_for_key(key=request.auth, job_id=jobId))
        return Response(JobDetailOutputSerializer(job, context={"request": request}).data)


class JobCancelView(APIView):
    @extend_schema(
        operation_id="job_cancel", tags=["jobs"], summary="Cancel a queued or running job", request=None,
        description="A queued job is canceled before any upstream call; a running job is canceled at once, its "
                    "in-flight result discarded (nothing is stored) and its upstream call abandoned. Canceling a "
                    "canceled job again answers 200 unchanged; a succeeded or failed job is 409 "
                    "`job_already_finished`.",
        parameters=[JOB_ID], responses={200: job_detail_schema(), **errors(401, 404, 405, 409, 500)},
    )
    def post(self, request: Request, jobId: str) -> Response:  # noqa: N803 - the documented name
        job = job_cancel(job=job_get_for_key(key=request.auth, job_id=jobId))
        return Response(JobDetailOutputSerializer(job, context={"request": request}).data)


EVENTS_DESCRIPTION = (
    "Server-sent events (`text/event-stream`): at once an event `job` whose `data` is the job exactly as "
    "`GET /api/jobs/{jobId}` answers it (compact JSON on one line), then one on every status change; the "
    "stream ends after the terminal state (`succeeded`, `failed`, `canceled`), or after SSE_MAX_SECONDS "
    "(default 3600; reconnect with `Last-Event-ID`). A comment line `: keep-alive` follows every "
    "SSE_KEEPALIVE_SECONDS (default 15) without an event. Each event's `id` grows over the job's life "
    "(with a = attempts: queued 3a+1, running 3a-1, finished 3a+3), so `Last-Event-ID` resumes without "
    "repeating: only events with a greater id are sent, and a finished job whose id the client has seen "
    "ends the stream at once, empty. Errors (401, 404) are JSON, answered before any stream starts."
)


class JobEventsView(APIView):
    # The stream's own renderer, so `Accept: text/event-stream` is not a 406; JSON stays the
    # default (and what every error is rendered as).
    renderer_classes = [JSONRenderer, EventStreamRenderer]
    http_method_names = ["get", "options"]  # a HEAD would hold a stream open to send no body

    @extend_schema(
        operation_id="job_events", tags=["jobs"], summary="Live status of a job (server-sent events)",
        description=EVENTS_DESCRIPTION,
        parameters=[JOB_ID, OpenApiParameter("format", exclude=True), OpenApiParameter(
            "Last-Event-ID", str, OpenApiParameter.HEADER, required=False,
            description="The `id` of the last event received: only later events are sent. Not a whole "
                        "number: ignored (the stream starts from the job's current state).")],
        responses={(200, "text/event-stream"): OpenApiResponse(
            {"type": "string", "description": "Events `event: job`, `id: <n>`, `data: <JobDetailOutput JSON>`, "
                                              "and `: keep-alive` comment lines."},
            description="The job's events until its terminal state (see the operation's description)."),
            **errors(401, 404, 405, 500)},
    )
    def get(self, request: Request, jobId: str) -> StreamingHttpResponse:  # noqa: N803 - the documented name
        return job_events_response(request, job_get_for_key(key=request.auth, job_id=jobId))

    def finalize_response(self, request: Request, response: HttpResponseBase, *args: Any,
                          **kwargs: Any) -> HttpResponseBase:
        if isinstance(response, Response):  # an error: JSON, whatever Accept asked for
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


# The base of every job-creating endpoint (no docstring: it would become each endpoint's
# OpenAPI description): the per-key budget, where an idempotent replay is not charged twice.
class JobCreateView(RateLimitedView):
    # Asked twice per request (the throttle, then the charge): looked up once. A view
    # instance serves one request.
    _is_replay: bool | None = None

    def charges_rate_limit(self, request: Request) -> bool:
        if self._is_replay is None:
            key = request.headers.get("Idempotency-Key")
            self._is_replay = bool(key and job_idempotent_replay_exists(key=request.auth, idempotency_key=key))
        return not self._is_replay
