"""Checks behind GET /health. Each returns a small dict and never raises."""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder


# Checks an app adds to /health beside the built-in ones (banatie imports no app: the app
# registers from its AppConfig.ready()). Each returns {"status": "up" | "down", ...}.
_CHECKS: dict[str, Callable[[], dict[str, Any]]] = {}


def register_check(name: str, check: Callable[[], dict[str, Any]]) -> None:
    _CHECKS[name] = check


def registered_checks() -> dict[str, dict[str, Any]]:
    return {name: check() for name, check in _CHECKS.items()}


def active_provider_name() -> str:
    """Which provider serves requests: Gemini when GEMINI_API_KEY is set, else the offline
    one. Read at call time (settings may change under tests); the provider factory in
    workers.providers uses the same answer."""
    return "gemini" if settings.GEMINI_API_KEY else "offline"


@functools.cache
def _migrations_in_code() -> frozenset[tuple[str, str]]:
    # Read once per process: the code's migrations do not change while it runs.
    return frozenset(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)


def check_database() -> dict[str, Any]:
    """Reachable, and every migration of the code applied (else requests would fail with
    "no such table" while /health looked fine)."""
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        pending = _migrations_in_code() - MigrationRecorder(connection).applied_migrations().keys()
    except DatabaseError as exc:
        return {"status": "down", "error": type(exc).__name__}
    if pending:
        return {"status": "down", "vendor": connection.vendor, "unappliedMigrations": len(pending),
                "reason": f"{len(pending)} migration(s) not applied; run `make manage ARGS=migrate` "
                          "(or `python manage.py migrate`)."}
    return {"status": "up", "vendor": connection.vendor, "latencyMs": round((time.monotonic() - started) * 1000, 1)}


def check_redis() -> dict[str, Any]:
    started = time.monotonic()
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"status": "down", "error": type(exc).__name__}
    finally:
        client.close()
    return {"status": "up", "latencyMs": round((time.monotonic() - started) * 1000, 1)}


def check_worker(timeout: float = 0.5) -> dict[str, Any]:
    from banatie.celery import app

    try:
        replies = app.control.ping(timeout=timeout, limit=1)
    except (redis.RedisError, OSError) as exc:
        return {"status": "unknown", "error": type(exc).__name__}
    return {"status": "up" if replies else "down", "answered": len(replies)}
