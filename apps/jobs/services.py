"""Job use cases: create (and enqueue after commit), run (claim, execute, finish), cancel,
expire (Cancel-After), sweep, wait. What a job *does* belongs to its kind (apps.jobs.kinds); this module only moves it
through its states.

Guarantees:
- job_create: the row exists before the task is published (on_commit); a broker outage
  marks the job failed with queue_unavailable instead of leaving it queued forever; an
  Idempotency-Key replay returns the original job and creates (and stores) nothing.
- job_run: safe to run twice, concurrently or in sequence: the conditional claim lets one
  delivery work while the lease is fresh, and a finished job is never run again.
- job_sweep: safe to run concurrently; each re-publish is won by one sweep only.
- job_cancel / job_expire: a queued job never reaches the upstream; a running job's attempt
  can no longer record anything (its result and what it stored are discarded) and its
  worker stops waiting on the upstream call as soon as it hears of it.
- job_wait: never raises for slowness or a Redis outage; it returns the row as it is.
- every transition a client can be told about (claim → job.started; finish → job.succeeded /
  job.failed; cancel or deadline → job.canceled) goes through apps.jobs.transitions: what its
  listeners record commits in the same transaction as the new state, or not at all.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from apps.jobs.abandon import Abandoned, run_abandonable
from apps.jobs.broker import task_ids_held
from apps.jobs.db import connection_release
from apps.jobs.deadline import job_deadline
from apps.jobs.errors import (
    ClaimUnavailable, DeadlineExceeded, IdempotencyKeyReused, JobAlreadyFinished, JobCanceled, JobCrashed, JobError,
    QueueUnavailable, TooManyAttempts,
)
from apps.jobs.heartbeat import job_running, running_jobs_take
from apps.jobs.idempotency import Idempotency
from apps.jobs.kinds import kind_get
from apps.jobs.models import Job
from apps.jobs.metering import CallUsage, job_metered, usage_summary
from apps.jobs.options import JobOptions
from apps.jobs.pacing import pacing_limited, slot_take, upstream_slot_reserved
from apps.jobs.task_names import JOB_RUN
from apps.jobs.transitions import (
    JOB_CANCELED, JOB_CREATED, JOB_FAILED, JOB_STARTED, JOB_SUCCEEDED, transition_run,
)
from apps.jobs.wakeup import job_done_watch, signal_available, signal_job_changed, signal_job_done
from apps.keys.models import ApiKey
from banatie import metrics
from banatie.celery import app as celery_app
from banatie.request_context import current_log_fields, current_request_id, log_fields_add
from banatie.timefmt import iso

logger = logging.getLogger(__name__)

_BROKER_ERRORS = (KombuOperationalError, RedisError, OSError)


@dataclass(frozen=True)
class JobCreated:
    job: Job
    replayed: bool  # True: an Idempotency-Key replay answered with the original job


def job_create(
    *,
    key: ApiKey,
    kind: str,
    request: dict[str, Any] | Callable[[], dict[str, Any]],
    job_options: JobOptions | None = None,
) -> JobCreated:
    """Save a queued job and publish its task once the row is committed.

    ``request`` is the job's input, or a function that builds it (e.g. stores uploads):
    it is only called when this is not a replay. ``job_options.cancel_after``: the job ends
    canceled (deadline) if it has not finished that long after now. With
    ``job_options.idempotency``: the same key from
    the same API key within IDEMPOTENCY_TTL_HOURS returns the original job; the same key
    with another body raises IdempotencyKeyReused. Concurrent duplicates collide on a
    unique constraint, so exactly one job is created; the loser's stored input is released."""
    job_kind = kind_get(kind)
    options = job_options or JobOptions()
    idempotency = options.idempotency
    if idempotency is not None:
        existing = _idempotent_original(key=key, idempotency=idempotency)
        if existing is not None:
            return JobCreated(existing, replayed=True)
    payload = request() if callable(request) else request
    now = timezone.now()
    job = Job(
        api_key=key, project_id=key.project_scope, kind=kind, request=payload,
        created_at=now, enqueued_at=now,
        cancel_after=now + options.cancel_after if options.cancel_after else None,
        idempotency_key=idempotency.key if idempotency else None,
        request_hash=idempotency.fingerprint if idempotency else "",
    )

    def insert() -> bool:
        job.save(force_insert=True)
        transaction.on_commit(lambda: job_enqueue(job=job))  # at once when no transaction is open
        return True

    try:
        # A listener (the usage app's quotas) may refuse the job: it raises, nothing is inserted.
        transition_run(job, JOB_CREATED, insert)
    except IntegrityError:
        # Not stored, whatever comes next: a replay's original job has its own copies, and a
        # refusal (IdempotencyKeyReused from the lookup below) keeps none of its uploads.
        job_kind.release_request(payload)
        existing = _idempotent_original(key=key, idempotency=idempotency) if idempotency else None
        if existing is None:
            raise
        return JobCreated(existing, replayed=True)
    except BaseException:
        job_kind.release_request(payload)  # refused or not stored: keep none of its uploads
        raise
    metrics.jobs_created.labels(kind=kind).inc()
    log_fields_add(job_id=str(job.id))  # the rest of this request's lines (its access line too)
    logger.info("job %s created (%s)", job.id, kind)
    return JobCreated(job, replayed=False)


