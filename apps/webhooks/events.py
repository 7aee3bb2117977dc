"""The events an endpoint may subscribe to: the job transitions the jobs core reports
(apps.jobs.transitions), under the same names."""
from __future__ import annotations

from apps.jobs.transitions import EVENTS, JOB_CANCELED, JOB_FAILED, JOB_SUCCEEDED

# An endpoint registered without `events` hears how each job ended.
DEFAULT_EVENTS = (JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELED)
ALLOWED_EVENTS = EVENTS
