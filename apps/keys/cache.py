"""This process's copies of recently authenticated keys: a request's key check becomes a
dict lookup instead of a SELECT.

A copy is trusted for KEY_CACHE_SECONDS (at most 1 s) after it was read, then read again.
That TTL is the whole freshness guarantee: a revocation, an expiry date moved, a deleted
row, made by any process, reaches every process within it. Invalidation by Redis pub/sub
was the alternative and was not taken: each process would need a listener to supervise
(a thread, or a greenlet under gevent), a message lost while Redis restarts or the
listener reconnects would still leave the stale copy until a TTL ran out, so the TTL would
be needed anyway and be the real guarantee. What it costs instead is one SELECT per key
per process per second. A revocation made in this process (the API, the admin) drops the
copy here at once (``forget``). Expiry needs no refresh: ``is_expired`` is checked
against the clock on every request.

Entries are keyed by the SHA-256 of the presented key and stored only after it matched
the stored hash, so a hit means "this secret was checked"; unknown keys are never cached.
Bounded: the least recently used entry goes first beyond MAX_ENTRIES. The cached ApiKey is
shared by every request of the process: read-only, except ``last_used_at``, which
``key_touch`` sets and which comes back from the database with each refresh. Only
``threading.Lock``: gevent's monkey-patching makes it a greenlet lock, and it is held for
dict operations only, never across I/O.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.keys.models import ApiKey

MAX_ENTRIES = 1024


class KeyCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[str, tuple[float, ApiKey]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def get_or_load(self, digest: str, *, max_age: float, load: Callable[[], ApiKey | None]) -> ApiKey | None:
        """The copy stored under ``digest`` if it was read less than ``max_age`` s ago, else
        ``load()``'s answer, kept when it is a key. ``load`` (a database read) runs outside
        the lock: concurrent misses of one key each read it, and no request waits on
        another's I/O."""
        key = self._get(digest, max_age=max_age)
        if key is not None:
            return key
        read_at = time.monotonic()  # before the load: a copy is never older than its recorded age
        key = load()
        if key is not None and max_age > 0:
            self._put(digest, key, read_at=read_at)
        return key

    def _get(self, digest: str, *, max_age: float) -> ApiKey | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if time.monotonic() - entry[0] >= max_age:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry[1]

    def _put(self, digest: str, key: ApiKey, *, read_at: float) -> None:
        with self._lock:
            self._entries[digest] = (read_at, key)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop every copy of this key (a revocation made in this process)."""
        with self._lock:
            for digest in [digest for digest, (_, key) in self._entries.items() if key.pk == key_id]:
                del self._entries[digest]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


key_cache = KeyCache()