def _idempotent_original(*, key: ApiKey, idempotency: Idempotency) -> Job | None:
    """The live job this Idempotency-Key already names, if any. An expired key is freed."""
    job = Job.objects.filter(api_key=key, idempotency_key=idempotency.key).first()
    if job is None:
        return None
    if job.created_at < timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS):
        Job.objects.filter(pk=job.pk).update(idempotency_key=None)
        return None
    if job.request_hash != idempotency.fingerprint:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {idempotency.key!r} was first used at {iso(job.created_at, timespec='seconds')} "
            f"for a different request (job {job.id}).",
            details={"jobId": str(job.id)},
        )
    return job


def _publish(job_id: str) -> None:
    # By name: services never import tasks (workers/tasks.py registers JOB_RUN).
    # The request's log context travels with the message (Celery headers), so the worker's
    # log lines of this job carry the same requestId, keyPrefix and projectId.
    fields = current_log_fields()
    celery_app.send_task(JOB_RUN, (job_id,), task_id=job_id, headers={
        "request_id": current_request_id(), "key_prefix": fields.key_prefix, "project_id": fields.project_id})


def job_enqueue(*, job: Job) -> None:
    """Publish the job's task (task id = job id). If the broker cannot be reached within a
    few seconds, the job is failed with queue_unavailable so nothing waits on it and the
    client gets a 503 it can retry."""
    try:
        _publish(str(job.id))
    except _BROKER_ERRORS as exc:
        logger.error("enqueue of job %s failed: %s", job.id, type(exc).__name__)
        failure = _failure(QueueUnavailable())
        # The client is told to retry: the same Idempotency-Key must then work.
        failure["idempotency_key"] = None
        _finish(job, status=Job.Status.FAILED, only_if_status=Job.Status.QUEUED, **failure)


