"""The server model (docs/running.md, "Server model"): a waiting request and a running job
cost a greenlet, not a thread, and what they hold while waiting stays bounded."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import redis
import requests
from django.db import connection

CLIENTS = 300  # more than the 100 threads one web process had, and one worker process


def _postgres_connections(stack) -> dict[str, int] | None:  # type: ignore[no-untyped-def]
    """Open PostgreSQL connections of each of the stack's processes, on PostgreSQL. (SQLite
    has no server side; its file handles are a high-water mark SQLite keeps for its locks.)"""
    if connection.vendor != "postgresql":
        return None
    port = int(connection.settings_dict["PORT"] or 5432)
    counts = {}
    for role in ("web", "worker", "beat"):
        for proc in stack.procs.get(role, []):
            for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
                counts[f"{role}:{p.pid}"] = sum(1 for c in p.net_connections(kind="tcp")
                                                if c.raddr and c.raddr.port == port)
    return counts


@pytest.mark.slow
def test_hundreds_of_sync_requests_wait_on_one_web_and_one_worker_process_with_bounded_connections(
        stack_factory, tenants, emulator):
    stack = stack_factory(WORKER_CONCURRENCY=str(CLIENTS + 20), DATABASE_POOL_SIZE="4", SQLITE_POOL_SIZE="4",
                          REDIS_POOL_SIZE="10", BANATIE_RATE_LIMIT="10000/h")
    emulator.latency = 8.0
    url = f"{stack.url}/api/enhance"

    def one(i: int) -> tuple[int, float]:
        r = requests.post(url, json={"prompt": f"prompt number {i}"}, headers={"X-API-Key": tenants.a}, timeout=60)
        return r.status_code, time.monotonic()

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        answers = [pool.submit(one, i) for i in range(CLIENTS)]
        deadline = time.monotonic() + 30
        while emulator.served < CLIENTS and time.monotonic() < deadline:
            time.sleep(0.1)
        # Every call is upstream at once and every client still waits: one worker process
        # holds 300 in-flight calls and one web process 300 waiting requests.
        in_flight = emulator.served
        waiting = sum(1 for a in answers if not a.done())
        redis_clients = len(redis.Redis.from_url(stack.env["REDIS_URL"]).client_list())
        database = _postgres_connections(stack)
        codes = [a.result(timeout=90)[0] for a in answers]
    assert in_flight == CLIENTS and waiting == CLIENTS
    assert codes == [200] * CLIENTS
    # Nothing scales with the waiters: per process a cache pool of REDIS_POOL_SIZE (10), one
    # pub/sub listener, Celery's own (its producer pool holds at most 10); database
    # connections within the pools.
    assert redis_clients <= 60, redis_clients
    # PostgreSQL: at most DATABASE_POOL_SIZE (4) per process, none held by the 300 waits.
    assert database is None or (len(database) >= 3 and 1 <= sum(database.values())
                                and max(database.values()) <= 4), database


def _raw(stack, data: bytes) -> tuple[int, dict[str, str], bytes]:  # type: ignore[no-untyped-def]
    import socket

    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.slow
def test_requests_the_http_server_cannot_parse_get_our_json_error_with_a_request_id(stack_factory):
    import json

    stack = stack_factory()
    duplicate_type = (b"POST /api/enhance HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    for request in (duplicate_type, b"NOT A REQUEST LINE\r\n\r\n",
                    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n"):
        status, headers, body = _raw(stack, request)
        assert status == 400 and headers["content-type"] == "application/json", (request, status, body)
        error = json.loads(body)
        assert error["success"] is False and error["code"] == "malformed_request", error
        assert error["requestId"] == headers["x-request-id"] and len(error["requestId"]) == 32
        assert error["hint"]
    status, headers, _ = _raw(stack, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status == 200  # the server itself is fine


@pytest.mark.slow
def test_slow_header_clients_do_not_starve_others_and_are_cut_off(stack_factory):
    # 300 sockets dribbling a request's headers one byte a second (slowloris), for at most
    # 15 s, while ordinary clients keep calling /health on the same single web process.
    import socket
    import threading

    stack = stack_factory()
    slow = [socket.create_connection(("127.0.0.1", stack.port), timeout=5) for _ in range(300)]
    partial = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    cut_off_after: dict[int, float] = {}
    stop = threading.Event()
    started = time.monotonic()

    def dribble() -> None:
        i = 0
        while not stop.is_set() and len(cut_off_after) < len(slow) and time.monotonic() - started < 15:
            for n, sock in enumerate(slow):
                if n in cut_off_after:
                    continue
                try:
                    sock.send(partial[i:i + 1] if i < len(partial) else b"x")
                except OSError:
                    cut_off_after[n] = time.monotonic() - started
            i += 1
            stop.wait(1.0)

    dribbler = threading.Thread(target=dribble)
    dribbler.start()
    try:
        answered = []
        while time.monotonic() - started < 12:
            answered.append(requests.get(f"{stack.url}/health", timeout=5).status_code)
            time.sleep(0.2)
    finally:
        stop.set()
        dribbler.join(20)
        for sock in slow:
            sock.close()
    assert answered and all(code == 200 for code in answered), answered
    # gunicorn's gevent worker gives a request `keepalive` (5 s) to send its headers: the
    # slow sockets are closed by the server soon after, not held forever.
    assert len(cut_off_after) == len(slow) and max(cut_off_after.values()) < 12, sorted(cut_off_after.values())[-5:]
