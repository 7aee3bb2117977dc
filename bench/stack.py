"""The benchmark's stack: tests/stack.py (the Procfile's web, worker and beat through
`sh -c`, exactly as `make run` runs them, with their own embedded Redis, in their own
process groups) plus what only the benchmark needs:

- a fresh SQLite file and media directory in a temporary directory, migrated first;
- the Gemini emulator as a separate process (`python -m tests.gemini_emulator
  --bench-defaults`: count-only, listen backlog 4096, TCP_NODELAY, cached images; why:
  see tests/gemini_emulator.py), its latency changed between scenarios through stdin;
- a master and a project key created over HTTP, through the API itself;
- ``reset()`` between scenarios, ``settings()`` (what the processes really run with) and
  ``RssSampler`` (peak memory of the web and worker trees);
- the open-files limit raised to its hard limit before anything starts, so every process
  (they inherit it) can hold the 2,000 connections of P6 and what they fan out to.

``procfile=`` runs another Procfile's lines instead of the repository's (to try a server
model without editing it); by default it is the Procfile `make run` runs.

Everything the processes get beyond the shared stack's environment is set in
``BenchStack.__init__``; the rest is inherited, so WEB_CONCURRENCY, WEB_THREADS,
WORKER_CONCURRENCY and LOG_LEVEL from the environment win, exactly as for `make run`.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil

from tests.stack import ROOT, Stack, procfile, spawn, stop_process

__all__ = ["ROOT", "SYNC_WAIT_SECONDS", "BenchStack", "Emulator", "RssSampler", "option_value", "process_trees",
           "raise_open_files_limit"]

SYNC_WAIT_SECONDS = 60
# Enough for P6 (2,000 clients) in every process: the bench's own sockets, a web process
# holding them all, a worker's and the emulator's 2,000 upstream connections.
OPEN_FILES_WANTED = 16384


def raise_open_files_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (children started afterwards inherit it);
    returns (soft, hard). An unlimited hard limit is capped at OPEN_FILES_WANTED x 4."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, OPEN_FILES_WANTED * 4)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def option_value(command: str, *names: str) -> str | None:
    """The last value of any of ``names`` in a command line (``--opt v``, ``--opt=v``,
    ``-o v``, ``-ov``), as the CLI parsers of gunicorn and celery read it; None if absent."""
    found = None
    words = command.split()
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                found = words[i + 1]
            elif name.startswith("--") and word.startswith(name + "="):
                found = word[len(name) + 1:]
            elif not name.startswith("--") and word.startswith(name) and len(word) > len(name):
                found = word[len(name):]
    return found


class Emulator:
    """tests/gemini_emulator.py with its bench defaults, as a child process; latency
    changes and the request count is read through its stdin commands."""

    def __init__(self, workdir: Path, render_every_image: bool = False) -> None:
        extra = ["--no-cache-images"] if render_every_image else []
        self.proc = spawn([sys.executable, "-m", "tests.gemini_emulator", "--bench-defaults", "--port", "0",
                           "--latency", "0", *extra],
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
        stop_process(self.proc, signal.SIGTERM, 5)


def process_trees(pids: list[int]) -> Iterator[psutil.Process]:
    """Each process and all its descendants (a gunicorn master and its workers), skipping
    processes that are gone."""
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            members = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        yield from members


class RssSampler:
    """Peak resident memory of the web tree (gunicorn master + workers) and of the Celery
    worker processes, sampled every 0.25 s from a background thread."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak = {"web": 0, "worker": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree_rss(pids: list[int]) -> int:
        total = 0
        for member in process_trees(pids):
            try:
                total += member.memory_info().rss
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