def job_sweep() -> dict[str, int]:
    """Recover jobs whose message or worker was lost, and end jobs past their deadline.
    Safe to run concurrently and repeatedly: each re-publish is preceded by a conditional
    update that only one sweep can win, so nothing is published twice by two sweeps.

    - queued or running past its Cancel-After → canceled (deadline);
    - queued for longer than SWEEP_QUEUED_AFTER_SECONDS and its message no longer in the
      broker (neither waiting nor delivered to a worker within SWEEP_QUEUED_AFTER_SECONDS)
      → published again (same task id);
    - running with an expired lease → back to queued and published, or failed with
      too_many_attempts once JOB_MAX_ATTEMPTS deliveries were used up.
    """
    now = timezone.now()
    counts = {"expired": 0, "republished": 0, "recovered": 0, "failed": 0}
    for job in Job.objects.filter(status__in=Job.UNFINISHED, cancel_after__lte=now)[:500]:
        if job_expire(job=job):
            counts["expired"] += 1
    stale = now - timedelta(seconds=settings.SWEEP_QUEUED_AFTER_SECONDS)
    waiting = Job.objects.filter(status=Job.Status.QUEUED, enqueued_at__lt=stale).order_by("created_at")[:500]
    held = task_ids_held(delivered_within=settings.SWEEP_QUEUED_AFTER_SECONDS) if waiting else None
    for job in waiting:
        if held is not None and str(job.pk) in held:
            continue  # its message is waiting its turn (a backlog), not lost
        won = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, enqueued_at=job.enqueued_at).update(enqueued_at=now)
        if won and _try_publish(str(job.pk)):
            counts["republished"] += 1
    for job in Job.objects.filter(status=Job.Status.RUNNING, lease_expires_at__lt=now)[:500]:
        same_lease = Q(lease_expires_at=job.lease_expires_at)
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            if _finish(job, status=Job.Status.FAILED, condition=same_lease, **_too_many_attempts(job.attempts)):
                counts["failed"] += 1
        elif Job.objects.filter(same_lease, pk=job.pk, status=Job.Status.RUNNING).update(
                status=Job.Status.QUEUED, lease_expires_at=None, enqueued_at=now):
            signal_job_changed(str(job.pk))
            if _try_publish(str(job.pk)):
                counts["recovered"] += 1
    if any(counts.values()):
        logger.warning("sweep: %s", counts)
    return counts


def _try_publish(job_id: str) -> bool:
    """Publish a job that is already queued; when the broker is unreachable it stays
    queued and the next sweep publishes it."""
    try:
        _publish(job_id)
        return True
    except _BROKER_ERRORS as exc:
        logger.warning("could not publish queued job %s (the sweep retries): %s", job_id, type(exc).__name__)
        return False


def job_claim(*, job_id: str) -> Job | None:
    """Atomically take the job: queued, or running with an expired lease (its worker died),
    and not past its Cancel-After. Returns None when another delivery holds it, it is
    finished (or canceled), or its deadline passed (then it is ended as canceled).

    The row is read first so the transition's listeners (apps.jobs.transitions) see the job
    before it changes; the UPDATE is conditional on what was read (status and attempts), so
    of two concurrent deliveries exactly one claims it."""
    now = timezone.now()
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        return None
    if job.cancel_after is not None and job.cancel_after <= now:
        job_expire(job=job)
        return None
    if job.status == Job.Status.RUNNING and (job.lease_expires_at is None or job.lease_expires_at >= now):
        return None  # another delivery holds it
    values = {"status": Job.Status.RUNNING, "started_at": now, "attempts": job.attempts + 1,
              "lease_expires_at": now + timedelta(seconds=settings.JOB_LEASE_SECONDS)}

    def claim() -> bool:
        claimed = (
            Job.objects.filter(pk=job.pk, status=job.status, attempts=job.attempts)
            .filter(Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, lease_expires_at__lt=now))
            .filter(Q(cancel_after__isnull=True) | Q(cancel_after__gt=now))
            .update(**values)
        )
        if claimed:
            _set(job, values)
        return bool(claimed)

    if not transition_run(job, JOB_STARTED, claim):
        return None
    queued = max(0.0, (now - (job.enqueued_at or job.created_at)).total_seconds())
    metrics.job_queue_seconds.labels(kind=job.kind).observe(queued)
    logger.info("job %s started (attempt %d) after %.3f s in the queue", job.id, job.attempts, queued)
    signal_job_changed(job_id)
    return job


def _set(job: Job, values: dict[str, Any]) -> None:
    """``job`` as the UPDATE that wrote ``values`` left its row (plain values only)."""
    for name, value in values.items():
        setattr(job, name, value)


def job_run(*, job_id: str) -> None:
    """Run one job to its end. Idempotent: a second delivery is a no-op, and an attempt
    whose lease was taken over (or whose job was canceled) cannot record its outcome (or
    keep what it stored); once the worker hears the job was canceled, it stops waiting on
    its upstream call.

    Raises ClaimUnavailable when the database cannot be reached to claim the job (the
    task retries). No database connection is held while the job's upstream calls run."""
    with upstream_slot_reserved(_upstream_slot_wait(job_id)):
        _job_run(job_id)


