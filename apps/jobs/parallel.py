"""Several upstream calls of one job at once (e.g. `n` images: Gemini refuses
candidate_count > 1, so n images are n calls). Under gevent (the worker's pool) each call
is a greenlet; without it (the tests' threads pool) a thread. Each call runs in a copy of
the caller's context, so the job's deadline (apps.jobs.deadline) bounds every one of them."""
from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from apps.jobs.abandon import gevent_patched
from apps.jobs.db import connection_release

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """One call's end: its value, or the exception it raised."""

    value: T | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_concurrently(calls: Sequence[Callable[[], T]]) -> list[Outcome[T]]:
    """Run every call at once and wait for all of them; outcomes in the calls' order. A
    failing call does not stop the others (the caller reports each one). If the waiting
    side is stopped (its job abandoned: the greenlet killed), the calls' greenlets are
    killed with it; threads are left to end on their own (with no time left on the job's
    deadline they start no further upstream call)."""
    if len(calls) == 1:  # the common case: no greenlet, no thread
        try:
            return [Outcome(value=calls[0]())]
        except Exception as exc:  # noqa: BLE001 - reported per call, re-raised by the caller
            return [Outcome(error=exc)]
    outcomes: list[Outcome[T] | None] = [None] * len(calls)

    def target(index: int, call: Callable[[], T], context: contextvars.Context) -> None:
        try:
            outcomes[index] = Outcome(value=context.run(call))
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            outcomes[index] = Outcome(error=exc)
        finally:
            connection_release()  # a connection this greenlet/thread opened goes back to its pool

    runners: list[Any] = []
    if gevent_patched():
        import gevent

        runners = [gevent.spawn(target, i, call, contextvars.copy_context()) for i, call in enumerate(calls)]
        try:
            gevent.joinall(runners)
        finally:
            gevent.killall([r for r in runners if not r.dead], block=False)
    else:
        runners = [threading.Thread(target=target, args=(i, call, contextvars.copy_context()),
                                    name=f"banatie-job-call-{i}", daemon=True) for i, call in enumerate(calls)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
    return [outcome if outcome is not None else Outcome(error=RuntimeError("call did not finish"))
            for outcome in outcomes]
