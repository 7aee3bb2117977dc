"""Several web and worker hosts on one PostgreSQL and Redis, hosts dying under load
(issue 19). The hosts are network namespaces on one machine (tests/multihost.py); every
scenario prints its figures on lines starting ``[multihost]`` and checks that no job was
lost. A job that ran upstream more than once is traced (which attempt, which host, why)
and must be explained by the scenario's fault.

Run with `make test-multihost` (excluded from `make test`); `make bench-multihost` prints
the same figures. Needs root; elsewhere every test skips with the reason.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
from collections import Counter

import pytest

from bench.load import Request, Response, Sample, closed_loop
from tests.multihost import TOKEN, MultiHostStack, job_body, run_threads, skip_reason, wait_for

pytestmark = [pytest.mark.multihost]

# Short leases and sweeps so a dead host costs seconds, not minutes; documented as the
# knobs in docs/deployment.md. A lease must outlast two heartbeats (settings enforce it).
LEASE, HEARTBEAT, SWEEP, QUEUED_AFTER, GRACE, WORKER_GRACE = 6, 2, 2, 4, 15, 3
ENV = {
    "JOB_LEASE_SECONDS": str(LEASE),
    "JOB_HEARTBEAT_SECONDS": str(HEARTBEAT),
    "SWEEP_INTERVAL_SECONDS": str(SWEEP),
    "SWEEP_QUEUED_AFTER_SECONDS": str(QUEUED_AFTER),
    "SHUTDOWN_GRACE_SECONDS": str(GRACE),
    "WORKER_SHUTDOWN_GRACE_SECONDS": str(WORKER_GRACE),
    "SYNC_WAIT_SECONDS": "30",
    "IMAGE_RETENTION_DAYS": "1",
    "JOB_RETENTION_DAYS": "2",
    "RETENTION_INTERVAL_SECONDS": "2",
}
FINISHED = {"succeeded", "failed", "canceled"}
EXTRA_BEAT = ("wk1", "beat")  # the second beat of the two-beats scenario, never restored


@pytest.fixture(scope="module")
def stack():  # type: ignore[no-untyped-def]
    reason = skip_reason()
    if reason:
        print(f"\n[multihost] skipped: {reason}")
        pytest.skip(reason)
    mh = MultiHostStack(env=ENV)
    try:
        mh.start()
        yield mh
    finally:
        mh.stop()


@pytest.fixture
def hosts(stack, capsys):  # type: ignore[no-untyped-def]
    """The stack with every host up, the emulator at 0 ms; restored after the scenario."""
    stack.emulator.latency = 0.0
    stack.restore(extras=[EXTRA_BEAT])
    stack.say = lambda line: _say(capsys, line)
    try:
        yield stack
    finally:
        stack.emulator.latency = 0.0
        if stack.alive(*EXTRA_BEAT):
            stack.stop_role(*EXTRA_BEAT)
        stack.restore(extras=[EXTRA_BEAT])


def _say(capsys, line: str) -> None:  # type: ignore[no-untyped-def]
    """Print a figure line past pytest's capture (and to MULTIHOST_FIGURES: make bench-multihost)."""
    with capsys.disabled():
        print(f"[multihost] {line}", flush=True)
    if os.environ.get("MULTIHOST_FIGURES"):
        with open(os.environ["MULTIHOST_FIGURES"], "a") as out:
            out.write(f"[multihost] {line}\n")


def submit(stack: MultiHostStack, host: str, token: str, *, sync: bool = False, headers: dict | None = None,
           timeout: float = 30) -> tuple[int, str | None, dict, dict]:
    """POST /api/text-to-image through ``host``: (status, job id, body, headers)."""
    sent = {"X-API-Key": stack.project_key, **({} if sync else {"Prefer": "respond-async"}), **(headers or {})}
    status, body, answer_headers = stack.http(host, "POST", "/api/text-to-image", job_body(token), sent, timeout)
    return status, body.get("jobId") or (body.get("data") or {}).get("jobId"), body, answer_headers