def _job_run(job_id: str) -> None:
    try:
        job = job_claim(job_id=job_id)
    except DatabaseError as exc:
        raise ClaimUnavailable(f"could not claim job {job_id}: {type(exc).__name__}") from exc
    if job is None:
        logger.info("job %s already taken, finished or past its deadline; skipping this delivery", job_id)
        return
    connection_release()
    log_fields_add(job_id=job_id, project_id=job.project_id or "")
    kind = kind_get(job.kind)
    if job.attempts > settings.JOB_MAX_ATTEMPTS:
        outcome = {"status": Job.Status.FAILED, "usage": _usage(job, []), **_too_many_attempts(job.attempts - 1)}
    else:
        wake = threading.Event()  # set when the job may have been canceled
        # The heartbeat keeps the lease while it runs; a cancel's signal or a beat that finds
        # the job gone wakes this attempt.
        with job_running(job, wake), job_done_watch(job_id, wake), job_metered() as meter:
            try:
                outcome = _outcome(job, kind.run, wake)
            except Abandoned:
                logger.info("job %s attempt %d was canceled while running; its work was abandoned",
                            job.id, job.attempts)
                _usage_of_canceled(job, meter.calls)
                return
        outcome["usage"] = _usage(job, meter.calls, result=outcome.get("result"))
    if not _finish(job, **outcome):
        kind.discard_result(outcome.get("result"))
        logger.warning("job %s attempt %d could not record its outcome (canceled or taken over); "
                       "its result was discarded", job.id, job.attempts)


def _usage(job: Job, calls: list[CallUsage], *, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job's stored usage: this attempt's upstream calls, and the images its result holds."""
    images = kind_get(job.kind).images(result) if result else 0
    model = (result or {}).get("model") or job.request.get("model")
    return usage_summary(calls, images=images, model=model)


def _usage_of_canceled(job: Job, calls: list[CallUsage]) -> None:
    """A running job was canceled: what its abandoned attempt's calls consumed still counts."""
    if calls:
        Job.objects.filter(pk=job.pk, status=Job.Status.CANCELED, attempts=job.attempts).update(
            usage=_usage(job, calls))


def _upstream_slot_wait(job_id: str) -> str | None:
    """With GEMINI_MAX_CONCURRENCY or GEMINI_MAX_RPM set, wait while the job is still queued
    until an upstream slot is free (apps.jobs.pacing) and return its token; stop waiting
    (None) as soon as the job is canceled or past its Cancel-After, which the claim then
    sees. No database connection is held while waiting."""
    if not pacing_limited():
        return None
    try:
        job = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).first()
    except DatabaseError:
        return None  # the claim reports it
    finally:
        connection_release()
    model = None if job is None else kind_get(job.kind).upstream_model
    if job is None or model is None or (name := model(job)) is None:
        return None
    cancel_after = job.cancel_after
    next_look = time.monotonic() + 5.0

    with job_done_watch(job_id) as ended:  # a cancel wakes us at once
        def give_up(wait: float) -> bool:
            nonlocal next_look
            if cancel_after is not None:
                wait = min(wait, max(0.0, (cancel_after - timezone.now()).total_seconds()))
            if ended.wait(wait) or time.monotonic() >= next_look:
                ended.clear()
                next_look = time.monotonic() + 5.0
                try:
                    if not Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).exists():
                        return True
                except DatabaseError:
                    pass
                finally:
                    connection_release()
            return cancel_after is not None and cancel_after <= timezone.now()

        return slot_take(name, give_up=give_up)


def jobs_hand_back() -> int:
    """This worker is stopping: put the jobs it is still running back in the queue at once
    (not a lease later), so the next worker starts them now. The attempts that were cut
    off can no longer record anything (their claim is gone). Returns how many."""
    handed = 0
    now = timezone.now()
    for job_id, attempt in running_jobs_take().items():
        if Job.objects.filter(pk=job_id, attempts=attempt, status=Job.Status.RUNNING).update(
                status=Job.Status.QUEUED, lease_expires_at=None, enqueued_at=now):
            handed += 1
            signal_job_changed(job_id)
            _try_publish(job_id)
    if handed:
        logger.warning("handed %d running job(s) back to the queue", handed)
    return handed


