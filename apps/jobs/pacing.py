"""Upstream pacing, shared by every worker of the installation through Redis:
GEMINI_MAX_CONCURRENCY (Gemini calls in flight at once), GEMINI_MAX_RPM (calls started per
rolling minute), and a pause per model after an upstream 429 with Retry-After, so a burst
waits its turn instead of every job retrying into the same wall of 429s.

- A job that would call Gemini takes its first slot while still queued (job_run waits in
  upstream_slot_wait before claiming it), so a waiting job stays `queued` with a meaningful
  queuePosition, and honours cancellation and its deadline while it waits. Its first
  upstream call uses that slot (upstream_slot_reserved); every later call (a retry, the
  next of n images) takes its own (upstream_call).
- One Lua script decides atomically, on Redis' own clock, so the hosts' clocks do not
  matter. A slot is a member of a sorted set scored by its expiry: a worker that dies
  holding slots frees them after GEMINI_TIMEOUT_SECONDS (+ a margin) at the latest.
- Fails open: if Redis cannot be reached the call goes ahead unpaced (the limits reset
  when Redis restarts; no job waits on it, none is lost)."""
from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import redis
from django.conf import settings

from apps.jobs.deadline import time_left
from apps.jobs.errors import JobTimedOut
from banatie.redis_clients import short_commands_client

logger = logging.getLogger(__name__)

_PREFIX = "banatie:pace:"
_IN_FLIGHT = _PREFIX + "in-flight"
_STARTS = _PREFIX + "starts"
_WINDOW_MS = 60_000
_POLL = (0.05, 0.25)  # seconds between tries while every slot is taken (jittered)

# Redis' own clock in ms (TIME answers seconds and microseconds), shared by both scripts.
_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: in-flight zset, starts zset, the model's pause key.
# ARGV: max concurrency (0 = none), max per minute (0 = none), token, slot lifetime ms,
# the rolling window ms (_WINDOW_MS; the starts set outlives it by a second).
# Answers 0 (taken), -1 (every slot taken: try again soon) or the milliseconds to wait.
_ACQUIRE = _NOW_MS + """
local paused = redis.call('PTTL', KEYS[3])
if paused > 0 then return paused end
local max_now, max_rpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local window = tonumber(ARGV[5])
if max_now > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= max_now then return -1 end
end
if max_rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= max_rpm then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window - now + 1)
  end
  redis.call('ZADD', KEYS[2], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], window + 1000)
end
if max_now > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 0
"""

# A slot taken while the job was queued is used when its call starts: its start counts from
# then (the rolling minute is of calls started, and the claim in between takes time).
_RESTAMP = _NOW_MS + """
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 0
"""


@dataclass
class _Reservation:
    token: str | None
    used: bool = False


_reserved: ContextVar[_Reservation | None] = ContextVar("upstream_slot_reserved", default=None)


def pacing_limited() -> bool:
    """Whether a concurrency or per-minute limit is set (the 429 pause always applies)."""
    return bool(settings.GEMINI_MAX_CONCURRENCY or settings.GEMINI_MAX_RPM)


def _pause_key(model: str) -> str:
    return f"{_PREFIX}pause:{model}"


def _try_take(model: str, token: str) -> int | None:
    """0 when the slot was taken, -1 or a wait in ms when not, None when Redis is away."""
    slot_ms = int((settings.GEMINI_TIMEOUT_SECONDS + 30) * 1000)
    try:
        client = short_commands_client()
        return int(client.eval(_ACQUIRE, 3, _IN_FLIGHT, _STARTS, _pause_key(model),
                               settings.GEMINI_MAX_CONCURRENCY, settings.GEMINI_MAX_RPM, token, slot_ms,
                               _WINDOW_MS))
    except (redis.RedisError, OSError) as exc:
        logger.warning("upstream pacing skipped: Redis unavailable (%s)", type(exc).__name__)
        return None


