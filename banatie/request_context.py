"""What a log line says about the work it belongs to, readable anywhere (logs, error bodies):
the request id, and once known the job id, the caller's key prefix (never the key) and
project. Context variables: under gevent each request and each task is its own greenlet,
so each has its own values."""
from __future__ import annotations

import contextvars
from dataclasses import dataclass, replace

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@dataclass(frozen=True)
class LogFields:
    job_id: str = ""
    key_prefix: str = ""
    project_id: str = ""


_fields: contextvars.ContextVar[LogFields] = contextvars.ContextVar("log_fields", default=LogFields())


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(value: str) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


def current_log_fields() -> LogFields:
    return _fields.get()


def log_fields_start(**values: str) -> contextvars.Token:
    """A request or task begins: only ``values``, nothing left from the previous one."""
    return _fields.set(LogFields(**values))


def log_fields_add(**values: str) -> None:
    """Add what became known (the key once authenticated, the job once created); the
    request's or task's end (log_fields_end) drops it again."""
    _fields.set(replace(_fields.get(), **values))


def log_fields_end(token: contextvars.Token) -> None:
    _fields.reset(token)