def wait_finished(stack: MultiHostStack, ids: list[str], timeout: float) -> dict[str, dict]:
    def done() -> dict[str, dict] | None:
        try:
            rows = stack.jobs(ids)
        except Exception:  # noqa: BLE001 - the data host may still be unreachable
            return None
        return rows if len(rows) == len(ids) and all(r["status"] in FINISHED for r in rows.values()) else None
    try:
        return wait_for(done, timeout, f"{len(ids)} jobs to finish", interval=0.5)
    except AssertionError as exc:  # say where they are stuck
        rows = stack.jobs(ids)
        stuck = Counter((r["status"], r["attempts"]) for r in rows.values() if r["status"] not in FINISHED)
        raise AssertionError(f"{exc}: unfinished (status, attempts): {dict(stuck)}; workers answering: "
                             f"{sorted(stack.workers_answering())}; logs in {stack.workdir}") from None


def calls_of(stack: MultiHostStack, scenario: str) -> dict[str, list[dict]]:
    return {token: calls for token, calls in stack.calls_by_token().items() if token.startswith(f"mh:{scenario}:")}


def trace_repeats(stack: MultiHostStack, scenario: str, ids: dict[str, str], rows: dict[str, dict],
                  t0: float) -> list[str]:
    """One line per job that reached the upstream more than once: each call's host and
    time (seconds after ``t0``, wall clock) and the job's attempts."""
    lines = []
    for token, calls in sorted(calls_of(stack, scenario).items()):
        if len(calls) > 1:
            job_id = ids.get(token, "?")
            where = ", ".join(f"call {n} on {c['host']} at +{c['time'] - t0:.1f}s" for n, c in enumerate(calls, 1))
            lines.append(f"job {job_id} ({token}) attempts={rows.get(job_id, {}).get('attempts')}: {where}")
    return lines


def cpu(stack: MultiHostStack) -> dict[str, float]:
    return {host: stack.cpu_seconds(host) for host in stack.net.hosts}


def cpu_used(before: dict[str, float], after: dict[str, float]) -> str:
    return ", ".join(f"{host} {max(0.0, after[host] - before.get(host, 0.0)):.1f}s" for host in after)


# -- scale-out ----------------------------------------------------------------------------
def run_batch(stack: MultiHostStack, scenario: str, count: int) -> tuple[float, dict[str, int], dict[str, dict]]:
    """``count`` async jobs through both web hosts, until all finished: (jobs/s from the
    first created to the last finished, upstream calls per worker host, rows)."""
    def one(i: int) -> str | None:
        return submit(stack, ("web1", "web2")[i % 2], f"mh:{scenario}:{i}")[1]
    ids = run_threads(count, one, timeout=60)
    assert all(ids), f"not every job was accepted: {ids.count(None)} missing"
    rows = wait_finished(stack, ids, timeout=120)
    ((span,),) = stack.sql("SELECT extract(epoch FROM max(finished_at) - min(created_at)) FROM generation_job "
                           "WHERE id::text = ANY(%s)", (ids,))
    calls = calls_of(stack, scenario)
    assert len(calls) == count and all(len(c) == 1 for c in calls.values()), "a job ran upstream twice"
    hosts = Counter(c["host"] for job_calls in calls.values() for c in job_calls)
    return count / float(span), dict(hosts), rows


