"""The Prefer request header (RFC 7240) as the job endpoints read it."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from rest_framework.request import Request


@dataclass(frozen=True)
class Preferences:
    respond_async: bool
    wait: float  # seconds to wait for the job before answering 202
    wait_asked: str | None  # the client's own `wait=N`, echoed in Preference-Applied


def preferences(request: Request) -> Preferences:
    """`respond-async`, and `wait=N` (at most SYNC_WAIT_SECONDS; parameters after ';' are
    ignored). Without `wait`, or with a value that is not a number: SYNC_WAIT_SECONDS."""
    prefs: dict[str, str] = {}
    for item in request.headers.get("Prefer", "").split(","):
        head = item.split(";", 1)[0].strip()
        if head:
            name, _, value = head.partition("=")
            prefs[name.strip().lower()] = value.strip().strip('"')
    wait, asked = settings.SYNC_WAIT_SECONDS, None
    try:
        wait = max(0.0, min(float(prefs["wait"]), settings.SYNC_WAIT_SECONDS))
        asked = prefs["wait"]
    except (KeyError, ValueError):
        pass
    return Preferences(respond_async="respond-async" in prefs, wait=wait, wait_asked=asked)
