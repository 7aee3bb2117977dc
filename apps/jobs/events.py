"""GET /api/jobs/{id}/events: a job's status as server-sent events.

One `job` event at once, one on every status change, and the stream ends after the job's
terminal event (or after SSE_MAX_SECONDS: the client reconnects with Last-Event-ID). A
`: keep-alive` comment goes out after SSE_KEEPALIVE_SECONDS without anything written.

Event ids are derived from the row, so a resumed stream knows what the client saw without
remembering anything: with a = attempts, a queued job is 3a+1, a running one 3a-1 (its a-th
attempt), a finished one 3a+3. They only grow over a job's life: queued 1, running 2, back
in the queue after attempt 1: 4, running 5, finished after two attempts: 9.

Waiting is the sync wait's (apps.jobs.services.job_wait): registered with this process's one
listener before each read of the row, no database connection held while waiting or while
a write to the client may block; under gunicorn's gevent worker a waiting stream is a
greenlet on an Event, not a thread. While the listener has lost Redis, the row is read
every second instead."""
from __future__ import annotations

import time
from collections.abc import Iterator

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.request import Request

from apps.jobs.db import connection_release
from apps.jobs.models import Job
from apps.jobs.serializers import JobDetailOutputSerializer
from apps.jobs.services import job_expire_if_due
from apps.jobs.wakeup import job_done_watch, signal_available
from banatie.renderers import EventStreamRenderer
from banatie.request_context import current_request_id, set_request_id

KEEP_ALIVE = EventStreamRenderer.comment("keep-alive")
_POLL_SECONDS = 1.0  # while no signal can come (the listener lost Redis)


def job_event_id(job: Job) -> int:
    """The id of the event that shows ``job`` as it is now (see the module docstring)."""
    if job.is_finished:
        return 3 * job.attempts + 3
    if job.status == Job.Status.RUNNING:
        return 3 * job.attempts - 1
    return 3 * job.attempts + 1


def last_event_id(value: str | None) -> int | None:
    """The client's Last-Event-ID as a number; anything else counts as no header."""
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def job_events_response(request: Request, job: Job) -> StreamingHttpResponse:
    """The event stream of ``job`` (already scoped to the caller), resumed after the
    request's Last-Event-ID."""
    stream = _events(request, job, seen=last_event_id(request.headers.get("Last-Event-ID")),
                     request_id=current_request_id())
    response = StreamingHttpResponse(stream, content_type=EventStreamRenderer.media_type)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _events(request: Request, job: Job, *, seen: int | None, request_id: str) -> Iterator[bytes]:
    """The stream's body. It runs after the view returned (the server iterates it), so it
    puts the request's id back on its own log lines."""
    outside = current_request_id()
    set_request_id(request_id)
    renderer = EventStreamRenderer()
    keepalive = settings.SSE_KEEPALIVE_SECONDS
    ends = time.monotonic() + settings.SSE_MAX_SECONDS
    sent: int | None = None  # the last event's id
    wrote = False
    written = time.monotonic()  # of the last write, for the keep-alive
    try:
        with job_done_watch(str(job.pk), every_change=True) as changed:
            while True:
                changed.clear()  # before the read: a change after it sets the event again
                job.refresh_from_db()
                job_expire_if_due(job)
                event_id = job_event_id(job)
                frame = None
                if event_id != sent and (seen is None or event_id > seen):
                    frame = renderer.render({"event": "job", "id": event_id, "data": JobDetailOutputSerializer(
                        job, context={"request": request}).data})
                    sent = event_id
                elif not wrote and not job.is_finished:
                    # Resumed with nothing new yet: write at once anyway, so the client has
                    # the response's headers now rather than at the next change.
                    frame = KEEP_ALIVE
                # Never hold a connection while the client reads (a slow one blocks the write)
                # or while waiting.
                connection_release()
                if frame is not None:
                    yield frame
                    wrote, written = True, time.monotonic()
                if job.is_finished:
                    return
                now = time.monotonic()
                if now >= ends:
                    return
                timeout = min(written + keepalive - now, ends - now)
                if job.cancel_after is not None:
                    # Past its Cancel-After the job ends canceled; this stream may be first to see it.
                    timeout = min(timeout, (job.cancel_after - timezone.now()).total_seconds() + 0.01)
                if not signal_available():
                    timeout = min(timeout, _POLL_SECONDS)
                if not changed.wait(max(timeout, 0.0)) and time.monotonic() - written >= keepalive:
                    yield KEEP_ALIVE
                    written = time.monotonic()
    finally:
        connection_release()
        set_request_id(outside)
