"""Running a job's work so that the worker can stop waiting on it: the upstream call of a
job that was canceled (or passed its Cancel-After) is abandoned as soon as the worker
hears of it, instead of holding the worker's slot until Gemini answers."""
from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from apps.jobs.db import connection_release

T = TypeVar("T")


class Abandoned(Exception):
    """The job is no longer this attempt's to finish; its work was abandoned."""


def gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a requirement
        return False
    return monkey.is_module_patched("threading")


def run_abandonable(
    work: Callable[[], T], *, abandoned: threading.Event, wake: threading.Event,
    still_wanted: Callable[[], bool], next_check: Callable[[], float | None], discard: Callable[[T], None],
) -> T:
    """Run ``work`` in its own greenlet (gevent) or thread and return what it returns (or
    raise what it raises). Each time ``wake`` is set, or ``next_check()`` seconds pass, ask
    ``still_wanted()``; once it says no, set ``abandoned`` and raise Abandoned. Under gevent
    the work is killed (its upstream socket closed); in a thread it is left to end (with no
    time left, it starts no further upstream call) and whatever it returns is ``discard``ed."""
    box: dict[str, tuple[bool, Any]] = {}
    lock = threading.Lock()
    context = contextvars.copy_context()  # the job's deadline and request id go with it

    def target() -> None:
        try:
            outcome: tuple[bool, Any] = (True, context.run(work))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting side (GreenletExit included)
            outcome = (False, exc)
        finally:
            connection_release()  # a connection this greenlet/thread opened goes back to its pool
        with lock:
            late = abandoned.is_set()
            if not late:
                box["outcome"] = outcome
        if late and outcome[0]:
            discard(outcome[1])
        wake.set()

    if gevent_patched():
        import gevent

        runner: Any = gevent.spawn(target)
    else:
        runner = threading.Thread(target=target, name="banatie-job-work", daemon=True)
        runner.start()
    try:
        while True:
            wake.wait(next_check())
            wake.clear()  # before looking: a later set() is seen on the next turn
            with lock:
                if "outcome" in box:
                    break
            if still_wanted():
                continue
            with lock:
                if "outcome" not in box:
                    abandoned.set()
            if abandoned.is_set():
                raise Abandoned()
            break  # it finished while we asked: the caller's conditional finish decides
    except BaseException:
        # Abandoned, or the waiting side itself was stopped (a time limit, a shutdown):
        # the work must not outlive it holding an upstream connection.
        with lock:
            abandoned.set()
        if gevent_patched() and "outcome" not in box:
            runner.kill(block=False)
        raise
    ok, value = box["outcome"]
    if ok:
        return value
    raise value
