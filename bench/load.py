"""A bounded closed-loop HTTP/1.1 load generator on plain asyncio streams.

No third-party client: the venv has no httpx/aiohttp, and a hand-rolled keep-alive client
costs far less CPU per request than either, which matters when the load generator shares
2 cores with the server it measures. Each virtual client owns one keep-alive connection
and sends its next request as soon as the previous answer arrives.

One event loop holds thousands of clients cheaply: at 2,000 concurrent connections the
loop itself costs about 0.3 ms of CPU per request (connect included), and each client is a
task and a socket, not a thread.

Every loop is bounded three ways: a measurement window (seconds), a maximum request
count, and a per-request timeout; after the window, in-flight requests get at most
``drain`` seconds before they are abandoned and recorded as ``unanswered``.
Targets are refused unless they are 127.0.0.1 or a host on the multihost test bridge
(tests/multihost.py: network namespaces on this machine, ``MULTIHOST_NETWORK``).
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, method: str, path: str, payload: object, headers: dict[str, str] | None = None) -> "Request":
        return cls(method, path, {"Content-Type": "application/json", **(headers or {})},
                   json.dumps(payload).encode())

    def encode(self, host: str, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass
class Response:
    status: int
    body: bytes
    close: bool
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names (tests/test_multihost.py reads Retry-After)


@dataclass
class Sample:
    start: float  # time.monotonic()
    end: float
    status: int  # 0 = no HTTP answer
    error: str = ""  # "", "timeout", "unanswered", or an exception name
    client: int = -1  # the virtual client's index (P6 checks that every client was answered)


# The private bridge tests/multihost.py builds between its namespaces: still this machine.
MULTIHOST_NETWORK = ipaddress.ip_network("10.213.0.0/16")


def check_local(host: str) -> None:
    try:
        on_bridge = ipaddress.ip_address(host) in MULTIHOST_NETWORK
    except ValueError:
        on_bridge = False
    if host != "127.0.0.1" and not on_bridge:
        raise ValueError(f"the load generator only targets 127.0.0.1 or {MULTIHOST_NETWORK}, not {host!r}")


async def read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = None, False, lines[0].startswith(b"HTTP/1.0")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection":
            close = value == b"close"
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif length is not None:
        body = await reader.readexactly(length) if length else b""
    else:
        body, close = await reader.read(), True
    return Response(status, body, close, headers)


class Connection:
    """One keep-alive connection; reconnects transparently when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        check_local(host)
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> Response:
        reused = self.writer is not None
        if not reused:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        try:
            self.writer.write(raw)
            response = await read_response(self.reader)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            # The server dropped an idle keep-alive connection: one retry on a new one.
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            self.writer.write(raw)
            response = await read_response(self.reader)
        if response.close:
            self.close()
        return response

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


async def closed_loop(
    *, host: str, port: int, make_request: Callable[[int, int], bytes], clients: int, warmup: float,
    duration: float, max_requests: int, timeout: float, drain: float,
    on_response: Callable[[int, Response, Sample], None] | None = None, ramp: float = 0.0,
) -> tuple[list[Sample], float, float]:
    """Run ``clients`` closed-loop clients; requests start during ``warmup + duration``.

    ``ramp`` > 0 staggers the first requests evenly over that many seconds (client i
    starts at i × ramp / clients). Without it, all clients start at once and, against a
    fixed upstream latency, stay in lock-step waves: a window then counts a whole wave or
    none of it. A ramp of one latency spreads the answers evenly over time.

    ``make_request(client_index, sequence)`` returns the raw request bytes. Returns
    (samples, window_start, window_end): the measurement window is the ``duration``
    seconds after ``warmup``, in time.monotonic() terms."""
    check_local(host)
    samples: list[Sample] = []
    inflight: dict[int, float] = {}
    issued = 0
    t0 = time.monotonic()
    window_start, stop_at = t0 + warmup, t0 + warmup + duration

    async def client(index: int) -> None:
        nonlocal issued
        if ramp > 0:
            await asyncio.sleep(ramp * index / clients)
        conn = Connection(host, port)
        seq = 0
        try:
            while time.monotonic() < stop_at and issued < max_requests:
                issued += 1
                seq += 1
                raw = make_request(index, seq)
                start = inflight[index] = time.monotonic()
                try:
                    async with asyncio.timeout(timeout):
                        response = await conn.request(raw)
                    sample = Sample(start, time.monotonic(), response.status, client=index)
                    samples.append(sample)
                    if on_response is not None:
                        on_response(index, response, sample)
                except TimeoutError:
                    conn.close()
                    samples.append(Sample(start, time.monotonic(), 0, "timeout", index))
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    conn.close()
                    samples.append(Sample(start, time.monotonic(), 0, type(exc).__name__, index))
                    await asyncio.sleep(0.05)  # no hot loop against a refusing port
                finally:
                    inflight.pop(index, None)
        finally:
            conn.close()

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    _done, pending = await asyncio.wait(tasks, timeout=warmup + duration + drain)
    now = time.monotonic()
    for index, start in list(inflight.items()):
        samples.append(Sample(start, now, 0, "unanswered", index))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return samples, window_start, stop_at


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
