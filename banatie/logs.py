"""LOG_FORMAT=json: one JSON object per line (python-json-logger), for log shippers.

Every line has timestamp, level, logger, message, requestId, jobId, keyPrefix, projectId
(null when the line belongs to no request, job or key); what a call passes in ``extra``
(the access line's method, route, status, durationMs) becomes keys of its own. The values
come from banatie.request_context through RequestIdLogFilter (banatie.middleware)."""
from __future__ import annotations

import json
import logging.config
from datetime import datetime, timezone
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

_FIELDS = ["levelname", "name", "message", "request_id", "job_id", "key_prefix", "project_id"]
_NAMES = {"levelname": "level", "name": "logger", "request_id": "requestId", "job_id": "jobId",
          "key_prefix": "keyPrefix", "project_id": "projectId"}
_CONTEXT = ("requestId", "jobId", "keyPrefix", "projectId")


class JsonFormatter(_JsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # dictConfig may pass format/datefmt; the fields are ours.
        super().__init__(_FIELDS, rename_fields=_NAMES, timestamp=True)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for name in _CONTEXT:
            if log_data.get(name) in ("", "-"):
                log_data[name] = None
        return log_data


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: dictConfig, and Python warnings (a library's
    DeprecationWarning, Celery's superuser warning) as log lines of the same format
    instead of bare text on stderr."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def json_line(*, level: str, logger: str, message: str) -> str:
    """One line in the JSON format for text a library prints instead of logging it (Celery's
    shutdown announcements, written from a signal handler where logging must not run)."""
    return json.dumps({"level": level, "logger": logger, "message": message, "requestId": None, "jobId": None,
                       "keyPrefix": None, "projectId": None,
                       "timestamp": datetime.now(timezone.utc).isoformat()})
