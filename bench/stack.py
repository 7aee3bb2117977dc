"""The service under test, started the way `make run` starts it, but entirely private:
its own embedded Redis on a free port, a fresh SQLite file and media directory in a
temporary directory, and the Gemini emulator (bench/emulator.py) as a separate process.

The web, worker and beat commands are read from the Procfile and run through `sh -c`, as
`make run` runs them, so the benchmark always measures the same server and worker settings
as `make run` (WEB_CONCURRENCY, WEB_THREADS and WORKER_CONCURRENCY from the environment win,
exactly as there). Only two things differ: the beat schedule file lives in the temporary
directory (BANATIE_VAR_DIR) instead of var/, and a second worker (P4) gets its own --hostname.

Every process is started from the main thread in its own process group with
PR_SET_PDEATHSIG, so nothing survives the benchmark even if it is killed; stop() ends
them by their own ids (never by name) and never touches a Redis it did not start.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from banatie.runner import EmbeddedRedis, die_with_parent, free_port
from banatie.runner import procfile as read_procfile

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SYNC_WAIT_SECONDS = 60


def procfile() -> dict[str, str]:
    commands = read_procfile()
    missing = {"web", "worker"} - set(commands)
    if missing:
        raise RuntimeError(f"Procfile has no {', '.join(sorted(missing))} process")
    return commands


def _spawn(argv: list[str], *, env: dict[str, str] | None = None, log: Path | None = None,
           stdin: int | None = None, stdout: int | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    try:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else out, stderr=out if log else subprocess.DEVNULL,
            preexec_fn=die_with_parent, process_group=0,
        )
    finally:
        if log:
            out.close()


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
    """Signal our child's own process group (it is the group leader), then kill it if it
    lingers, then kill any of its descendants that outlived it (psutil checks the pid was
    not reused)."""
    if proc is None:
        return
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
    for child in descendants:
        try:
            if child.is_running():
                child.kill()
        except psutil.Error:
            pass


class Emulator:
    """bench/emulator.py as a child process; latency changes through its stdin."""

    def __init__(self, workdir: Path, render_every_image: bool = False) -> None:
        extra = ["--render-every-image"] if render_every_image else []
        self.proc = _spawn([sys.executable, "-m", "bench.emulator", "--port", "0", "--latency", "0", *extra],
                           log=workdir / "emulator.log", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lock = threading.Lock()
        line = self._readline(15)
        if not line.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = line
        self.port = int(line.rsplit(":", 1)[1])
        self.latency = 0.0

    def _readline(self, timeout: float) -> str:
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline().decode().strip()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        if not result:
            raise RuntimeError("emulator did not answer")
        return result[0]

    def command(self, text: str) -> str:
        with self.lock:
            self.proc.stdin.write((text + "\n").encode())
            self.proc.stdin.flush()
            return self._readline(5)

    def set_latency(self, seconds: float) -> None:
        answer = self.command(f"latency {seconds}")
        if not answer.startswith("ok"):
            raise RuntimeError(f"emulator refused latency {seconds}: {answer}")
        self.latency = seconds

    def served(self) -> int:
        return int(self.command("count").split()[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        _stop(self.proc, signal.SIGTERM, 5)


class RssSampler:
    """Peak resident memory of the web tree (gunicorn master + workers) and of the Celery
    worker processes, sampled every 0.25 s from a background thread."""

    def __init__(self, stack: "Stack") -> None:
        self.stack = stack
        self.peak = {"web": 0, "worker": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree_rss(pids: list[int]) -> int:
        total = 0
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                for member in [proc, *proc.children(recursive=True)]:
                    try:
                        total += member.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def sample(self) -> None:
        for role in ("web", "worker"):
            pids = [p.pid for p in self.stack.procs.get(role, []) if p.poll() is None]
            self.peak[role] = max(self.peak[role], self._tree_rss(pids))

    def __enter__(self) -> "RssSampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    def peak_mb(self) -> dict[str, float]:
        return {role: round(value / 2**20, 1) for role, value in self.peak.items()}


class Stack:
    def __init__(self, render_every_image: bool = False, worker_processes: int = 1, keep: bool = False) -> None:
        self.keep = keep  # leave the temporary directory (logs, database) for inspection
        self.render_every_image = render_every_image
        # How many copies of the Procfile's worker line run (P4 sets its own). `make run`
        # starts one; more is how DESIGN.md scales workers.
        self.worker_processes = worker_processes
        self.workdir = Path(tempfile.mkdtemp(prefix="banatie-bench-"))
        self.port = free_port()
        self.commands = procfile()
        self.procs: dict[str, list[subprocess.Popen]] = {}
        self.redis: EmbeddedRedis | None = None
        self.emulator: Emulator | None = None
        self.db_path = self.workdir / "bench.sqlite3"
        self.master_key = self.project_key = ""

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "Stack":
        self.redis = EmbeddedRedis(workdir=self.workdir).start()
        self.emulator = Emulator(self.workdir, self.render_every_image)
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            # Overridable only to try a settings variant without touching the code.
            "DJANGO_SETTINGS_MODULE": os.environ.get("BENCH_DJANGO_SETTINGS_MODULE", "banatie.settings"),
            "DEBUG": "0",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "REDIS_URL": self.redis.url,
            "MEDIA_ROOT": str(self.workdir / "media"),
            "BANATIE_VAR_DIR": str(self.workdir),
            "GEMINI_API_KEY": "bench-any-key",
            "GEMINI_BASE_URL": self.emulator.url,
            "BANATIE_RATE_LIMIT": "1000000/h",
            "SYNC_WAIT_SECONDS": str(SYNC_WAIT_SECONDS),
        }
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env,
                       check=True, timeout=120)
        self.start_app(self.worker_processes)
        self._create_keys()
        return self

    def start_app(self, workers: int = 1) -> None:
        self.start_process("web", self.commands["web"])
        for n in range(workers):
            self.start_worker(n)
        if "beat" in self.commands:
            self.start_process("beat", self.commands["beat"])  # its schedule under BANATIE_VAR_DIR
        self.wait_ready(workers)

    def start_worker(self, n: int) -> None:
        command = self.commands["worker"] + (f" --hostname bench{n + 1}@%h" if n else "")
        self.start_process("worker", command)

    def start_process(self, role: str, command: str) -> None:
        index = len(self.procs.get(role, []))
        log = self.workdir / f"{role}{index or ''}.log"
        self.procs.setdefault(role, []).append(_spawn(["sh", "-c", f"exec {command}"], env=self.env, log=log))

    def stop_app(self) -> None:
        # Quick shutdowns (gunicorn SIGQUIT, celery cold shutdown): a benchmark leaves threads
        # blocked in sync waits and jobs in the queue that nobody needs any more. gunicorn's
        # gthread workers do not exit while a pool thread still blocks in BLPOP (up to
        # SYNC_WAIT_SECONDS), so the web group is killed after 3 s.
        for role in ("web", "worker", "beat"):
            for proc in self.procs.pop(role, []):
                _stop(proc, signal.SIGQUIT if role != "beat" else signal.SIGTERM, 3 if role == "web" else 10)

    def reset(self, workers: int | None = None) -> None:
        """A clean service between scenarios: no queued backlog, no blocked web threads,
        no leftover signals or rate counters; keys and stored jobs stay."""
        self.stop_app()
        self.redis_call(b"FLUSHALL")
        with sqlite3.connect(self.db_path, timeout=30) as db:
            db.execute("UPDATE generation_job SET status='failed', error_code='bench_reset' "
                       "WHERE status IN ('queued', 'running')")
        self.start_app(workers or self.worker_processes)

    def stop(self) -> None:
        try:
            self.stop_app()
        finally:
            try:
                if self.emulator:
                    self.emulator.stop()
            finally:
                if self.redis:
                    self.redis.stop()  # ours: an EmbeddedRedis on a free port, never 6379
                if not self.keep:
                    shutil.rmtree(self.workdir, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http(self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
             timeout: float = 10) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - 127.0.0.1 only
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def wait_ready(self, workers: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for role, procs in self.procs.items():
                for proc in procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{role} exited with {proc.returncode}; logs in {self.workdir}")
            try:
                status, body = self.http("GET", "/health", timeout=3)
                if status == 200 and body.get("status") == "healthy" and self.workers_answering() >= workers:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"stack not healthy within {timeout}s; logs in {self.workdir}")

    def celery(self):  # type: ignore[no-untyped-def]
        from celery import Celery

        if not hasattr(self, "_celery"):
            self._celery = Celery("bench-control", broker=self.redis.url)
        return self._celery

    def workers_answering(self) -> int:
        return len(self.celery().control.ping(timeout=0.5) or [])

    def redis_call(self, *parts: bytes) -> bytes:
        import socket

        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=5) as sock:
            cmd = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
            sock.sendall(cmd)
            return sock.recv(65536)

    def _create_keys(self) -> None:
        status, body = self.http("POST", "/api/bootstrap/initial-key")
        if status != 201:
            raise RuntimeError(f"bootstrap failed: {status} {body}")
        self.master_key = body["apiKey"]
        status, body = self.http("POST", "/api/admin/keys", {"type": "project", "projectId": "bench", "name": "bench"},
                                 {"X-API-Key": self.master_key})
        if status != 201:
            raise RuntimeError(f"project key creation failed: {status} {body}")
        self.project_key = body["apiKey"]

    def settings(self) -> dict[str, object]:
        """What the processes actually run with: banatie/gunicorn_conf.py and the Procfile
        evaluated in the benchmark's environment (so WEB_* / WORKER_* overrides show)."""
        probe = subprocess.run(
            [sys.executable, "-c", "import json, banatie.gunicorn_conf as c; print(json.dumps({k: getattr(c, k) for k in "
             "('workers', 'threads', 'worker_class', 'worker_connections', 'keepalive', 'timeout', 'backlog')}))"],
            cwd=ROOT, env=self.env, capture_output=True, text=True, check=True, timeout=30)
        gunicorn = json.loads(probe.stdout)
        worker_cmd = self.commands["worker"]
        concurrency = subprocess.run(["sh", "-c", f"echo {worker_cmd}"], env=self.env, capture_output=True,
                                     text=True, timeout=10).stdout
        match = re.search(r"--concurrency\s+(\d+)", concurrency)
        return {
            "web_command": self.commands["web"],
            "gunicorn": gunicorn,
            "worker_command": worker_cmd,
            "worker_concurrency": int(match.group(1)) if match else None,
            "log_level": self.env.get("LOG_LEVEL") or "INFO (Procfile default)",
            "sync_wait_seconds": SYNC_WAIT_SECONDS,
            "database": "SQLite (WAL) file in a temporary directory",
            "worker_processes": self.worker_processes,
            "beat": "beat" in self.commands,
            "django_settings_module": self.env["DJANGO_SETTINGS_MODULE"],
        }
