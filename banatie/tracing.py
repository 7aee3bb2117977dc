"""Optional OpenTelemetry tracing, off by default: on when OTEL_EXPORTER_OTLP_ENDPOINT is
set, one trace from the HTTP request (Django) through the queue (Celery publish → the
worker's run) to each Gemini call (a span in workers/providers/gemini.py), with Redis
commands inside it. The OTLP/HTTP exporter reads its own OTEL_EXPORTER_OTLP_* variables
(endpoint, headers, timeout). Called by the web process (banatie/wsgi.py) and the worker
(workers/lifecycle.py), never by tests unless one asks (with an in-memory exporter)."""
from __future__ import annotations

import os

from django.conf import settings
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

_instrumented = False


def tracing_setup(*, exporter: SpanExporter | None = None) -> bool:
    """Install the tracer provider and instrument Django, Celery and Redis, once per
    process. Without ``exporter``: only when OTEL_EXPORTER_OTLP_ENDPOINT is set (batched
    OTLP/HTTP export). Returns whether tracing is on."""
    global _instrumented
    if _instrumented:
        return True
    if exporter is None:
        if not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter())
    else:
        processor = SimpleSpanProcessor(exporter)  # tests: each span exported as it ends
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # the SDK allows one per process
        provider = TracerProvider(resource=Resource.create({
            "service.name": "banatie", "service.instance.id": os.environ.get("PROCESS_NAME", str(os.getpid()))}))
        trace.set_tracer_provider(provider)
    trace.get_tracer_provider().add_span_processor(processor)  # type: ignore[attr-defined]
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()
    RedisInstrumentor().instrument()
    _instrumented = True
    return True


def tracing_teardown() -> None:
    """Undo the instrumentation (tests); the tracer provider stays, as the SDK requires."""
    global _instrumented
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    DjangoInstrumentor().uninstrument()
    CeleryInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    _instrumented = False
