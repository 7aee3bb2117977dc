"""Job transitions other apps may record in the same transaction as the new state: the
one hook the jobs core offers (the webhooks app's outbox uses it). The core knows no app:
apps register a listener from their AppConfig.ready().

A listener is called BEFORE the state-changing UPDATE (or the INSERT) with ``(job, event)``;
``event`` is one of EVENTS or JOB_CREATED. It answers None (nothing to record: the UPDATE then stays one autocommit
statement, no transaction is opened) or a recorder. When any listener answered a recorder,
the core runs the UPDATE and then the recorders inside one ``transaction.atomic()``, the
recorders only if the UPDATE changed the row, with the job as it is now stored: what they
write commits or rolls back with the state, and a transition that lost its race (the job
was canceled or claimed meanwhile) records nothing. Recorders must not do I/O beyond the
database (publish with ``transaction.on_commit``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from apps.jobs.models import Job

JOB_STARTED = "job.started"  # claimed by a worker (again after a lost lease: each claim is one)
JOB_SUCCEEDED = "job.succeeded"
JOB_FAILED = "job.failed"
JOB_CANCELED = "job.canceled"  # requested or past its Cancel-After
EVENTS = (JOB_STARTED, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELED)
# Not an event a client is told about: the job's INSERT. A recorder may refuse the job by
# raising (an ApiError: the insert is rolled back and the client gets that error).
JOB_CREATED = "job.created"

Recorder = Callable[["Job"], None]
Listener = Callable[["Job", str], Recorder | None]

_LISTENERS: list[Listener] = []


def transition_listen(listener: Listener) -> None:
    """Register ``listener`` for every transition (once per process; a second registration of
    the same function is ignored, so a re-run ready() does not record twice)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def transition_run(job: Job, event: str, change: Callable[[], bool]) -> bool:
    """Apply a transition: ``change()`` runs the conditional UPDATE and, when it changed the
    row, brings ``job`` up to date (sets the written values or re-reads it); it returns
    whether it changed the row. Returns what ``change()`` returned."""
    recorders = [recorder for listener in _LISTENERS if (recorder := listener(job, event)) is not None]
    if not recorders:
        return change()
    with transaction.atomic():
        changed = change()
        if changed:
            for record in recorders:
                record(job)
    return changed
