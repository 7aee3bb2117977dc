"""Optional tracing (banatie/tracing.py): one trace from the HTTP request through the queue
to the Gemini call, recorded with the OpenTelemetry SDK's in-memory exporter."""
from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from banatie.tracing import tracing_setup, tracing_teardown
from tests.conftest import auth, wait_for


@pytest.fixture
def spans():  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    assert tracing_setup(exporter=exporter)
    yield exporter
    tracing_teardown()
    exporter.shutdown()  # later tests' spans (the provider stays) go nowhere


def test_tracing_is_off_without_an_otlp_endpoint(settings):
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = ""
    assert tracing_setup() is False


def test_one_trace_runs_from_the_request_through_the_queue_to_the_gemini_call(api, worker, tenants, gemini, spans):
    r = api.post("/api/text-to-image", {"prompt": "a lighthouse at dusk", "filename": "light", "autoEnhance": False},
                 format="json", **auth(tenants.a))
    assert r.status_code == 200

    def by_name() -> dict[str, list]:
        found: dict[str, list] = {}
        for span in spans.get_finished_spans():
            found.setdefault(span.name, []).append(span)
        return found

    wait_for(lambda: "POST" in " ".join(by_name()) and "run/jobs.job_run" in by_name(), 10, "the trace's spans")
    found = by_name()
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    (publish,) = found["apply_async/jobs.job_run"]
    (run,) = found["run/jobs.job_run"]
    (call,) = found["gemini generate_content"]
    assert server.attributes.get("http.route") or server.name.startswith("POST")
    assert {s.context.trace_id for s in (server, publish, run, call)} == {server.context.trace_id}
    assert publish.parent.span_id == server.context.span_id  # published inside the request
    assert run.parent.span_id == publish.context.span_id  # the worker continues the message's trace
    ancestors, span = [], call
    spans_by_id = {s.context.span_id: s for s in spans.get_finished_spans()}
    while span.parent is not None:
        span = spans_by_id[span.parent.span_id]
        ancestors.append(span)
    assert run in ancestors and ancestors[-1] == server
    assert call.kind == SpanKind.CLIENT and call.attributes["gen_ai.request.model"] == "gemini-2.5-flash-image"
    assert call.attributes["banatie.upstream.outcome"] == "ok"
    assert any(s.name.startswith(("SET", "GET", "PUBLISH", "EVALSHA", "INCRBY")) or s.attributes.get("db.system") ==
               "redis" for s in spans.get_finished_spans())  # Redis commands are in the trace too
    everything = repr([(s.name, dict(s.attributes)) for s in spans.get_finished_spans()])
    assert "bnt_" not in everything and "AIzaTEST" not in everything