def _release(token: str | None) -> None:
    if token is None or not settings.GEMINI_MAX_CONCURRENCY:
        return
    try:
        short_commands_client().zrem(_IN_FLIGHT, token)
    except (redis.RedisError, OSError) as exc:  # it expires on its own
        logger.warning("could not release an upstream slot (%s)", type(exc).__name__)


def _wait_seconds(answer: int) -> float:
    if answer < 0:
        return random.uniform(*_POLL)
    return answer / 1000 + random.uniform(0, 0.05)  # spread the herd a pause or a full minute releases


def slot_take(model: str, *, give_up: Callable[[float], bool]) -> str | None:
    """Wait for an upstream slot for a call to ``model``; returns its token (None when
    taken unpaced). Between tries ``give_up(seconds)`` is asked with the wait ahead; when
    it answers True the wait ends with None and no slot is held."""
    token = uuid.uuid4().hex
    while True:
        answer = _try_take(model, token)
        if answer is None:
            return None
        if answer == 0:
            return token
        if give_up(_wait_seconds(answer)):
            return None


def upstream_pause(model: str, seconds: float) -> None:
    """Gemini answered 429 with Retry-After: hold every worker's next calls to ``model``
    for that long (capped like one retry's wait, UPSTREAM_RETRY_MAX_SECONDS)."""
    seconds = min(seconds, settings.UPSTREAM_RETRY_MAX_SECONDS)
    if seconds <= 0:
        return
    try:
        # Only lengthens a pause: a shorter Retry-After does not cut a longer one short.
        client = short_commands_client()
        key = _pause_key(model)
        if client.pttl(key) < seconds * 1000:
            client.set(key, "1", px=max(1, int(seconds * 1000)))
    except (redis.RedisError, OSError) as exc:
        logger.warning("could not pause upstream calls to %s (%s)", model, type(exc).__name__)


def _within_the_job(wait: float) -> bool:
    """give_up for a call inside a running job: sleep ``wait`` unless the job's time (or
    the job itself: abandoned) ends first."""
    left = time_left()
    if left is not None and left <= wait:
        raise JobTimedOut("The job's time limit was reached while it waited for an upstream slot "
                          "(GEMINI_MAX_CONCURRENCY / GEMINI_MAX_RPM, or Gemini's Retry-After).")
    time.sleep(wait)
    return False


@contextmanager
def upstream_call(model: str) -> Iterator[None]:
    """Around one upstream call: the job's reserved slot for its first call, else wait for one
    (raising JobTimedOut if the job's time runs out first); released when the call ends."""
    reservation = _reserved.get()
    if reservation is not None and reservation.token is not None and not reservation.used:
        reservation.used = True
        token: str | None = reservation.token
        _pause_wait(model)  # a pause that began since the slot was taken still holds this call back
        _restamp(reservation.token)
    elif pacing_limited():
        token = slot_take(model, give_up=_within_the_job)
    else:
        token = None
        _pause_wait(model)
    try:
        yield
    finally:
        _release(token)


def _restamp(token: str) -> None:
    if not settings.GEMINI_MAX_RPM:
        return
    try:
        short_commands_client().eval(_RESTAMP, 1, _STARTS, token)
    except (redis.RedisError, OSError):
        pass  # the slot keeps the time it was taken


def _paused_ms(model: str) -> int:
    """What is left of ``model``'s pause in ms (0 or less: none; also 0 when Redis is away)."""
    try:
        return short_commands_client().pttl(_pause_key(model))
    except (redis.RedisError, OSError):
        return 0


def _pause_wait(model: str) -> None:
    paused = _paused_ms(model)
    while paused > 0:
        _within_the_job(paused / 1000 + random.uniform(0, 0.05))
        paused = _paused_ms(model)


@contextmanager
def upstream_slot_reserved(token: str | None) -> Iterator[None]:
    """The job's first upstream call (inside the block) uses ``token``'s slot; whatever of
    it was not used is released when the block ends."""
    reservation = _Reservation(token)
    handle = _reserved.set(reservation)
    try:
        yield
    finally:
        _reserved.reset(handle)
        if not reservation.used:
            _release(token)