def test_scale_out_one_vs_two_worker_hosts(hosts) -> None:
    """Async throughput with 1 worker host and with 2, at 0 ms and 2 s upstream. At 2 s the
    workers run with WORKER_CONCURRENCY=8, so capacity (not the 2 shared cores) bounds a
    host; at 0 ms the cores do. Every job succeeds, and with two hosts both did work."""
    stack = hosts
    figures = {}
    for latency, concurrency, count in ((0.0, None, 80), (2.0, "8", 48)):
        stack.emulator.latency = latency
        for workers in (1, 2):
            for host in ("wk1", "wk2"):
                stack.stop_role(host, "worker")
            extra = {"WORKER_CONCURRENCY": concurrency} if concurrency else {}
            for host in ("wk2", "wk1")[:workers]:
                stack.start_role(host, "worker", extra)
            stack.wait_ready()
            scenario = f"scale-{int(latency * 1000)}-{workers}"
            before = cpu(stack)
            rate, per_host, rows = run_batch(stack, scenario, count)
            after = cpu(stack)
            assert all(r["status"] == "succeeded" for r in rows.values()), Counter(r["status"] for r in rows.values())
            if workers == 2:
                assert set(per_host) == {"wk1", "wk2"}, per_host
            figures[(latency, workers)] = rate
            stack.say(f"scale-out upstream={latency * 1000:.0f}ms worker_hosts={workers} "
                      f"concurrency={concurrency or 'default (1000)'} jobs={count}: {rate:.1f} jobs/s; "
                      f"calls by host {per_host}; CPU used: {cpu_used(before, after)}")
        stack.say(f"scale-out upstream={latency * 1000:.0f}ms ratio 2 hosts / 1 host = "
                  f"{figures[(latency, 2)] / figures[(latency, 1)]:.2f} (2 cores shared by all hosts)")
    for host in ("wk1", "wk2"):  # back to the Procfile's own concurrency
        stack.stop_role(host, "worker")


# -- a worker host dies -------------------------------------------------------------------
def test_worker_host_sigkilled_with_200_jobs_in_flight(hosts) -> None:
    """SIGKILL every process on wk1 while 200 jobs are upstream: every job succeeds on wk2
    once its lease expired and the sweep re-queued it; only the killed attempts ran twice."""
    stack = hosts
    stack.emulator.latency = 5.0
    count = 200
    t0 = time.time()
    accepted = run_threads(count, lambda i: submit(stack, ("web1", "web2")[i % 2], f"mh:kill:{i}"), timeout=60)
    assert all(a and a[0] == 202 for a in accepted), Counter(a and a[0] for a in accepted)
    ids = {f"mh:kill:{i}": a[1] for i, a in enumerate(accepted)}
    wait_for(lambda: len(calls_of(stack, "kill")) == count, 30, "all 200 jobs to be upstream")
    on_wk1 = {t for t, calls in calls_of(stack, "kill").items() if calls[0]["host"] == "wk1"}
    killed_at = time.time()
    stack.kill_host("wk1")
    rows = wait_finished(stack, list(ids.values()), timeout=90)
    ((last_finished,),) = stack.sql("SELECT extract(epoch FROM max(finished_at)) FROM generation_job "
                                    "WHERE id::text = ANY(%s)", (list(ids.values()),))
    recovered_in = float(last_finished) - killed_at
    statuses = Counter(r["status"] for r in rows.values())
    assert statuses == {"succeeded": count}, statuses
    calls = calls_of(stack, "kill")
    total = sum(len(c) for c in calls.values())
    repeats = trace_repeats(stack, "kill", ids, rows, t0)
    for token, job_calls in calls.items():
        if len(job_calls) > 1:  # only an attempt the kill cut short may have run again, on the other host
            assert token in on_wk1 and len(job_calls) == 2, job_calls
            assert job_calls[0]["time"] < killed_at and job_calls[1]["host"] == "wk2", job_calls
            assert rows[ids[token]]["attempts"] == 2
    assert total == count + len(repeats)
    stack.say(f"worker host killed: {count} jobs in flight (wk1 {len(on_wk1)}, wk2 {count - len(on_wk1)}), "
              f"lease {LEASE}s, sweep every {SWEEP}s, upstream 5s: all {count} succeeded; upstream calls {total} "
              f"= {count} + {len(repeats)} cut short on wk1; the last job finished {recovered_in:.1f}s after the kill")
    for line in repeats[:5]:
        stack.say(f"  ran twice: {line} (why: wk1 SIGKILLed mid-call, lease expired, sweep re-queued, wk2 ran it)")
    if len(repeats) > 5:
        stack.say(f"  … and {len(repeats) - 5} more, each first on wk1 before the kill, then on wk2")