def job_cancel(*, job: Job) -> Job:
    """Cancel a queued or running job at once (cancelReason "requested"). Canceling a
    canceled job again changes nothing; a succeeded or failed one raises JobAlreadyFinished."""
    if not _end_early(job, reason=Job.CancelReason.REQUESTED, err=JobCanceled()):
        job.refresh_from_db()
        if job.status != Job.Status.CANCELED:
            raise JobAlreadyFinished(
                f"Job {job.id} already {job.status}; only queued or running jobs can be canceled.",
                details={"status": job.status, "jobId": str(job.id)},
            )
    return job


def job_expire(*, job: Job) -> bool:
    """End a queued or running job whose Cancel-After has passed (cancelReason "deadline").
    Returns whether this call ended it."""
    if job.cancel_after is None or job.cancel_after > timezone.now():
        return False
    return _end_early(job, reason=Job.CancelReason.DEADLINE, err=DeadlineExceeded(
        f"The job did not finish before its Cancel-After deadline ({iso(job.cancel_after, timespec='seconds')})."))


def job_expire_if_due(job: Job) -> Job:
    """``job`` as a reader should see it: canceled once its deadline passed, even if no sweep
    or worker has noticed yet."""
    if job.status in Job.UNFINISHED and job.cancel_after is not None and job.cancel_after <= timezone.now():
        job_expire(job=job)
        job.refresh_from_db()
    return job


def _end_early(job: Job, *, reason: str, err: JobError) -> bool:
    """Cancel the job if it has not ended yet (whatever attempt runs it: that attempt's
    finish then fails and discards its result). Reloads ``job`` when this call ended it."""
    values = {"status": Job.Status.CANCELED, "cancel_reason": reason, "finished_at": timezone.now(),
              "lease_expires_at": None, "usage": _usage(job, []), **_failure(err)}

    def cancel() -> bool:
        if not Job.objects.filter(pk=job.pk, status__in=Job.UNFINISHED).update(**values):
            return False
        job.refresh_from_db()  # a worker may have claimed it since ``job`` was read
        return True

    if not transition_run(job, JOB_CANCELED, cancel):
        return False
    _count_finished(job)
    logger.info("job %s canceled (%s)", job.id, reason)
    kind_get(job.kind).release_request(job.request)
    signal_job_done(str(job.pk))  # sync waiters answer at once; the running worker lets go
    return True


def _too_many_attempts(started: int) -> dict[str, Any]:
    return _failure(TooManyAttempts(f"The job was started {started} times without finishing."))


def _failure(err: JobError) -> dict[str, Any]:
    """The stored form of a job's error (JobError.stored rebuilds it)."""
    return {"error_code": err.code, "error_message": err.message, "error_details": err.details,
            "retry_after": err.retry_after if err.retry_after is not None else err.default_retry_after}


def _seconds_to_deadline(job: Job) -> float | None:
    if job.cancel_after is None:
        return None
    return max(0.0, (job.cancel_after - timezone.now()).total_seconds())


