"""The cursor of GET /api/jobs: where the previous page ended (banatie.cursors signs and
reads it; this salt keeps a job cursor from being accepted by another listing)."""
from __future__ import annotations

import uuid
from datetime import datetime

from banatie.cursors import cursor_encode as _cursor_encode

CURSOR_SALT = "banatie.jobs.cursor"


def cursor_encode(*, created_at: datetime, job_id: uuid.UUID) -> str:
    """A job listing's cursor for the page after the job created at ``created_at``."""
    return _cursor_encode(salt=CURSOR_SALT, created_at=created_at, row_id=job_id)
