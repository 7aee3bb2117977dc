"""GET /api/jobs/{jobId}/events: a job's status as server-sent events, read over real HTTP
(a live server, the real worker, the Gemini emulator), and hundreds of open streams on one
gunicorn gevent process."""
from __future__ import annotations

import http.client
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import requests
from django.utils import timezone

from apps.jobs.models import Job
from apps.jobs.wakeup import listener_subscribed, signal_job_changed, signal_job_done
from tests.conftest import auth

EVENT_STREAM = "text/event-stream"


# --- a small server-sent events client (the format: html.spec.whatwg.org, "server-sent events") --

@dataclass
class Event:
    id: int
    event: str
    raw: str  # the data line as sent
    data: dict[str, Any]


@dataclass
class Stream:
    status: int
    headers: dict[str, str]
    items: list[Event | str] = field(default_factory=list)  # events, and comments as their text
    body: bytes = b""  # a non-200 answer

    @property
    def events(self) -> list[Event]:
        return [item for item in self.items if isinstance(item, Event)]

    @property
    def comments(self) -> list[str]:
        return [item for item in self.items if isinstance(item, str)]

    @property
    def statuses(self) -> list[str]:
        return [event.data["status"] for event in self.events]


class StopReading(Exception):
    """Raised by an on_event callback: the client hangs up."""