# -- a web host dies ----------------------------------------------------------------------
def test_web_host_killed_with_100_sync_clients_waiting(hosts) -> None:
    """100 sync clients wait on web1; web1 is SIGKILLed; the jobs still finish; each client
    retries through web2 with its Idempotency-Key and gets the original job, not a new one."""
    stack = hosts
    stack.emulator.latency = 6.0
    count = 100
    run = int(time.time())
    keys = [f"mh-web-{run}-{i}" for i in range(count)]
    first: list = [None] * count

    def wait_on_web1(i: int) -> None:
        first[i] = submit(stack, "web1", f"mh:web:{i}", sync=True, headers={"Idempotency-Key": keys[i]}, timeout=60)
    clients = [threading.Thread(target=wait_on_web1, args=(i,), daemon=True) for i in range(count)]
    for client in clients:
        client.start()
    wait_for(lambda: len(calls_of(stack, "web")) == count, 30, "the 100 jobs to be upstream")
    stack.kill_host("web1")
    for client in clients:
        client.join(30)
    assert all(f is not None and f[0] == 0 for f in first), Counter(f and f[0] for f in first)  # cut off
    originals = dict(stack.sql("SELECT idempotency_key, id::text FROM generation_job WHERE idempotency_key = ANY(%s)",
                               (keys,)))
    assert len(originals) == count

    def retry(i: int) -> tuple:
        return submit(stack, "web2", f"mh:web:{i}", sync=True, headers={"Idempotency-Key": keys[i]}, timeout=60)
    retried = run_threads(count, retry, timeout=90)
    statuses = Counter(r and r[0] for r in retried)
    assert statuses == {200: count}, statuses
    assert all(r[1] == originals[keys[i]] for i, r in enumerate(retried)), "a retry got a new job"
    assert all(r[3].get("Idempotent-Replayed") == "true" for r in retried)
    ((jobs,),) = stack.sql("SELECT count(*) FROM generation_job WHERE idempotency_key = ANY(%s)", (keys,))
    assert jobs == count
    for i in range(0, count, 10):  # retrievable: the job and its image, through the surviving host
        status, body, _ = stack.http("web2", "GET", f"/api/jobs/{originals[keys[i]]}",
                                     headers={"X-API-Key": stack.project_key})
        assert status == 200 and body["status"] == "succeeded", body
    image = retried[0][2]["data"]["url"].split(":8000", 1)[1]
    status, body, headers = stack.http("web2", "GET", image)
    assert status == 200 and headers.get("Content-Type") == "image/png" and body["raw"].startswith(b"\x89PNG")
    calls = calls_of(stack, "web")
    assert all(len(c) == 1 for c in calls.values()), {t: c for t, c in calls.items() if len(c) > 1}
    stack.say(f"web host killed: {count} sync clients cut off on web1, {count} jobs still succeeded; "
              f"{count} retries through web2 with the same Idempotency-Key: {statuses[200]} x 200 with the original "
              f"job (Idempotent-Replayed: true), 0 new jobs; upstream calls {sum(map(len, calls.values()))}")