def _outcome(job: Job, run: Callable[[Job], dict[str, Any]], wake: threading.Event) -> dict[str, Any]:
    """Run the job's work, abandoned (Abandoned raised) once the job is no longer this
    attempt's: canceled, or past its Cancel-After (then this call ends it)."""
    kind = kind_get(job.kind)
    abandoned = threading.Event()

    def still_wanted() -> bool:
        job_expire(job=job)  # a no-op unless the deadline passed
        try:
            return Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).exists()
        except DatabaseError:
            return True  # cannot tell: keep going; the heartbeat and the finish decide
        finally:
            connection_release()

    seconds = settings.JOB_SOFT_TIME_LIMIT
    to_deadline = _seconds_to_deadline(job)
    if to_deadline is not None:
        seconds = min(seconds, to_deadline)
    try:
        with job_deadline(seconds, abandoned=abandoned):
            result = run_abandonable(lambda: run(job), abandoned=abandoned, wake=wake, still_wanted=still_wanted,
                                     next_check=lambda: _seconds_to_deadline(job), discard=kind.discard_result)
        return {"status": Job.Status.SUCCEEDED, "result": result}
    except Abandoned:
        raise
    except JobError as exc:
        if job_expire(job=job):  # it ran into its Cancel-After: canceled (deadline), not failed
            raise Abandoned() from None
        return {"status": Job.Status.FAILED, **_failure(exc)}
    except Exception:
        # Last resort so the job ends and its waiter wakes; the traceback is logged here
        # (provider code never lets SDK exceptions, which can hold the API key, get this far).
        logger.exception("job %s crashed", job.id)
        return {"status": Job.Status.FAILED, **_failure(JobCrashed())}


def _finish(job: Job, *, status: str, only_if_status: str = Job.Status.RUNNING, condition: Q | None = None,
            **fields: Any) -> bool:
    """Record the outcome once (``job`` then shows it), release the job's stored input, then
    wake the waiters (in that order: a client that sees the answer sees the cleaned-up
    storage). The status (and attempts) condition makes a late delivery unable to overwrite
    the outcome."""
    values = {"status": status, "finished_at": timezone.now(), "lease_expires_at": None, **fields}

    def finish() -> bool:
        # attempts: only the attempt that holds the claim may finish the job.
        updated = (Job.objects.filter(condition or Q(), pk=job.pk, status=only_if_status, attempts=job.attempts)
                   .update(**values))
        if updated:
            _set(job, values)
        return bool(updated)

    if not transition_run(job, JOB_SUCCEEDED if status == Job.Status.SUCCEEDED else JOB_FAILED, finish):
        return False
    _count_finished(job)
    if job.started_at is not None and only_if_status == Job.Status.RUNNING:
        ran = max(0.0, (job.finished_at - job.started_at).total_seconds())
        metrics.job_run_seconds.labels(kind=job.kind).observe(ran)
        logger.info("job %s %s%s after %.3f s running", job.id, status,
                    f" ({job.error_code})" if job.error_code else "", ran)
    kind_get(job.kind).release_request(job.request)
    signal_job_done(str(job.pk))
    return True


def _count_finished(job: Job) -> None:
    """Once per job: only the call whose conditional UPDATE ended the job gets here."""
    metrics.jobs_finished.labels(kind=job.kind, status=job.status, error_code=job.error_code or "none").inc()


def job_wait_counted(*, job: Job, timeout: float) -> Job:
    """job_wait for a synchronous request, its outcome counted in
    banatie_sync_wait_outcomes_total (a wait that ends before the job is `timed_out_202`,
    also on /v1, which answers it 504)."""
    job = job_wait(job=job, timeout=timeout)
    if job.status == Job.Status.CANCELED:
        outcome = "canceled"
    else:
        outcome = "answered" if job.is_finished else "timed_out_202"
    metrics.sync_wait_outcomes.labels(outcome=outcome).inc()
    return job


def job_wait(*, job: Job, timeout: float) -> Job:
    """Wait up to ``timeout`` seconds for the job to finish; return the fresh row. No
    database connection is held while waiting; a woken waiter reads its row again and
    goes back to waiting if the job is not finished yet (a wake-up only says "maybe").
    A job whose Cancel-After passes during the wait is ended (canceled) by the waiter.
    While Redis is unreachable no wake-up can come: the row is returned as it is."""
    deadline = time.monotonic() + timeout
    with job_done_watch(str(job.pk)) as maybe_done:
        while True:
            maybe_done.clear()  # before the read: a finish after it sets the event again
            job.refresh_from_db()
            job_expire_if_due(job)
            left = deadline - time.monotonic()
            if job.is_finished or left <= 0 or not signal_available():
                return job
            connection_release()
            to_deadline = _seconds_to_deadline(job)
            maybe_done.wait(left if to_deadline is None else min(left, to_deadline + 0.01))