class BenchStack(Stack):
    def __init__(self, render_every_image: bool = False, worker_processes: int = 1, keep: bool = False,
                 procfile_path: Path | None = None) -> None:
        # worker_processes: copies of the Procfile's worker line outside P4 (P4 sets its own).
        super().__init__(workdir=Path(tempfile.mkdtemp(prefix="banatie-bench-")), worker_processes=worker_processes,
                         migrate=True, env={
                             # Overridable only to try a settings variant without touching the code.
                             "DJANGO_SETTINGS_MODULE": os.environ.get("BENCH_DJANGO_SETTINGS_MODULE",
                                                                      "banatie.settings"),
                             "DEBUG": "0",
                             "GEMINI_API_KEY": "bench-any-key",
                             "BANATIE_RATE_LIMIT": "1000000/h",
                             "SYNC_WAIT_SECONDS": str(SYNC_WAIT_SECONDS),
                         })
        self.keep = keep  # leave the temporary directory (logs, database) for inspection
        if procfile_path is not None:
            self.commands = procfile(Path(procfile_path))
        self.procfile_path = Path(procfile_path) if procfile_path else ROOT / "Procfile"
        self.open_files_limit: tuple[int, int] | None = None
        self.render_every_image = render_every_image
        self.emulator: Emulator | None = None
        self.master_key = self.project_key = ""

    def start(self) -> "BenchStack":
        self.open_files_limit = raise_open_files_limit()  # before any child: they inherit it
        self.emulator = Emulator(self.workdir, self.render_every_image)
        self.env["GEMINI_BASE_URL"] = self.emulator.url
        super().start()
        self._create_keys()
        return self

    def reset(self, workers: int | None = None) -> None:
        """A clean service between scenarios: no queued backlog, no blocked web threads,
        no leftover signals or rate counters; keys and stored jobs stay."""
        self.stop_app()
        self.redis_call(b"FLUSHALL")
        with sqlite3.connect(self.db_path, timeout=30) as db:
            db.execute("UPDATE generation_job SET status='failed', error_code='bench_reset' "
                       "WHERE status IN ('queued', 'running')")
        self.start_app(workers)

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            try:
                if self.emulator:
                    self.emulator.stop()
            finally:
                if not self.keep:
                    shutil.rmtree(self.workdir, ignore_errors=True)

    def redis_call(self, *parts: bytes) -> bytes:
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
        """What the processes actually run with: banatie/gunicorn_conf.py, then the options
        of the Procfile lines themselves (command-line options win over the config file, in
        gunicorn as in celery), evaluated in the benchmark's environment so WEB_* / WORKER_*
        overrides show. Works for any server model: absent settings are None."""
        probe = subprocess.run(
            [sys.executable, "-c", "import json, banatie.gunicorn_conf as c; print(json.dumps({k: getattr(c, k, None) "
             "for k in ('workers', 'threads', 'worker_class', 'worker_connections', 'keepalive', 'timeout', "
             "'backlog')}))"],
            cwd=ROOT, env=self.env, capture_output=True, text=True, check=True, timeout=30)
        gunicorn = json.loads(probe.stdout)
        web_cmd = self._expand(self.commands["web"])
        for key, names, kind in (("worker_class", ("-k", "--worker-class"), str), ("workers", ("-w", "--workers"), int),
                                 ("threads", ("--threads",), int),
                                 ("worker_connections", ("--worker-connections",), int),
                                 ("backlog", ("--backlog",), int)):
            value = option_value(web_cmd, *names)
            if value is not None:
                gunicorn[key] = kind(value)
        if isinstance(gunicorn.get("worker_class"), str):  # "gevent", "gthread", or a dotted class path
            gunicorn["worker_class"] = gunicorn["worker_class"].rsplit(".", 1)[-1]
        worker_cmd = self.worker_command()
        expanded = self._expand(worker_cmd)
        concurrency = option_value(expanded, "-c", "--concurrency")
        return {
            "procfile": str(self.procfile_path),
            "web_command": self.commands["web"],
            "gunicorn": gunicorn,
            "worker_command": worker_cmd,
            "worker_pool": option_value(expanded, "-P", "--pool") or "prefork (celery default)",
            "worker_concurrency": int(concurrency) if concurrency and concurrency.isdigit() else None,
            "log_level": self.env.get("LOG_LEVEL") or "INFO (Procfile default)",
            "sync_wait_seconds": SYNC_WAIT_SECONDS,
            "database": "SQLite (WAL) file in a temporary directory",
            "worker_processes": self.worker_processes,
            "beat": "beat" in self.commands,
            "django_settings_module": self.env["DJANGO_SETTINGS_MODULE"],
            "open_files_limit": list(self.open_files_limit) if self.open_files_limit else None,
        }

    def _expand(self, command: str) -> str:
        """``command`` after the shell's parameter expansion, in the processes' environment."""
        return subprocess.run(["sh", "-c", f"echo {command}"], env=self.env, capture_output=True, text=True,
                              timeout=10).stdout.strip()