# -- the data host's link is cut ---------------------------------------------------------
def test_data_host_link_down_10s_under_load(hosts) -> None:
    """Sync and async clients on both web hosts while the data host's link is down for
    10 s: no 500s (only 200, 202, or 503 with Retry-After), and every accepted job
    succeeds once the link is back."""
    stack = hosts
    stack.emulator.latency = 0.3
    seen: list[tuple[str, int, str | None, bool]] = []  # (host, status, job id, has Retry-After)
    counter = iter(range(10**6))

    def make(host: str):  # type: ignore[no-untyped-def]
        address = stack.net.hosts[host].address

        def request(client: int, seq: int) -> bytes:
            headers = {"X-API-Key": stack.project_key, **({"Prefer": "respond-async"} if client % 2 else {})}
            return Request.json("POST", "/api/text-to-image", job_body(f"mh:link:{next(counter)}"),
                                headers).encode(address, 8000)
        return request

    def record(host: str):  # type: ignore[no-untyped-def]
        def on_response(client: int, response: Response, sample: Sample) -> None:
            try:
                body = json.loads(response.body)
            except ValueError:
                body = {}
            job_id = body.get("jobId") or (body.get("data") or {}).get("jobId") if isinstance(body, dict) else None
            seen.append((host, response.status, job_id, "retry-after" in response.headers))
        return on_response

    async def load() -> list[Sample]:
        loops = [closed_loop(host=stack.net.hosts[h].address, port=8000, make_request=make(h), clients=8, warmup=0,
                             duration=22, max_requests=800, timeout=45, drain=45, on_response=record(h))
                 for h in ("web1", "web2")]
        results = await asyncio.gather(*loops)
        return [s for samples, _, _ in results for s in samples]

    cut_times: dict[str, float] = {}
    republished_before = _log_sum(stack, "republished")

    def cut() -> None:
        time.sleep(4)
        cut_times["down"] = time.time()
        stack.net.link("data", False)
        time.sleep(10)
        stack.net.link("data", True)
        cut_times["up"] = time.time()
    cutter = threading.Thread(target=cut, daemon=True)
    cutter.start()
    samples = asyncio.run(load())
    cutter.join(20)
    statuses = Counter(status for _, status, _, _ in seen)
    errors = Counter(s.error for s in samples if s.status == 0)
    assert not errors, f"requests without an HTTP answer: {errors}"
    assert set(statuses) <= {200, 202, 503}, statuses
    assert all(has for _, status, _, has in seen if status == 503), "a 503 without Retry-After"
    accepted = [job for _, status, job, _ in seen if status in (200, 202)]
    assert all(accepted)
    rows = wait_finished(stack, accepted, timeout=90)
    assert Counter(r["status"] for r in rows.values()) == {"succeeded": len(accepted)}
    # Every row the scenario created either succeeded or was answered 503 (the client knows).
    refused = {job for _, status, job, _ in seen if status == 503 and job}
    created = stack.sql("SELECT id::text, status, error_code FROM generation_job WHERE request::text LIKE %s",
                        ('%mh:link:%',))
    lost = [r for r in created if r[1] != "succeeded" and r[0] not in refused]
    assert not lost, lost
    calls = calls_of(stack, "link")
    repeats = [t for t, c in calls.items() if len(c) > 1]
    ids_by_token = {tok: job for tok, job in _tokens_to_ids(stack, repeats).items()}
    rows_repeated = stack.jobs(ids_by_token.values())
    causes = Counter()
    for token in repeats:
        first, second = calls[token][:2]
        assert len(calls[token]) == 2 and rows_repeated[ids_by_token[token]]["attempts"] == 2, calls[token]
        if first["time"] < cut_times["up"] < second["time"]:
            # The first attempt was upstream when the link went: it could not renew its
            # lease (6 s < 10 s) nor record its result; the sweep re-queued it once the
            # link was back and a second attempt ran (and won).
            causes["lease expired during the outage"] += 1
        else:
            # Both calls after the link returned: the first claim's UPDATE sat in a TCP
            # connection the outage froze and ran when the link came back, with a lease
            # computed before the outage (already expired); the next sweep re-queued it.
            assert cut_times["up"] < first["time"], calls[token]
            causes["claim delayed by the outage, its lease already expired"] += 1
            stack.say(f"  delayed claim: job {ids_by_token[token]} calls {calls[token]}")
    republished = _log_sum(stack, "republished") - republished_before
    stack.say(f"data host link down 10s under load (16 clients, half sync, both web hosts): answers {dict(statuses)}; "
              f"every 503 had Retry-After; {len(accepted)} accepted jobs all succeeded, 0 lost; re-published by the "
              f"sweep (delivery lost with a worker's broker connection): {republished}; "
              f"jobs upstream more than once: {len(repeats)}")
    stack.say(f"  ran twice, by cause: {dict(causes)}")
    for token in repeats[:3]:
        first, second = calls[token]
        stack.say(f"  ran twice: job {ids_by_token[token]} ({token}): call 1 on {first['host']} at "
                  f"{first['time'] - cut_times['up']:+.1f}s from the link's return, call 2 on {second['host']} at "
                  f"{second['time'] - cut_times['up']:+.1f}s")


