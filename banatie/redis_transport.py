"""kombu's Redis transport, fixed to survive a broker restart while messages are unacked.

kombu >= 5.3.2 (celery/kombu#1733) reads a pending BRPOP reply in Channel.close() but
tolerates only Empty; on a dead socket it raises ConnectionError and the channel is left
half-closed. Connection.collect() swallows that and clears transport.client; celery 5.7
then closes the connection again, which re-closes that channel, tries to restore its
unacked messages and dies in _connparams with an AttributeError that ignore_errors does not
catch, so the worker exits ("Unrecoverable error"). kombu 5.7.0 and its main branch still
have it (cf. celery/kombu#582, #970; celery/celery#10205 is a different path, fixed).
Drop this once a kombu release catches connection errors around _brpop_read in close().
"""
from __future__ import annotations

from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()
            except Empty:
                pass
            except self.connection_errors:
                # A dead socket: _brpop_read() already disconnected it and cleared
                # _in_poll. Close the rest while the transport is still usable.
                pass
        super().close()

    def _connparams(self, asynchronous: bool = False) -> Any:
        # After kombu closed the transport: a connection error (which kombu and Celery
        # handle by reconnecting), not an AttributeError that kills the worker.
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("broker connection already closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
