"""The per-key hourly budget shared by /api/generate, /api/text-to-image, /api/enhance and /v1/images/*.

A fixed window counted in Redis through the Django cache, in two round trips per charged
request: one GET before the body is parsed (KeyRateThrottle: is anything left?) and one
MULTI/EXEC once the request was found valid (RateLimitedView.charge_rate_limit). This
module also turns the budget into DRF throttle behaviour, the 429 answer and the
X-RateLimit-* headers.

Not django-ratelimit's get_usage any more: it spent five round trips on a charged request
(add + get to read, add + exists + incr to count). The counter's name and window are
django-ratelimit 4.1's (``_counter_name``, ``_window_end``), so budgets carry over a
deploy mid-window and windows still end at a per-key offset rather than all at once.
"""
from __future__ import annotations

import functools
import hashlib
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.http.response import HttpResponseBase
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from redis import Redis
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from apps.keys.errors import RateLimiterUnavailable, RateLimitExceeded
from banatie import metrics
from banatie.env import split_rate
from banatie.timefmt import iso

RATE_GROUP = "banatie.generation"
RATE_CACHE = "default"  # the Django cache (a RedisCache) that holds the counters
# A counter outlives its window by this much (django-ratelimit's EXPIRATION_FUDGE).
_EXPIRY_MARGIN_SECONDS = 5


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


def _window_end(value: str, period: int, now: int) -> int:
    """The end (epoch seconds) of the window ``now`` falls in: windows are aligned to the
    epoch plus an offset drawn from the key, so keys do not all reset in the same second."""
    if period == 1:
        return now
    end = now - now % period + zlib.crc32(value.encode()) % period
    return end + period if end < now else end


def _counter_name(value: str, limit: int, period: int, window_end: int) -> str:
    # django-ratelimit 4.1's _make_cache_key(group, window, rate, value, method=ALL).
    return "rl:" + hashlib.sha256(f"{RATE_GROUP}{limit}/{period}s{value}{window_end}".encode()).hexdigest()


@functools.lru_cache(maxsize=4)
def _store_for(config: str) -> tuple[BaseCache, Redis]:
    store = caches.create_connection(RATE_CACHE)
    # Django's RedisCache has no public accessor for its client and builds a new client
    # object on every call (a measurable share of a request's CPU); one per process over
    # the cache's own bounded pool.
    return store, store._cache.get_client(write=True)  # type: ignore[attr-defined]


def _store() -> tuple[BaseCache, Redis]:
    """The counters' cache and its Redis client, one per process. ``caches[alias]`` is one
    per thread (one per greenlet under gevent), each with its own Redis pool, so a new
    greenlet would first connect and run redis-py's handshake. Keyed by the cache's
    settings: a test that points CACHES at a dead port gets a store for it."""
    return _store_for(repr(settings.CACHES[RATE_CACHE]))


def _count(client: Redis, key: str, expiry: int) -> int:
    """Count one request, in one round trip: create the window's counter with its expiry
    if it is new, then INCR. MULTI/EXEC, not two commands: a counter expiring between them
    would come back from INCR without an expiry and never be cleared."""
    with client.pipeline(transaction=True) as pipe:
        _, used = pipe.set(key, 0, ex=expiry, nx=True).incr(key).execute()
    return int(used)


def rate_state(request: Request, *, increment: bool) -> RateState:
    """Read (one GET) or count (one MULTI/EXEC) this key's usage. Raises
    RateLimiterUnavailable when the counter store cannot be reached: we refuse rather than
    serve unmetered."""
    limit, period = split_rate(settings.BANATIE_RATE_LIMIT)
    value = str(request.auth.pk)
    now = int(time.time())
    window_end = _window_end(value, period, now)
    name = _counter_name(value, limit, period, window_end)
    try:
        store, client = _store()
        key = store.make_key(name)
        # A window nobody has been charged in yet has no counter: 0 used. (The cache stores
        # integers unpickled, so a plain GET reads what RedisCache would.)
        used = _count(client, key, period + _EXPIRY_MARGIN_SECONDS) if increment else int(client.get(key) or 0)
    except RedisError:
        raise RateLimiterUnavailable(headers={"Retry-After": "5"}) from None
    seconds_left = max(1, window_end - now)
    return RateState(limit=limit, used=used, seconds_left=seconds_left,
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
        metrics.rate_limited.inc()
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