def _tokens_to_ids(stack: MultiHostStack, tokens: list[str]) -> dict[str, str]:
    """The job ids of these prompt tokens (from the stored request)."""
    found = {}
    for job_id, request in stack.sql("SELECT id::text, request::text FROM generation_job WHERE request::text LIKE %s",
                                     ("%mh:link:%",)):
        match = TOKEN.search(request)
        if match and match.group(0) in tokens:
            found[match.group(0)] = job_id
    return found


# -- rolling restart ----------------------------------------------------------------------
def test_rolling_restart_sigterm_worker_host(hosts) -> None:
    """SIGTERM wk1's worker while it runs jobs: it takes no new job, hands back what still
    runs after WORKER_SHUTDOWN_GRACE_SECONDS (or finishes it within), exits before
    SHUTDOWN_GRACE_SECONDS; no job is lost or failed. Then wk1 restarts and wk2 does the same."""
    stack = hosts
    for phase, latency, victim, other in (("long", 6.0, "wk1", "wk2"), ("short", 1.0, "wk2", "wk1")):
        stack.emulator.latency = latency
        scenario = f"roll-{phase}"
        t0 = time.time()
        first = run_threads(40, lambda i: submit(stack, ("web1", "web2")[i % 2], f"mh:{scenario}:{i}"), timeout=60)
        wait_for(lambda: any(c[0]["host"] == victim for c in calls_of(stack, scenario).values()), 20,
                 f"{victim} to run jobs")
        term_at = time.time()
        code, seconds = [None], [0.0]

        def term() -> None:
            code[0], seconds[0] = stack.stop_role(victim, "worker", timeout=GRACE + 10)
        stopper = threading.Thread(target=term, daemon=True)
        stopper.start()
        time.sleep(0.5)  # the signal has reached the worker
        later = run_threads(20, lambda i: submit(stack, ("web1", "web2")[i % 2], f"mh:{scenario}:{40 + i}"),
                            timeout=60)
        stopper.join(GRACE + 20)
        ids = {f"mh:{scenario}:{i}": a[1] for i, a in enumerate(first + later)}
        rows = wait_finished(stack, list(ids.values()), timeout=90)
        assert Counter(r["status"] for r in rows.values()) == {"succeeded": 60}
        assert code[0] == 0 and seconds[0] < GRACE, (code[0], seconds[0])
        calls = calls_of(stack, scenario)
        # Jobs submitted after the SIGTERM never reach the stopping host (a delivery that
        # arrives anyway is rejected back to the queue, unclaimed: workers/lifecycle.py).
        late_on_victim = [t for t, c in calls.items() if int(t.rsplit(":", 1)[1]) >= 40
                          for call in c if call["host"] == victim]
        assert not late_on_victim, f"{victim} took new jobs after SIGTERM: {late_on_victim}"
        repeats = trace_repeats(stack, scenario, ids, rows, t0)
        for token, job_calls in calls.items():
            if len(job_calls) > 1:  # handed back at the end of the grace, then run by the other host
                assert len(job_calls) == 2 and job_calls[0]["host"] == victim and job_calls[1]["host"] == other
        if latency < WORKER_GRACE:
            assert not repeats, repeats
        stack.say(f"rolling restart ({phase}: upstream {latency:g}s, WORKER_SHUTDOWN_GRACE_SECONDS={WORKER_GRACE}): "
                  f"SIGTERM {victim} with jobs running -> exit {code[0]} after {seconds[0]:.1f}s; 60 jobs succeeded, "
                  f"0 failed; of 20 jobs submitted after SIGTERM, 0 ran on {victim}; handed back and re-run on {other}: {len(repeats)}")
        for line in repeats[:3]:
            stack.say(f"  ran twice: {line} (why: still upstream when the grace ended; handed back, not lost)")
        stack.restore(extras=[EXTRA_BEAT])  # the host comes back before the next one goes


