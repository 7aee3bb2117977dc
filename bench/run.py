"""`make bench`: Banatie's figures against their references, in one bounded run.

    .venv/bin/python -m bench.run [--quick] [--only p1,p2,p3,p4,machine] [--out FILE]

Starts a private stack (bench/stack.py on tests/stack.py), runs the scenarios of issue 9, prints a table
(Banatie | reference | ratio | target) and writes bench/results/latest.json.
Every target is 127.0.0.1; every loop is bounded in time and in requests; the whole run
stays under BUDGET_SECONDS (a scenario that would not fit is skipped and says so).
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import signal
import sqlite3
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psutil

from banatie.env import worker_processes
from bench.load import Request, Response, Sample, closed_loop, percentile
from bench.stack import ROOT, SYNC_WAIT_SECONDS, BenchStack, RssSampler, process_trees

BUDGET_SECONDS = 570  # the issue asks for < 10 minutes on 2 cores
UPSTREAM_P1 = 2.0
UPSTREAM_P4 = 0.2
P4_JOBS = 500
RESULTS = ROOT / "bench" / "results"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": loadavg(),
        # The load average counts the benchmark's own hundreds of threads for minutes after a
        # run; what others use of the CPU right before we start is the figure to trust.
        "cpu_busy_percent_before": psutil.cpu_percent(interval=2),
    }


class CpuMeter:
    """CPU seconds spent per role during a scenario (user + system, whole process trees)."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack

    def _roles(self) -> dict[str, list[int]]:
        roles = {role: [p.pid for p in procs if p.poll() is None] for role, procs in self.stack.procs.items()}
        roles["emulator"] = [self.stack.emulator.proc.pid]
        roles["redis"] = [self.stack.redis.proc.pid]
        return roles

    def snapshot(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for role, pids in self._roles().items():
            total = 0.0
            for member in process_trees(pids):
                try:
                    t = member.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
            totals[role] = total
        t = os.times()
        totals["load generator (bench)"] = t.user + t.system
        return totals

    def __enter__(self) -> "CpuMeter":
        self.before, self.t0 = self.snapshot(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        after, wall = self.snapshot(), time.monotonic() - self.t0
        self.cores = {role: round((after.get(role, 0) - self.before.get(role, 0)) / wall, 2) for role in after}
        self.cores["wall_seconds"] = round(wall, 1)


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()


def job_phases(db_path: Path, since: float, until: float,
               answered: dict[str, tuple[float, float]] | None = None) -> dict[str, object]:
    """Where a sync request's time went, from the Job rows created in [since, until]
    (epoch s) and, for answered requests, the client's send/receive times:
    before = sent -> row created (accept, thread, auth, rate limit, validation),
    queue = created -> started (commit, publish, worker pickup, claim),
    run = started -> finished (upstream call, image check, storage),
    after = finished -> answered (row update, wake-up signal, response)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT id, created_at, started_at, finished_at FROM generation_job "
                          "WHERE created_at BETWEEN ? AND ?", (_utc(since), _utc(until))).fetchall()
    finally:
        db.close()
    phases: dict[str, list[float]] = {"before": [], "queue": [], "run": [], "after": []}
    for job_id, created, started, finished in rows:
        if started:
            phases["queue"].append(_epoch(started) - _epoch(created))
        if started and finished:
            phases["run"].append(_epoch(finished) - _epoch(started))
        if answered and job_id in answered and finished:
            sent, received = answered[job_id]
            phases["before"].append(_epoch(created) - sent)
            phases["after"].append(received - _epoch(finished))
    ms = (lambda v: round(v * 1000, 1) if v is not None else None)
    out: dict[str, object] = {"jobs": len(rows), "finished": len(phases["run"])}
    for name in ("before", "queue", "run", "after"):
        out[f"{name}_p50_ms"] = ms(percentile(phases[name], 0.5))
        out[f"{name}_p99_ms"] = ms(percentile(phases[name], 0.99))
    return out


def summarize(samples: list[Sample], window: tuple[float, float], *, minus: float = 0.0) -> dict[str, object]:
    start, end = window
    ok_in_window = [s for s in samples if s.status == 200 and start <= s.end <= end]
    latencies = [s.end - s.start - minus for s in ok_in_window]
    statuses: dict[str, int] = {}
    for s in samples:
        key = str(s.status) if s.status else s.error
        statuses[key] = statuses.get(key, 0) + 1
    timeouts = sum(1 for s in samples if s.status == 202 or s.error in ("timeout", "unanswered"))
    errors = sum(1 for s in samples if s.status not in (200, 202) and s.error not in ("timeout", "unanswered"))
    ms = (lambda v: round(v * 1000, 1) if v is not None else None)
    return {
        "requests": len(samples),
        "throughput_rps": round(len(ok_in_window) / (end - start), 2),
        "window_seconds": round(end - start, 1),
        "ok_in_window": len(ok_in_window),
        "errors": errors,
        "timeouts": timeouts,
        "statuses": statuses,
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "max_ms": ms(max(latencies) if latencies else None),
    }


class Bench:
    def __init__(self, stack: BenchStack, quick: bool) -> None:
        self.stack = stack
        self.quick = quick
        self.host, self.port = "127.0.0.1", stack.port
        self.results: dict[str, object] = {}
        self.t_start = time.monotonic()

    # -- request builders ----------------------------------------------------------------
    def t2i(self, extra_headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        key, host, port = self.stack.project_key, self.host, self.port

        def make(client: int, seq: int) -> bytes:
            body = {"prompt": f"a lighthouse at dusk, client {client} request {seq}", "filename": "bench",
                    "autoEnhance": False}
            return Request.json("POST", "/api/text-to-image", body, {"X-API-Key": key, **(extra_headers or {})}
                                ).encode(host, port)
        return make

    def get(self, path: str, key: str | None = None):  # type: ignore[no-untyped-def]
        raw = Request("GET", path, {"X-API-Key": key} if key else {}).encode(self.host, self.port)
        return lambda client, seq: raw

    def loop(self, make, *, clients: int, warmup: float, duration: float, timeout: float, drain: float,
             max_requests: int, port: int | None = None, on_response=None):  # type: ignore[no-untyped-def]
        return asyncio.run(closed_loop(
            host=self.host, port=port or self.port, make_request=make, clients=clients, warmup=warmup,
            duration=duration, max_requests=max_requests, timeout=timeout, drain=drain, on_response=on_response,
        ))

    def time_left(self) -> float:
        return BUDGET_SECONDS - (time.monotonic() - self.t_start)

    def fits(self, name: str, seconds: float) -> bool:
        if self.time_left() < seconds:
            log(f"SKIP {name}: needs up to {seconds:.0f}s, {self.time_left():.0f}s left of the {BUDGET_SECONDS}s budget")
            self.results[name] = {"skipped": f"time budget ({BUDGET_SECONDS}s) exhausted"}
            return False
        return True

    # -- machine ceilings ------------------------------------------------------------------
    def machine_ceilings(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.stack.redis.port)
        rtts = []
        for _ in range(200):
            client.ping()
        deadline = time.monotonic() + 5
        while len(rtts) < 3000 and time.monotonic() < deadline:
            t = time.perf_counter()
            client.ping()
            rtts.append(time.perf_counter() - t)
        client.close()
        self.results["redis"] = {
            "samples": len(rtts),
            "rtt_p50_us": round(percentile(rtts, 0.5) * 1e6, 1),
            "rtt_p99_us": round(percentile(rtts, 0.99) * 1e6, 1),
            "sequential_ops_per_s": round(len(rtts) / sum(rtts)),
        }
        log(f"Redis PING round trip p50 {self.results['redis']['rtt_p50_us']} µs")

        self.stack.emulator.set_latency(0)
        path = "/v1beta/models/gemini-2.5-flash-image:generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": "a lighthouse at dusk"}]}],
                "generationConfig": {"responseModalities": ["IMAGE", "TEXT"], "imageConfig": {"aspectRatio": "1:1"}}}
        emu_port = self.stack.emulator.port

        def make(client: int, seq: int) -> bytes:
            body["contents"][0]["parts"][0]["text"] = f"a lighthouse at dusk {client}-{seq}"
            return Request.json("POST", path, body, {"x-goog-api-key": "bench"}).encode("127.0.0.1", emu_port)

        load = loadavg()
        samples, *window = self.loop(make, clients=16, warmup=1, duration=3 if self.quick else 6, timeout=10,
                                     drain=5, max_requests=20000, port=emu_port)
        result = summarize(samples, tuple(window))
        result["loadavg"] = load
        self.results["emulator_alone"] = result
        log(f"emulator alone (latency 0, 16 clients): {result['throughput_rps']} req/s, p50 {result['p50_ms']} ms")

    def full_request_ceiling(self) -> None:
        """Banatie end to end with upstream latency 0: the most full requests this machine
        completes per second (what P1 at 1,000 clients is compared with)."""
        self.stack.emulator.set_latency(0)
        best = None
        runs = []
        for clients in ((32,) if self.quick else (32, 128)):
            load = loadavg()
            with CpuMeter(self.stack) as cpu:
                samples, *window = self.loop(self.t2i(), clients=clients, warmup=3, duration=5 if self.quick else 10,
                                             timeout=30, drain=30, max_requests=50000)
            result = {"clients": clients, **summarize(samples, tuple(window)), "cpu_cores": cpu.cores,
                      "loadavg": load}
            runs.append(result)
            log(f"full-request ceiling, {clients} clients: {result['throughput_rps']} req/s "
                f"(p50 {result['p50_ms']} ms, errors {result['errors']}, timeouts {result['timeouts']}); cpu {cpu.cores}")
            if best is None or result["throughput_rps"] > best["throughput_rps"]:
                best = result
        self.results["ceiling"] = {"throughput_rps": best["throughput_rps"], "runs": runs}

    # -- P1 ----------------------------------------------------------------------------------
    def p1(self, clients: int) -> None:
        name = f"p1_{clients}"
        # A client gives up after SYNC_WAIT_SECONDS, the longest the server promises to hold
        # a sync call; after the window, in-flight requests may finish (bounded by that too).
        warmup, duration, timeout = (4, 10, 30) if self.quick else (6, 30, SYNC_WAIT_SECONDS)
        if not self.fits(name, warmup + duration + timeout + 30):
            return
        self.stack.reset()
        self.stack.emulator.set_latency(UPSTREAM_P1)
        served_before = self.stack.emulator.served()
        ideal = clients / UPSTREAM_P1
        max_requests = int(ideal * (warmup + duration) * 1.5) + clients
        load = loadavg()
        epoch0 = time.time() - time.monotonic()
        answered: dict[str, tuple[float, float]] = {}  # job id -> (sent, answered), epoch seconds

        def note(_client: int, response: Response, sample: Sample) -> None:
            if response.status == 200 and len(answered) < 20000:
                job_id = json.loads(response.body)["data"]["jobId"]
                answered[uuid.UUID(job_id).hex] = (epoch0 + sample.start, epoch0 + sample.end)

        with RssSampler(self.stack) as rss, CpuMeter(self.stack) as cpu:
            samples, *window = self.loop(self.t2i(), clients=clients, warmup=warmup, duration=duration,
                                         timeout=timeout, drain=timeout + 2, max_requests=max_requests,
                                         on_response=note)
        result = summarize(samples, tuple(window), minus=UPSTREAM_P1)
        result["job_phases"] = job_phases(self.stack.db_path, epoch0 + window[0], epoch0 + window[1], answered)
        result.update({
            "clients": clients, "upstream_latency_s": UPSTREAM_P1, "ideal_rps": ideal,
            "ratio_to_ideal": round(result["throughput_rps"] / ideal, 3),
            "peak_rss_mb": rss.peak_mb(), "cpu_cores": cpu.cores, "loadavg": load,
            "client_timeout_s": timeout, "warmup_s": warmup,
            "upstream_calls": self.stack.emulator.served() - served_before,
        })
        self.results[name] = result
        log(f"P1 N={clients}: {result['throughput_rps']} req/s of ideal {ideal:.0f} ({result['ratio_to_ideal']}×), "
            f"errors {result['errors']}, timeouts {result['timeouts']}, p50-2s {result['p50_ms']} ms, "
            f"p99-2s {result['p99_ms']} ms, jobs {result['job_phases']}, RSS {result['peak_rss_mb']}, cpu {cpu.cores}, statuses {result['statuses']}")

    # -- P2 ----------------------------------------------------------------------------------
    def p2(self) -> None:
        from google import genai
        from google.genai import types

        samples_wanted = 60 if self.quick else 250
        warmup = 20
        if not self.fits("p2", 90):
            return
        self.stack.emulator.set_latency(0)
        client = genai.Client(api_key="bench-any-key",
                              http_options=types.HttpOptions(base_url=self.stack.emulator.url, timeout=30_000))
        config = types.GenerateContentConfig(response_modalities=["IMAGE", "TEXT"],
                                             image_config=types.ImageConfig(aspect_ratio="1:1"))
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"X-API-Key": self.stack.project_key, "Content-Type": "application/json"}
        banatie, direct, failures = [], [], 0
        deadline = time.monotonic() + 75
        load = loadavg()
        with CpuMeter(self.stack) as cpu:
            for i in range(warmup + samples_wanted):
                if time.monotonic() > deadline:
                    break
                prompt = f"a lighthouse at dusk, sequential {i}"
                # Interleaved, so background load hits both sides alike.
                t = time.perf_counter()
                response = client.models.generate_content(model="gemini-2.5-flash-image", contents=[prompt],
                                                          config=config)
                image = next(p.inline_data.data for p in response.parts if p.inline_data is not None)
                elapsed_direct = time.perf_counter() - t
                assert len(image) > 100
                t = time.perf_counter()
                conn.request("POST", "/api/text-to-image", json.dumps(
                    {"prompt": prompt, "filename": "bench", "autoEnhance": False}), headers)
                answer = conn.getresponse()
                answer.read()
                elapsed_banatie = time.perf_counter() - t
                if answer.status != 200:
                    failures += 1
                if i >= warmup:
                    direct.append(elapsed_direct)
                    if answer.status == 200:
                        banatie.append(elapsed_banatie)
        conn.close()
        client.close()
        ms = lambda v: round(v * 1000, 2)  # noqa: E731
        result = {
            "samples": len(banatie), "direct_samples": len(direct), "failures": failures,
            "banatie_p50_ms": ms(percentile(banatie, 0.5)), "banatie_p99_ms": ms(percentile(banatie, 0.99)),
            "direct_p50_ms": ms(percentile(direct, 0.5)), "direct_p99_ms": ms(percentile(direct, 0.99)),
            "cpu_cores": cpu.cores, "loadavg": load,
        }
        result["p50_diff_ms"] = round(result["banatie_p50_ms"] - result["direct_p50_ms"], 2)
        result["p99_diff_ms"] = round(result["banatie_p99_ms"] - result["direct_p99_ms"], 2)
        self.results["p2"] = result
        log(f"P2: Banatie p50/p99 {result['banatie_p50_ms']}/{result['banatie_p99_ms']} ms vs direct "
            f"{result['direct_p50_ms']}/{result['direct_p99_ms']} ms ({len(banatie)} samples each, {failures} failures)")

    # -- P3 ----------------------------------------------------------------------------------
    def p3(self) -> None:
        rounds, seconds, clients = (1, 4, 32) if self.quick else (2, 6, 32)
        if not self.fits("p3", rounds * 2 * (seconds + 1) + 20):
            return
        totals = {"me": [0, 0.0, []], "info": [0, 0.0, []]}
        cpu_by_path = {}
        load = loadavg()
        for _ in range(rounds):
            for label, make in (("info", self.get("/api/info")), ("me", self.get("/api/me", self.stack.project_key))):
                with CpuMeter(self.stack) as cpu:
                    samples, *window = self.loop(make, clients=clients, warmup=1, duration=seconds, timeout=10,
                                                 drain=10, max_requests=200000)
                s = summarize(samples, tuple(window))
                totals[label][0] += s["ok_in_window"]
                totals[label][1] += s["window_seconds"]
                totals[label][2].append(s)
                cpu_by_path[label] = cpu.cores
        result = {label: {"rps": round(n / secs, 1), "runs": runs} for label, (n, secs, runs) in totals.items()}
        result["ratio"] = round(result["me"]["rps"] / result["info"]["rps"], 3)
        result["clients"] = clients
        result["cpu_cores"] = cpu_by_path
        result["loadavg"] = load
        self.results["p3"] = result
        log(f"P3: /api/me {result['me']['rps']} req/s vs /api/info {result['info']['rps']} req/s "
            f"({result['ratio']}×); errors me {sum(r['errors'] for r in result['me']['runs'])}, "
            f"info {sum(r['errors'] for r in result['info']['runs'])}")

    # -- P4 ----------------------------------------------------------------------------------
    def p4_run(self, workers: int, latency: float, jobs: int) -> dict[str, object]:
        self.stack.reset(workers)
        self.stack.emulator.set_latency(latency)
        control = self.stack.celery().control
        paused = control.cancel_consumer("celery", reply=True, timeout=2)
        if len(paused) < workers:
            raise RuntimeError(f"only {len(paused)} of {workers} workers paused their queue")
        job_ids: list[str] = []

        def collect(_client: int, response: Response, _sample: Sample) -> None:
            if response.status == 202:
                job_ids.append(json.loads(response.body)["jobId"])

        samples, *_ = self.loop(self.t2i({"Prefer": "respond-async"}), clients=16, warmup=0, duration=60, timeout=30,
                                drain=10, max_requests=jobs, on_response=collect)
        if len(job_ids) != jobs:
            raise RuntimeError(f"P4 submitted {len(job_ids)} of {jobs} jobs: {summarize(samples, (0, 1))['statuses']}")
        hex_ids = [uuid.UUID(j).hex for j in job_ids]
        db = sqlite3.connect(f"file:{self.stack.db_path}?mode=ro", uri=True, timeout=30)
        marks = ",".join("?" * len(hex_ids))
        load = loadavg()
        with CpuMeter(self.stack) as cpu:
            released = time.time()
            resumed = control.add_consumer("celery", reply=True, timeout=2)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = db.execute(f"SELECT count(*) FROM generation_job WHERE status IN ('succeeded','failed') "
                                  f"AND id IN ({marks})", hex_ids).fetchone()[0]
                if done >= jobs:
                    break
                time.sleep(0.05)
        rows = db.execute(f"SELECT status, started_at, finished_at FROM generation_job WHERE id IN ({marks})",
                          hex_ids).fetchall()
        db.close()

        started = [_epoch(r[1]) for r in rows if r[1]]
        finished = [_epoch(r[2]) for r in rows if r[2]]
        succeeded = sum(1 for r in rows if r[0] == "succeeded")
        makespan = (max(finished) - min(started)) if finished and started else None
        return {
            "workers": workers, "jobs": jobs, "upstream_latency_s": latency, "succeeded": succeeded,
            "finished": len(finished), "resumed_replies": len(resumed),
            "makespan_s": round(makespan, 3) if makespan else None,
            "since_release_s": round(max(finished) - released, 3) if finished else None,
            "jobs_per_s": round(jobs / makespan, 1) if makespan else None,
            "cpu_cores": cpu.cores, "loadavg": load,
        }

    def p4(self) -> None:
        jobs = 150 if self.quick else P4_JOBS
        if not self.fits("p4", 3 * 40):
            return
        runs = {}
        for workers in (1, 2):
            runs[workers] = self.p4_run(workers, UPSTREAM_P4, jobs)
            log(f"P4 {workers} worker(s): {jobs} jobs in {runs[workers]['makespan_s']} s "
                f"({runs[workers]['jobs_per_s']} jobs/s, {runs[workers]['succeeded']} succeeded), cpu {runs[workers]['cpu_cores']}")
        result = {"one": runs[1], "two": runs[2]}
        if runs[1]["makespan_s"] and runs[2]["makespan_s"]:
            result["speedup"] = round(runs[1]["makespan_s"] / runs[2]["makespan_s"], 3)
        if self.fits("p4_ceiling", 40):
            result["ceiling_two_workers_latency0"] = self.p4_run(2, 0.0, jobs)
            log(f"P4 machine ceiling (2 workers, latency 0): {result['ceiling_two_workers_latency0']['jobs_per_s']} jobs/s")
        self.results["p4"] = result


# -- the table ------------------------------------------------------------------------------
def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def table(results: dict[str, object], settings: dict[str, object]) -> list[list[str]]:
    rows = [["scenario", "Banatie", "reference", "ratio", "target", ""]]
    ceiling = (results.get("ceiling") or {}).get("throughput_rps")
    conc = settings.get("worker_concurrency")
    for key in sorted((k for k in results if k.startswith("p1_")), key=lambda k: int(k[3:])):
        n, r = int(key[3:]), results[key]
        target = 0.95 if n <= 200 else 0.8
        if "skipped" in r:
            rows.append([f"P1 {n} clients", "skipped", "", "", "", ""])
            continue
        ref = r["ideal_rps"] if n <= 200 or not ceiling else min(r["ideal_rps"], ceiling)
        ratio = r["throughput_rps"] / ref
        ref_text = f"ideal {r['ideal_rps']:.0f}/s" + ("" if n <= 200 or not ceiling else f", ceiling {ceiling}/s")
        rows.append([f"P1 {n} clients, 2 s upstream: throughput", f"{r['throughput_rps']}/s", ref_text,
                     f"{ratio:.2f}×", f"≥ {target}×", verdict(ratio >= target)])
        clean = r["errors"] == 0 and r["timeouts"] == 0
        rows.append([f"P1 {n}: errors / time-outs", f"{r['errors']} / {r['timeouts']}", f"of {r['requests']} requests",
                     "", "0 / 0" if n > 200 else "", verdict(clean) if n > 200 else "-"])
        rows.append([f"P1 {n}: p50 / p99 latency − 2 s", f"{r['p50_ms']} / {r['p99_ms']} ms", "", "", "", "-"])
        rss = r["peak_rss_mb"]
        rows.append([f"P1 {n}: peak RSS web / worker", f"{rss['web']} / {rss['worker']} MB", "", "",
                     "web ≤ 300 MB" if n > 200 else "", verdict(rss["web"] <= 300) if n > 200 else "-"])
    if ceiling:
        rows.append(["ceiling: full request, upstream 0 ms", f"{ceiling}/s", "", "", "", "-"])
    p2 = results.get("p2")
    if p2 and "skipped" not in p2:
        rows.append(["P2 overhead p50 (upstream 0 ms)", f"{p2['banatie_p50_ms']} ms", f"direct SDK {p2['direct_p50_ms']} ms",
                     f"+{p2['p50_diff_ms']} ms", "≤ +10 ms", verdict(p2["p50_diff_ms"] <= 10)])
        rows.append(["P2 overhead p99", f"{p2['banatie_p99_ms']} ms", f"direct SDK {p2['direct_p99_ms']} ms",
                     f"+{p2['p99_diff_ms']} ms", "≤ +30 ms", verdict(p2["p99_diff_ms"] <= 30)])
    p3 = results.get("p3")
    if p3 and "skipped" not in p3:
        rows.append(["P3 GET /api/me (auth + rate state)", f"{p3['me']['rps']}/s", f"/api/info {p3['info']['rps']}/s",
                     f"{p3['ratio']:.2f}×", "≥ 0.8×", verdict(p3["ratio"] >= 0.8)])
    p4 = results.get("p4")
    if p4 and "skipped" not in p4:
        one, two = p4["one"], p4["two"]
        rows.append([f"P4 {one['jobs']} async jobs, 200 ms upstream, 2 vs 1 worker",
                     f"{two['makespan_s']} s ({two['jobs_per_s']}/s)", f"{one['makespan_s']} s ({one['jobs_per_s']}/s)",
                     f"{p4.get('speedup', 0):.2f}×", "≥ 1.8×", verdict(p4.get("speedup", 0) >= 1.8)])
        if conc:
            rows.append(["P4 ideal (threads × 1/0.2 s)", f"{2 * conc * 5}/s", f"{conc * 5}/s", "", "", "-"])
        c = p4.get("ceiling_two_workers_latency0")
        if c:
            rows.append(["ceiling: async jobs, 2 workers, upstream 0 ms", f"{c['jobs_per_s']}/s", "", "", "", "-"])
    emu, red = results.get("emulator_alone"), results.get("redis")
    if emu:
        rows.append(["machine: emulator alone (16 clients, 0 ms)", f"{emu['throughput_rps']}/s", "", "", "", "-"])
    if red:
        rows.append(["machine: Redis PING round trip p50 / p99", f"{red['rtt_p50_us']} / {red['rtt_p99_us']} µs", "",
                     "", "", "-"])
    return rows


def render(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short windows (a smoke test, not figures)")
    ap.add_argument("--only", default="machine,ceiling,p2,p3,p1,p4",
                    help="comma-separated subset of machine,ceiling,p1,p2,p3,p4")
    ap.add_argument("--p1-clients", default="200,1000", help="P1 client counts (default 200,1000)")
    ap.add_argument("--worker-processes", type=int, default=worker_processes(),
                    help="copies of the Procfile worker line outside P4 (default 2, as make run; env WORKER_PROCESSES)")
    ap.add_argument("--render-every-image", action="store_true",
                    help="emulator draws a fresh PNG per request (costs ~13 ms CPU each on the same cores)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (process logs, database)")
    ap.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = ap.parse_args(argv)
    only = {part.strip() for part in args.only.split(",") if part.strip()}

    # SIGTERM/SIGHUP end the run like Ctrl-C: through the finally below, which stops everything.
    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)

    info = machine()
    log(f"machine: {info['nproc']} cores ({info['cpu_model']}), {info['memory_gb']} GB; load average "
        f"{info['loadavg_at_start']}, CPU {info['cpu_busy_percent_before']}% busy before start")
    t0 = time.monotonic()
    stack = BenchStack(render_every_image=args.render_every_image, worker_processes=max(1, args.worker_processes),
                  keep=args.keep)
    bench = None
    try:
        stack.start()
        settings = stack.settings()
        g = settings["gunicorn"]
        log(f"stack up in {time.monotonic() - t0:.1f}s: gunicorn {g['worker_class']} {g['workers']}×{g['threads']} threads, "
            f"{settings['worker_processes']} × celery --pool threads --concurrency {settings['worker_concurrency']}; logs in {stack.workdir}")
        bench = Bench(stack, args.quick)
        if "machine" in only:
            bench.machine_ceilings()
        p1_clients = [int(n) for n in args.p1_clients.split(",") if n.strip()]
        if "ceiling" in only or ("p1" in only and any(n > 200 for n in p1_clients)):
            bench.full_request_ceiling()
        if "p2" in only:
            bench.p2()
        if "p3" in only:
            bench.p3()
        if "p1" in only:
            for clients in p1_clients:
                bench.p1(clients)
        if "p4" in only:
            bench.p4()
    except KeyboardInterrupt:
        log("interrupted; stopping the stack")
        return 130
    finally:
        stack.stop()
    rows = table(bench.results, settings)
    print()
    print(render(rows))
    print()
    info["loadavg_at_end"] = loadavg()
    out = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "quick": args.quick,
        "emulator_renders_every_image": args.render_every_image,
        "machine": info,
        "settings": settings,
        "results": bench.results,
        "table": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    log(f"done in {out['duration_s']}s; wrote {args.out}; load average {info['loadavg_at_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
