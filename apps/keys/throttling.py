"""The per-key hourly budget shared by /api/generate, /api/text-to-image, /api/enhance.

Counting is django-ratelimit's (fixed window in the Redis cache); this module turns its
usage into DRF throttle behaviour (KeyRateThrottle) and, for the views that use it
(RateLimitedView), the 429 answer and the X-RateLimit-* headers.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.http.response import HttpResponseBase
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from apps.keys.errors import RateLimiterUnavailable, RateLimitExceeded
from banatie.timefmt import iso

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
        """After counting this request: it went over the budget."""
        return self.used > self.limit

    @property
    def used_up(self) -> bool:
        """Before counting: nothing is left for another request."""
        return self.used >= self.limit

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": iso(self.reset_at, timespec="seconds"),
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
    """DRF's throttle contract: allow_request() reads the key's budget and answers False
    once it is used up; wait() is the seconds until the window resets. It does not count:
    a RateLimitedView charges a request once it has been validated (refused requests cost
    nothing), and a request the view exempts (an idempotent replay) is allowed whatever
    the budget. ``state`` is the key's budget as this request left it."""

    def __init__(self) -> None:
        self.state: RateState | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        exempt = isinstance(view, RateLimitedView) and not view.charges_rate_limit(request)
        try:
            self.state = rate_state(request, increment=False)
        except RateLimiterUnavailable:
            if exempt:
                return True  # answered without consulting the budget at all
            raise
        return exempt or not self.state.used_up

    def wait(self) -> float | None:
        return self.state.seconds_left if self.state else None  # already at least 1


# A view on the per-key budget: the one place that counts the request, answers 429 with
# the budget, and adds X-RateLimit-* to every response of the view, errors included. (A
# comment: a docstring here would become every rate-limited endpoint's OpenAPI description.)
class RateLimitedView(APIView):

    throttle_classes = [KeyRateThrottle]
    rate_throttle: KeyRateThrottle | None = None

    def get_throttles(self) -> list[BaseThrottle]:
        # Keep this request's throttle (a view instance serves one request): its state
        # feeds the 429 body and the headers.
        self.rate_throttle = KeyRateThrottle()
        return [self.rate_throttle]

    def charges_rate_limit(self, request: Request) -> bool:
        """Whether this request counts against the budget; views may exempt some."""
        return True

    def charge_rate_limit(self, request: Request) -> None:
        """Count this request, once the view has found it valid; over budget → 429 (the
        counter is atomic, so concurrent requests never get more than the budget)."""
        if not self.charges_rate_limit(request):
            return
        state = rate_state(request, increment=True)
        if self.rate_throttle is not None:
            self.rate_throttle.state = state
        if state.exceeded:
            self.throttled(request, state.seconds_left)

    def throttled(self, request: Request, wait: float | None) -> None:
        state = self.rate_throttle.state if self.rate_throttle else None
        if state is None:  # pragma: no cover - DRF calls this only after allow_request() said no
            raise RateLimitExceeded()
        raise RateLimitExceeded(
            f"This key has used its {state.limit} requests for the current window "
            f"({settings.BANATIE_RATE_LIMIT}); the window resets in {state.seconds_left} s.",
            headers={"Retry-After": str(state.seconds_left), **state.headers()},
            details={"limit": state.limit, "rate": settings.BANATIE_RATE_LIMIT, "retryAfter": state.seconds_left},
        )

    def finalize_response(self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
                          ) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)
        state = self.rate_throttle.state if self.rate_throttle else None
        if state is not None:
            for name, value in state.headers().items():
                response[name] = value
        return response


@functools.cache
def rate_limited_routes() -> tuple[str, ...]:
    """"METHOD /path" of every route served by a RateLimitedView, read from the URL conf
    so the list /api/me shows cannot drift from the code."""
    found: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            regex = prefix + str(pattern.pattern).strip("^$").replace("/?", "")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, regex)
                continue
            view = getattr(pattern.callback, "cls", None)
            if view is not None and issubclass(view, RateLimitedView):
                methods = [m.upper() for m in view.http_method_names if m != "options" and hasattr(view, m)]
                found.extend(f"{method} /{regex}" for method in methods)

    walk(get_resolver().url_patterns, "")
    return tuple(found)