# -- two beats ----------------------------------------------------------------------------
def _log_sum(stack: MultiHostStack, key: str) -> int:
    text = stack.log("wk1", "worker") + stack.log("wk2", "worker")
    # The services' own lines ("sweep: {…}", "retention: {…}"), not the task's return value
    # that Celery logs too.
    return sum(int(n) for n in re.findall(rf"(?:sweep|retention): {{[^}}]*'{key}': (\d+)", text))


def test_two_beats_do_not_double_act(hosts) -> None:
    """A second beat on wk1 by mistake: both publish every sweep and retention run, yet a
    job whose message was lost is re-published once (one upstream call), and each expired
    image and row is released and deleted once."""
    stack = hosts
    for host in ("wk1", "wk2"):
        stack.stop_role(host, "worker")
    stack.start_role("wk1", "beat")
    count = 20
    accepted = run_threads(count, lambda i: submit(stack, ("web1", "web2")[i % 2], f"mh:beats:{i}"), timeout=60)
    ids = {f"mh:beats:{i}": a[1] for i, a in enumerate(accepted)}
    assert all(a[0] == 202 for a in accepted)
    # The broker loses its queue (a Redis restart without persistence): only the sweep
    # knows these jobs now.
    for key in stack.redis_call("KEYS", "celery*") or []:
        stack.redis_call("DEL", key)
    for host in ("wk1", "wk2"):
        stack.start_role(host, "worker")
    stack.wait_ready()
    rows = wait_finished(stack, list(ids.values()), timeout=60)
    assert Counter(r["status"] for r in rows.values()) == {"succeeded": count}
    calls = calls_of(stack, "beats")
    assert all(len(c) == 1 for c in calls.values()) and len(calls) == count, calls
    assert all(r["attempts"] == 1 for r in rows.values())
    wait_for(lambda: _log_sum(stack, "republished") >= count, 10, "the sweeps' log lines")
    republished = _log_sum(stack, "republished")
    assert republished == count
    # Retention: the jobs finished "3 days ago" (IMAGE_RETENTION_DAYS=1, JOB_RETENTION_DAYS=2).
    results = dict(stack.sql("SELECT id::text, result::text FROM generation_job WHERE id::text = ANY(%s)",
                             (list(ids.values()),)))
    files = [stack.workdir / "media" / key for r in results.values() for key in re.findall(r'"([^"]+\.png)"', r)
             if "/" in key and not key.startswith("http")]
    assert files and all(f.exists() for f in files)
    stack.sql("UPDATE generation_job SET finished_at = finished_at - interval '3 days' WHERE id::text = ANY(%s) "
              "RETURNING id", (list(ids.values()),))
    wait_for(lambda: not stack.jobs(ids.values()), 30, "retention to delete the rows")
    wait_for(lambda: _log_sum(stack, "deleted") >= count, 10, "the retention log lines")
    released, deleted = _log_sum(stack, "released"), _log_sum(stack, "deleted")
    assert (released, deleted) == (count, count)
    assert not any(f.exists() for f in files)
    beat_sends = {h: stack.log(h, "beat").count("Sending due task sweep-jobs") for h in ("wk1", "wk2")}
    assert all(beat_sends.values()), beat_sends
    stack.say(f"two beats: sweep-jobs sent {beat_sends} times; {count} jobs with lost messages re-published "
              f"{republished} times in all, each ran upstream once (attempts=1); retention released {released} "
              f"images and deleted {deleted} rows of {count}")
    stack.stop_role(*EXTRA_BEAT)