def read_stream(base_url: str, job_id: str, headers: dict[str, str], *,
                on_event: Callable[[Event], None] | None = None, timeout: float = 30.0) -> Stream:
    """Read the job's event stream until the server ends it (or ``on_event`` raises
    StopReading). http.client reads line by line as the lines arrive, chunked or not."""
    where = urlsplit(base_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
    try:
        connection.request("GET", f"/api/jobs/{job_id}/events", headers=headers)
        response = connection.getresponse()
        stream = Stream(response.status, {k.lower(): v for k, v in response.getheaders()})
        if response.status != 200:
            stream.body = response.read()
            return stream
        fields: dict[str, str] = {}
        while line := response.readline():
            text = line.decode().rstrip("\r\n")
            if text.startswith(":"):
                stream.items.append(text[1:].strip())
            elif text:
                name, _, value = text.partition(":")
                fields[name] = value.removeprefix(" ")
            elif fields:
                event = Event(int(fields["id"]), fields["event"], fields["data"], json.loads(fields["data"]))
                stream.items.append(event)
                fields = {}
                if on_event is not None:
                    try:
                        on_event(event)
                    except StopReading:
                        return stream
        assert not fields, f"the stream ended inside an event: {fields}"
        return stream
    finally:
        connection.close()


def expected_id(job: dict[str, Any]) -> int:
    attempts = job["attempts"]
    if job["status"] in ("succeeded", "failed", "canceled"):
        return 3 * attempts + 3
    return 3 * attempts - 1 if job["status"] == "running" else 3 * attempts + 1


def headers(key: str, **extra: str) -> dict[str, str]:
    return {"X-API-Key": key, "Accept": EVENT_STREAM, **extra}


def start_job(base_url: str, key: str, **extra_headers: str) -> str:
    r = requests.post(f"{base_url}/api/text-to-image", timeout=30,
                      json={"prompt": "A lighthouse in a storm", "filename": "lighthouse", "autoEnhance": False},
                      headers={"X-API-Key": key, "Prefer": "respond-async", **extra_headers})
    assert r.status_code == 202, r.text
    return r.json()["jobId"]


def queued_row(tenants: Any) -> Job:
    """A job no worker will run (no task is published): the test moves it itself."""
    return Job.objects.create(api_key=tenants.a_key, project_id="project-a", kind="enhancement",
                              request={"prompt": "a red fox"})


# --- one job's stream ---------------------------------------------------------------------

def test_job_events_stream_each_state_in_order_and_end_after_the_terminal_one(worker, live_server, tenants, gemini):
    gemini.latency = 1.0
    job_id = start_job(live_server.url, tenants.a)
    stream = read_stream(live_server.url, job_id, headers(tenants.a))
    assert stream.status == 200
    assert stream.headers["content-type"] == EVENT_STREAM
    assert stream.headers["cache-control"] == "no-cache" and stream.headers["x-accel-buffering"] == "no"
    assert len(stream.headers["x-request-id"]) == 32
    # The job may have started before the stream opened; it is never seen going backwards.
    assert stream.statuses in (["queued", "running", "succeeded"], ["running", "succeeded"]), stream.statuses
    assert all(event.event == "job" for event in stream.events)
    ids = [event.id for event in stream.events]
    assert ids == sorted(set(ids)) and ids == [expected_id(event.data) for event in stream.events]
    assert ids[-2:] == [2, 6]  # running (attempt 1), then finished after one attempt
    # The last event is exactly what GET /api/jobs/{id} answers, byte for byte.
    polled = requests.get(f"{live_server.url}/api/jobs/{job_id}", headers={"X-API-Key": tenants.a}, timeout=10)
    assert stream.events[-1].data == polled.json() and stream.events[-1].raw == polled.text
    assert polled.json()["status"] == "succeeded" and polled.json()["data"]["filename"] == "lighthouse.png"


def test_job_events_keep_alive_comments_fill_the_silence_between_events(worker, live_server, tenants, gemini,
                                                                         settings):
    settings.SSE_KEEPALIVE_SECONDS = 0.2
    gemini.latency = 1.5
    stream = read_stream(live_server.url, start_job(live_server.url, tenants.a), headers(tenants.a))
    assert stream.statuses[-1] == "succeeded"
    assert len(stream.comments) >= 3 and set(stream.comments) == {"keep-alive"}, stream.comments
    running = stream.statuses.index("running")
    between = stream.items[stream.items.index(stream.events[running]) + 1:-1]
    assert between and set(between) == {"keep-alive"}  # the 1.5 s of upstream call, kept alive


def test_job_events_last_event_id_resumes_without_repeating(worker, live_server, tenants, gemini):
    gemini.latency = 2.0
    job_id = start_job(live_server.url, tenants.a)

    def hang_up_when_running(event: Event) -> None:
        if event.data["status"] == "running":
            raise StopReading

    first = read_stream(live_server.url, job_id, headers(tenants.a), on_event=hang_up_when_running)
    running = first.events[-1]
    assert running.data["status"] == "running" and running.id == 2
    # Reconnected while it runs: nothing it saw again, only what came after.
    resumed = read_stream(live_server.url, job_id, headers(tenants.a, **{"Last-Event-ID": str(running.id)}))
    assert resumed.status == 200 and [(e.id, e.data["status"]) for e in resumed.events] == [(6, "succeeded")]
    assert set(resumed.comments) <= {"keep-alive"}
    # Reconnected after the end: the stream ends at once, empty.
    done = read_stream(live_server.url, job_id, headers(tenants.a, **{"Last-Event-ID": "6"}))
    assert done.status == 200 and done.items == []
    # An id that is not a whole number counts as none: the job as it is now.
    for value in ("not-a-number", "-1", "2.0"):
        fresh = read_stream(live_server.url, job_id, headers(tenants.a, **{"Last-Event-ID": value}))
        assert [e.raw for e in fresh.events] == [resumed.events[0].raw], value


def test_job_events_end_with_the_canceled_event_when_the_job_is_canceled_while_streaming(
        worker, live_server, tenants, gemini):
    gemini.latency = 3.0
    job_id = start_job(live_server.url, tenants.a)

    def cancel_when_running(event: Event) -> None:
        if event.data["status"] == "running":
            r = requests.post(f"{live_server.url}/api/jobs/{job_id}/cancel", headers={"X-API-Key": tenants.a},
                              timeout=10)
            assert r.status_code == 200

    stream = read_stream(live_server.url, job_id, headers(tenants.a), on_event=cancel_when_running)
    assert stream.statuses[-2:] == ["running", "canceled"]
    last = stream.events[-1]
    assert last.id == 6 and last.data["cancelReason"] == "requested" and last.data["error"]["code"] == "job_canceled"


def test_job_events_end_canceled_when_the_cancel_after_deadline_passes(worker, live_server, tenants, gemini):
    gemini.latency = 3.0
    stream = read_stream(live_server.url, start_job(live_server.url, tenants.a, **{"Cancel-After": "1s"}),
                         headers(tenants.a))
    last = stream.events[-1]
    assert last.data["status"] == "canceled" and last.data["cancelReason"] == "deadline"
    assert last.data["error"]["code"] == "deadline_exceeded"


def test_job_events_stream_ends_after_sse_max_seconds_and_the_client_resumes(worker, live_server, tenants, gemini,
                                                                              settings):
    settings.SSE_MAX_SECONDS = 0.5
    gemini.latency = 2.5
    job_id = start_job(live_server.url, tenants.a)
    seen: list[Event] = []
    last_id: dict[str, str] = {}
    for _ in range(20):
        stream = read_stream(live_server.url, job_id, headers(tenants.a, **last_id))
        seen += stream.events
        if seen:
            last_id = {"Last-Event-ID": str(seen[-1].id)}
        if seen and seen[-1].data["status"] == "succeeded":
            break
    statuses = [event.data["status"] for event in seen]
    assert statuses[-1] == "succeeded" and "running" in statuses
    ids = [event.id for event in seen]
    assert ids == sorted(set(ids))  # nothing repeated across the reconnections


def test_job_events_ids_keep_growing_when_a_job_goes_back_to_the_queue(live_server, tenants):
    job = queued_row(tenants)
    received: queue.Queue[Event | Stream] = queue.Queue()
    reader = threading.Thread(target=lambda: received.put(read_stream(
        live_server.url, str(job.pk), headers(tenants.a), on_event=received.put)))
    reader.start()
    try:
        assert listener_subscribed(10)

        def move(signal: Callable[[str], None], **values: Any) -> Event:
            Job.objects.filter(pk=job.pk).update(**values)
            signal(str(job.pk))
            return received.get(timeout=10)

        assert received.get(timeout=10).id == 1  # queued, never started
        assert move(signal_job_changed, status="running", attempts=1, started_at=timezone.now()).id == 2
        requeued = move(signal_job_changed, status="queued")  # the sweep took back a lost lease
        assert (requeued.id, requeued.data["status"], requeued.data["attempts"]) == (4, "queued", 1)
        assert move(signal_job_changed, status="running", attempts=2).id == 5
        failed = move(signal_job_done, status="failed", finished_at=timezone.now(), error_code="upstream_unavailable")
        assert (failed.id, failed.data["status"], failed.data["error"]["code"]) == (9, "failed", "upstream_unavailable")
        stream = received.get(timeout=10)
        assert isinstance(stream, Stream) and [e.id for e in stream.events] == [1, 2, 4, 5, 9]
    finally:
        Job.objects.filter(pk=job.pk).update(status="failed", finished_at=timezone.now())
        signal_job_done(str(job.pk))
        reader.join(10)


def test_job_events_read_the_row_every_second_while_the_listener_has_lost_redis(live_server, tenants, monkeypatch):
    from apps.jobs import wakeup

    monkeypatch.setattr(wakeup._listener, "down", True)  # as the listener marks it when Redis drops
    job = queued_row(tenants)
    moves = iter([{"status": "running", "attempts": 1},
                  {"status": "failed", "finished_at": timezone.now(), "error_code": "upstream_unavailable"}])

    def change_silently(event: Event) -> None:  # no signal: only reading the row can notice
        values = next(moves, None)
        if values is not None:
            Job.objects.filter(pk=job.pk).update(**values)

    stream = read_stream(live_server.url, str(job.pk), headers(tenants.a), on_event=change_silently, timeout=10)
    assert [(e.id, e.data["status"]) for e in stream.events] == [(1, "queued"), (2, "running"), (6, "failed")]


# --- errors, negotiation, logs ------------------------------------------------------------

def test_job_events_errors_are_json_before_any_stream_whatever_accept_says(api, tenants):
    job = queued_row(tenants)
    sse = {"HTTP_ACCEPT": EVENT_STREAM}

    def error(response: Any, status: int, code: str) -> None:
        assert response.status_code == status and not response.streaming
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["success"] is False and body["code"] == code and body["requestId"] == response["X-Request-ID"]

    error(api.get(f"/api/jobs/{job.pk}/events", **sse), 401, "api_key_missing")
    error(api.get(f"/api/jobs/{job.pk}/events", **sse, **auth(tenants.b)), 404, "job_not_found")  # another project
    error(api.get(f"/api/jobs/{job.pk}/events", **sse, **auth(tenants.master)), 404, "job_not_found")
    error(api.get("/api/jobs/00000000-0000-4000-8000-000000000000/events", **sse, **auth(tenants.a)), 404,
          "job_not_found")
    error(api.get("/api/jobs/not-a-job/events", **sse, **auth(tenants.a)), 404, "job_not_found")
    error(api.get(f"/api/jobs/{job.pk}/events", HTTP_ACCEPT="image/png", **auth(tenants.a)), 406, "not_acceptable")
    refused = api.post(f"/api/jobs/{job.pk}/events", **sse, **auth(tenants.a))
    error(refused, 405, "method_not_allowed")
    assert refused["Allow"] == "GET, OPTIONS"
    # A HEAD would hold a stream open to send no body.
    head = api.head(f"/api/jobs/{job.pk}/events", **sse, **auth(tenants.a))
    assert head.status_code == 405 and head["Content-Type"] == "application/json"


@pytest.mark.parametrize("accept", [EVENT_STREAM, "text/*", "*/*", None])
def test_job_events_answer_the_stream_to_an_event_stream_accept_or_none(api, tenants, accept):
    job = queued_row(tenants)
    Job.objects.filter(pk=job.pk).update(status="failed", finished_at=timezone.now(), error_code="job_crashed")
    extra = {"HTTP_ACCEPT": accept} if accept else {}
    response = api.get(f"/api/jobs/{job.pk}/events", **extra, **auth(tenants.a))
    assert response.status_code == 200 and response["Content-Type"] == EVENT_STREAM
    body = b"".join(response.streaming_content).decode()
    polled = api.get(f"/api/jobs/{job.pk}", **auth(tenants.a)).content.decode()
    assert body == f"event: job\nid: 3\ndata: {polled}\n\n"


def test_job_events_can_be_resumed_by_a_browser_from_another_origin(api):
    preflight = api.options("/api/jobs/00000000-0000-4000-8000-000000000000/events",
                            HTTP_ORIGIN="http://localhost:3001", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key, last-event-id")
    assert preflight.status_code == 200
    allowed = {h.strip() for h in preflight["Access-Control-Allow-Headers"].split(",")}
    assert {"x-api-key", "last-event-id"} <= allowed


def test_job_events_get_one_access_line_with_the_request_id(api, tenants):
    from banatie.middleware import RequestIdLogFilter

    job = queued_row(tenants)
    Job.objects.filter(pk=job.pk).update(status="canceled", finished_at=timezone.now(), cancel_reason="requested",
                                         error_code="job_canceled")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(RequestIdLogFilter())
    access = logging.getLogger("banatie.access")
    access.addHandler(handler)
    try:
        response = api.get(f"/api/jobs/{job.pk}/events", HTTP_X_REQUEST_ID="trace-sse", **auth(tenants.a))
        assert b"".join(response.streaming_content).count(b"event: job") == 1
    finally:
        access.removeHandler(handler)
    lines = [r.getMessage() for r in records if r.request_id == "trace-sse"]
    assert len(lines) == 1 and lines[0].startswith("GET /api/jobs/{jobId}/events 200 ")
    assert lines[0].endswith("route=job-events")


# --- the server model ------------------------------------------------------------------------

STREAMS = 200


@pytest.mark.slow
def test_hundreds_of_open_streams_on_one_web_process_each_get_their_terminal_event(stack_factory, tenants, emulator):
    from tests.gemini_emulator import Reply
    from tests.test_server_model import _postgres_connections

    stack = stack_factory(WORKER_CONCURRENCY=str(STREAMS + 20), DATABASE_POOL_SIZE="4", SQLITE_POOL_SIZE="4",
                          REDIS_POOL_SIZE="10", BANATIE_RATE_LIMIT="10000/h", SSE_KEEPALIVE_SECONDS="2")
    # Every job waits upstream until all streams are open (bounded: 60 s).
    release = threading.Event()
    emulator.fail_all(Reply.custom(lambda emu, rec: (release.wait(60), emu.default_body(rec))[1]))
    opened = threading.Semaphore(0)

    def one(job_id: str) -> Stream:
        first = threading.Event()

        def note(event: Event) -> None:
            if not first.is_set():
                first.set()
                opened.release()

        return read_stream(stack.url, job_id, headers(tenants.a), on_event=note, timeout=90)

    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            job_ids = list(pool.map(lambda _: start_job(stack.url, tenants.a), range(STREAMS)))
        with ThreadPoolExecutor(max_workers=STREAMS) as pool:
            streams = [pool.submit(one, job_id) for job_id in job_ids]
            deadline = time.monotonic() + 60
            for _ in range(STREAMS):
                if not opened.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    failed = [repr(s.exception()) for s in streams if s.done() and s.exception()]
                    raise AssertionError(f"a stream did not open in time; {len(failed)} failed: {failed[:3]}")
            while emulator.served < STREAMS and time.monotonic() < deadline:
                time.sleep(0.1)  # every job upstream: each stream has had its running event
            # Every stream has its first event and none has ended: one gevent web process
            # holds them all open at once.
            still_open = sum(1 for s in streams if not s.done())
            redis_clients = len(redis.Redis.from_url(stack.env["REDIS_URL"]).client_list())
            database = _postgres_connections(stack)
            time.sleep(4)  # silence past SSE_KEEPALIVE_SECONDS=2: a keep-alive on every stream
            release.set()
            results = [s.result(timeout=90) for s in streams]
    finally:
        release.set()
    assert emulator.served == STREAMS and still_open == STREAMS, (emulator.served, still_open)
    for stream in results:
        assert stream.status == 200 and stream.statuses[-1] == "succeeded", stream.statuses
        ids = [event.id for event in stream.events]
        assert ids == sorted(set(ids)) and ids[-1] == expected_id(stream.events[-1].data), ids
        assert "keep-alive" in stream.comments, stream.items[:-1]
    # Nothing scales with the streams: one pub/sub listener per process, the bounded pools.
    assert redis_clients <= 60, redis_clients
    assert database is None or max(database.values()) <= 4, database
