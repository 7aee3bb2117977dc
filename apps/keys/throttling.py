"""The per-key hourly budget shared by /api/generate, /api/text-to-image, /api/enhance.

Counting is django-ratelimit's (fixed window in the Redis cache); this module turns its
usage into DRF throttle behaviour and the X-RateLimit-* headers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    from rest_framework.views import APIView

from apps.keys.errors import RateLimiterUnavailable, RateLimitExceeded

RATE_GROUP = "banatie.generation"


@dataclass(frozen=True)
class RateState:
    limit: int
    used: int
    seconds_left: int
    # The window's end, fixed when the request was counted (a sync call may answer much later).
    reset_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": self.reset_at.isoformat().replace("+00:00", "Z"),
        }


def _key_of(group: str, request: Request) -> str:
    return str(request.auth.pk)


def rate_state(request: Request, *, increment: bool) -> RateState:
    """Read (and optionally count) this key's usage. Raises RateLimiterUnavailable when
    the counter store cannot be reached: we refuse rather than serve unmetered."""
    try:
        usage = get_usage(
            request, group=RATE_GROUP, key=_key_of, rate=settings.BANATIE_RATE_LIMIT,
            increment=increment,
        )
    except RedisError:
        raise RateLimiterUnavailable(headers={"Retry-After": "5"}) from None
    if usage is None or usage["limit"] == 0:  # django-ratelimit's "store failed" answer
        raise RateLimiterUnavailable(headers={"Retry-After": "5"})
    seconds_left = max(1, usage["time_left"])
    return RateState(limit=usage["limit"], used=usage["count"], seconds_left=seconds_left,
                     reset_at=timezone.now().replace(microsecond=0) + timedelta(seconds=seconds_left))


class KeyRateThrottle(BaseThrottle):
    """Counts the request against its key; over budget → 429 with Retry-After."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        # A view may exempt a request (an idempotent replay was already paid for).
        counts = getattr(view, "counts_against_limit", None)
        state = rate_state(request, increment=counts(request) if counts else True)
        request._request.rate_state = state  # for the response headers
        if state.exceeded:
            wait = state.seconds_left  # already at least 1
            raise RateLimitExceeded(
                f"This key has used its {state.limit} requests for the current window "
                f"({settings.BANATIE_RATE_LIMIT}); the window resets in {wait} s.",
                headers={"Retry-After": str(wait), **state.headers()},
                details={"limit": state.limit, "rate": settings.BANATIE_RATE_LIMIT, "retryAfter": wait},
            )
        return True


class RateLimitHeadersMixin:
    """Adds X-RateLimit-* to every response of a rate-limited view, errors included."""

    def finalize_response(self, request, response, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(request._request if hasattr(request, "_request") else request, "rate_state", None)
        if state is not None:
            for name, value in state.headers().items():
                response[name] = value
        return response
