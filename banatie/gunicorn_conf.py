"""gunicorn settings shared by the Procfile, `make run` and the benchmarks.

gevent workers: a synchronous API call waits seconds for its job, and under gevent that
wait is a greenlet parked on an Event (apps/jobs/wakeup.py), not a thread, so one process
holds thousands of waiting requests (docs/performance.md has the alternatives measured).
"""
from banatie.env import env_int, env_str
from banatie.settings import (
    LOG_FORMAT, LOG_LEVEL, SHUTDOWN_GRACE_SECONDS, SYNC_WAIT_SECONDS, TRUSTED_PROXIES, WEB_CONNECTIONS,
)

bind = f"{env_str('HOST', '127.0.0.1')}:{env_int('PORT', 3000, minimum=1, maximum=65535)}"
# gunicorn's gevent worker, with our JSON body for malformed requests (banatie/gunicorn_worker.py).
worker_class = "banatie.gunicorn_worker.GeventWorker"
workers = env_int("WEB_CONCURRENCY", 2, minimum=1, maximum=64)
# Open connections per process (waiting, slow or idle keep-alive alike); one more waits in
# the listen backlog until one closes.
worker_connections = WEB_CONNECTIONS
# Waiting requests are idle, not stuck: allow the documented SYNC_WAIT_SECONDS plus margin.
timeout = int(SYNC_WAIT_SECONDS) + 60
# SIGTERM: stop accepting, let in-flight requests finish for the same grace `make run` and
# the systemd units give the whole process before SIGKILL.
graceful_timeout = SHUTDOWN_GRACE_SECONDS
keepalive = 5
backlog = 2048
# X-Forwarded-* only from configured proxies (gunicorn's default trusts any loopback client).
forwarded_allow_ips = ",".join(TRUSTED_PROXIES)
accesslog = None
errorlog = "-"
if LOG_FORMAT == "json":
    # gunicorn's own lines (start, worker boots, timeouts) as JSON too: one format per stream.
    # (gunicorn updates its defaults with this dict key by key: every part is spelled out.)
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": LOG_LEVEL, "handlers": ["error_console"]},
        "formatters": {"json": {"()": "banatie.logs.JsonFormatter"}},
        "handlers": {"error_console": {"class": "logging.StreamHandler", "formatter": "json",
                                       "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"level": LOG_LEVEL, "handlers": ["error_console"], "propagate": False},
            # Off, as with accesslog = None (a logconfig_dict turns it on): ours is banatie.access.
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }


def child_exit(server: object, worker: object) -> None:
    """prometheus-client's multiprocess mode: a dead web worker's live gauges stop counting
    (its counters and histograms stay summed, so totals never go backwards)."""
    from banatie.settings import PROMETHEUS_MULTIPROC_DIR

    if PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, PROMETHEUS_MULTIPROC_DIR)  # type: ignore[attr-defined]


def on_starting(server: object) -> None:
    """Without the shared directory each scrape reads one web process at random (counters
    seem to jump back and forth) and no worker at all: say so once, at start."""
    from banatie.settings import PROMETHEUS_MULTIPROC_DIR

    if not PROMETHEUS_MULTIPROC_DIR:
        server.log.warning(  # type: ignore[attr-defined]
            "PROMETHEUS_MULTIPROC_DIR is unset: /metrics shows only the one web process that answers "
            "a scrape, and no worker's metrics (docs/operations.md)")
