"""The "job finished" (and "job changed") signal. A worker PUBLISHes the job id on one channel
once the outcome is committed (`<id>`), or once a job started or went back to the queue
(`<id> changed`, for the event streams); each process has ONE listener (a thread, a greenlet under gevent) subscribed
to it, which wakes the requests of that process waiting on that job. So a thousand waiting
requests cost a thousand small Events and one Redis connection, not a thousand BLPOPs.

Nothing is lost between a waiter's check and its wait: a waiter registers first, then
reads the row, then waits (apps.jobs.services.job_wait). Pub/sub keeps nothing for a
listener that is not connected, so every (re)subscription wakes all waiters of the process
to read their row again. When the listener loses Redis it wakes them all too, and
signal_available() is False until it is back: the waiters answer with the job as it is
(a 202) instead of waiting for a signal that cannot come."""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings

from banatie.redis_clients import short_commands_client

logger = logging.getLogger(__name__)

CHANNEL = "banatie:jobs:done"
_CHANGED = " changed"  # suffix of a non-terminal change
_POLL_SECONDS = 5.0  # the listener's read timeout; its health check runs this often


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=_POLL_SECONDS * 2, socket_connect_timeout=settings.REDIS_TIMEOUT_SECONDS,
        health_check_interval=_POLL_SECONDS,
    )


def signal_job_done(job_id: str) -> None:
    """Best effort: if Redis is down, waiters time out into a 202 (or are woken by their
    listener's next subscription) and the row has the truth."""
    _publish(job_id)


def signal_job_changed(job_id: str) -> None:
    """The job started, or went back to the queue: wakes event streams, not sync waiters."""
    _publish(job_id + _CHANGED)


def _publish(message: str) -> None:
    try:
        short_commands_client().publish(CHANNEL, message)
    except redis.RedisError as exc:
        logger.warning("could not signal job change %s: %s", message, type(exc).__name__)


class _Listener:
    """This process's subscription and the Events of its waiters, by job id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # job id -> Events; `_done` wake on the job's end only, `_changes` on every change.
        self._done: dict[str, set[threading.Event]] = {}
        self._changes: dict[str, set[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.subscribed = threading.Event()
        self.down = False  # the last attempt to listen failed

    def add(self, job_id: str, event: threading.Event, *, every_change: bool) -> None:
        with self._lock:
            (self._changes if every_change else self._done).setdefault(job_id, set()).add(event)
            self._ensure_running()

    def remove(self, job_id: str, event: threading.Event) -> None:
        with self._lock:
            for table in (self._done, self._changes):
                events = table.get(job_id)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del table[job_id]

    def _wake(self, job_id: str | None, *, finished: bool = True) -> None:
        """Wake the waiters of ``job_id`` (only the every-change ones unless it finished),
        or every waiter when None."""
        with self._lock:
            if job_id is None:
                events = [e for table in (self._done, self._changes) for waiting in table.values() for e in waiting]
            else:
                events = list(self._changes.get(job_id, ()))
                if finished:
                    events.extend(self._done.get(job_id, ()))
        for event in events:
            event.set()

    def _ensure_running(self) -> None:
        # Also after a fork (gunicorn forks its workers): the parent's thread is not ours.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self.subscribed.clear()
            self._thread = threading.Thread(target=self._run, name="banatie-job-done-listener", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        backoff = 0.2
        while True:
            pubsub = _client(settings.REDIS_URL).pubsub()
            try:
                pubsub.subscribe(CHANNEL)
                while True:
                    message = pubsub.get_message(timeout=_POLL_SECONDS)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        backoff = 0.2
                        self.down = False
                        self.subscribed.set()
                        self._wake(None)  # anything may have finished while we were away
                    elif message["type"] == "message":
                        data = message["data"].decode()
                        if data.endswith(_CHANGED):
                            self._wake(data[: -len(_CHANGED)], finished=False)
                        else:
                            self._wake(data)
            except (redis.RedisError, OSError) as exc:
                self.subscribed.clear()
                self.down = True
                self._wake(None)
                logger.warning("job-done listener lost Redis (%s); reconnecting in %.1fs", type(exc).__name__, backoff)
            finally:
                try:
                    pubsub.close()
                except (redis.RedisError, OSError):
                    pass
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


_listener = _Listener()


@contextmanager
def job_done_watch(job_id: str, event: threading.Event | None = None, *,
                   every_change: bool = False) -> Iterator[threading.Event]:
    """An Event set when ``job_id`` may have finished (with ``every_change``: may have
    changed status); read the row to know. Register before reading the row, so a change
    between the read and the wait is not missed. ``event``: one the caller also sets."""
    event = event or threading.Event()
    _listener.add(job_id, event, every_change=every_change)
    try:
        yield event
    finally:
        _listener.remove(job_id, event)


def signal_available() -> bool:
    """False while this process's listener cannot reach Redis."""
    return not _listener.down


def listener_subscribed(timeout: float) -> bool:
    """True once this process's listener is subscribed (the tests wait for it)."""
    return _listener.subscribed.wait(timeout)
