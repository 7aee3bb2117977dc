"""What the broker (kombu's Redis transport) still holds for our jobs: messages waiting in
the queue, and messages delivered to a worker but not yet acked (kombu restores those after
the visibility timeout). The sweep republishes only jobs whose message is in neither, so a
backlog is not flooded with copies of messages that are merely waiting their turn."""
from __future__ import annotations

import json
import logging
import time

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from banatie.celery import app as celery_app

logger = logging.getLogger(__name__)

# Far above any real backlog of one installation; past it the sweep falls back to age alone.
MAX_MESSAGES_READ = 200_000


def _task_id(raw: bytes | str) -> str | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if isinstance(message, list):  # unacked entries are [message, exchange, routing_key]
        message = message[0] if message else {}
    return (message.get("headers") or {}).get("id") if isinstance(message, dict) else None


def task_ids_held(*, delivered_within: float | None = None) -> set[str] | None:
    """Task ids (= job ids) the broker holds, or None when that cannot be read (Redis down,
    another transport, an oversized queue): the caller then republishes by age alone.

    ``delivered_within``: count a delivered-unacked message only if it was delivered that
    many seconds ago or less. An older delivery of a job that is still queued was most
    likely lost with its worker's broker connection (the worker dropped what it had
    reserved, the ack never came), and kombu would restore it only after the whole
    visibility timeout; seen in tests/test_multihost.py when the data host's link was cut.
    If it merely waits in a saturated worker's prefetch, a copy costs one no-op claim."""
    queue = celery_app.conf.task_default_queue
    try:
        with celery_app.connection_for_read() as conn:
            channel = conn.default_channel
            client = channel.client
            # kombu keeps one list per priority step; _q_for_pri names them.
            lists = {channel._q_for_pri(queue, pri) for pri in channel.priority_steps}
            if sum(client.llen(name) for name in lists) > MAX_MESSAGES_READ:
                return None
            raws = [raw for name in lists for raw in client.lrange(name, 0, -1)]
            if delivered_within is None:
                raws += client.hvals(channel.unacked_key)
            else:
                # kombu scores each delivery tag with the time it was delivered.
                recent = client.zrangebyscore(channel.unacked_index_key, time.time() - delivered_within, "+inf")
                raws += [raw for raw in (client.hmget(channel.unacked_key, recent) if recent else []) if raw]
    except (KombuOperationalError, RedisError, OSError, AttributeError) as exc:
        logger.warning("sweep could not read the broker's queue: %s", type(exc).__name__)
        return None
    return {task_id for task_id in map(_task_id, raws) if task_id}
