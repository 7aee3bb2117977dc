"""Banatie's own Prometheus families (docs/operations.md says what each one means).

One module, so every name and label set is in one place; the code where each event
happens increments them (the jobs core, the Gemini provider, the rate limit, the webhook
outbox, the sync responder). Labels hold only bounded values: a job kind, a status, an
error code, a model name, an outcome. Never a key, a prompt or a job id.

Across processes: with PROMETHEUS_MULTIPROC_DIR set (``make run``, the test stack, the
systemd units: docs/running.md), prometheus-client writes every process's values to files
in that directory, and ``/metrics`` (banatie.views.metrics) sums the web and the worker
processes' files. Without it (a plain ``pytest`` or ``manage.py shell``) the values live in
this process only. Gauges that describe the whole system (jobs in queue, running) are not
kept by any process: collectors registered here compute them at scrape time.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import Metric

# Queue and run times: a sync request waits up to 60 s, a job runs up to 120 s (300 s with
# its retries and a raised limit), so the buckets go up to 300 s.
JOB_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300, float("inf"))
# One Gemini call: image models answer in 5-30 s, text in 1-5 s; GEMINI_TIMEOUT_SECONDS is 90.
UPSTREAM_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, float("inf"))

jobs_created = Counter("banatie_jobs_created", "Jobs created (Idempotency-Key replays not counted).", ["kind"])
jobs_finished = Counter(
    "banatie_jobs_finished", "Jobs that reached a final state; error_code is \"none\" for succeeded jobs.",
    ["kind", "status", "error_code"],
)
job_queue_seconds = Histogram(
    "banatie_job_queue_seconds", "Seconds a job waited in the queue before a worker claimed it "
    "(from its last enqueue: a recovered job's second wait counts on its own).", ["kind"],
    buckets=JOB_SECONDS_BUCKETS,
)
job_run_seconds = Histogram(
    "banatie_job_run_seconds", "Seconds from a worker's claim to the job's success or failure.", ["kind"],
    buckets=JOB_SECONDS_BUCKETS,
)
upstream_requests = Counter(
    "banatie_upstream_requests", "Calls to Gemini (each retry is a call) by how they ended.", ["model", "outcome"],
)
upstream_seconds = Histogram("banatie_upstream_seconds", "Seconds one Gemini call took, whatever its outcome.",
                             ["model"], buckets=UPSTREAM_SECONDS_BUCKETS)
upstream_tokens = Counter("banatie_upstream_tokens", "Tokens Gemini reported (usageMetadata).",
                          ["model", "direction"])
rate_limited = Counter("banatie_rate_limited", "Requests refused with 429 rate_limit_exceeded (per-key budget).")
quota_rejections = Counter("banatie_quota_rejections", "Requests refused because a project's quota was used up.")
webhook_deliveries = Counter("banatie_webhook_deliveries", "Webhook delivery attempts by how they ended.",
                             ["outcome"])
sync_wait_outcomes = Counter(
    "banatie_sync_wait_outcomes", "How a synchronous job request's wait ended: answered (200 or the job's "
    "error), timed_out_202 (the wait ran out: 202, or 504 on /v1), canceled (409).", ["outcome"],
)

# Upstream call outcomes (the ``outcome`` label of banatie_upstream_requests_total).
UPSTREAM_OK = "ok"
UPSTREAM_BLOCKED = "blocked"
UPSTREAM_RATE_LIMITED = "rate_limited"
UPSTREAM_SERVER_ERROR = "server_error"
UPSTREAM_CLIENT_ERROR = "client_error"
UPSTREAM_TIMEOUT = "timeout"
UPSTREAM_UNREACHABLE = "unreachable"
UPSTREAM_INVALID = "invalid_response"
UPSTREAM_OTHER = "other"


class ScrapeCollector(Protocol):
    """prometheus-client's custom collector contract: ``collect()`` yields metric families."""

    def collect(self) -> Iterable[Metric]: ...


_collectors: list[ScrapeCollector] = []


def register_collector(collector: ScrapeCollector) -> None:
    """Add a collector computed at every scrape (an app's gauges read from the database).
    Apps call this from AppConfig.ready(): the banatie package imports no app."""
    if collector not in _collectors:
        _collectors.append(collector)


def scrape_collectors() -> list[ScrapeCollector]:
    return list(_collectors)
