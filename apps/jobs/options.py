"""What a client may ask of any job it creates, beside its body, read from the request's
headers: Idempotency-Key (apps.jobs.idempotency) and Cancel-After (a deadline)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from rest_framework.request import Request

from apps.jobs.errors import CancelAfterInvalid
from apps.jobs.idempotency import Idempotency, idempotency_from

MAX_CANCEL_AFTER = timedelta(hours=24)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smh]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class JobOptions:
    idempotency: Idempotency | None = None
    cancel_after: timedelta | None = None  # from the job's creation


def job_options_from(request: Request) -> JobOptions:
    """The job options of a job-creating request; malformed headers raise their 400."""
    return JobOptions(idempotency=idempotency_from(request), cancel_after=cancel_after_from(request))


def cancel_after_from(request: Request) -> timedelta | None:
    """`Cancel-After: 30s | 2m | 1h | 90` (seconds when no unit), more than 0, at most 24 h."""
    raw = request.headers.get("Cancel-After")
    if raw is None:
        return None
    match = _DURATION.match(raw.strip().lower())
    if not match:
        raise CancelAfterInvalid(f"The Cancel-After header must be a duration like 30s, 2m, 1h or 90; got {raw[:40]!r}.",
                                 field="Cancel-After")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 < seconds <= MAX_CANCEL_AFTER.total_seconds():
        raise CancelAfterInvalid(f"The Cancel-After header must be more than 0 and at most 24 hours; got {raw[:40]!r}.",
                                 field="Cancel-After")
    return timedelta(seconds=seconds)
