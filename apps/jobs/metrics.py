"""The jobs core's gauges for /metrics, read from the database at scrape time: what is
queued and running is the table's state, which no single process knows (a process's own
gauge would count only its own jobs and die with it)."""
from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily

from apps.jobs.selectors import jobs_unfinished_counts

logger = logging.getLogger(__name__)


class JobsStateCollector:
    """banatie_jobs_in_queue and banatie_jobs_running (prometheus-client's custom collector)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = jobs_unfinished_counts()
        except DatabaseError as exc:
            # The scrape still answers (every other family); absent gauges alert as absent.
            logger.warning("metrics: could not count jobs: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily("banatie_jobs_in_queue", "Jobs queued now (waiting for a worker).",
                                value=counts["queued"])
        yield GaugeMetricFamily("banatie_jobs_running", "Jobs a worker is running now.", value=counts["running"])
