"""The whole service as separate processes, started the way `make run` starts it: one
module for the fault tests (the `stack_factory` fixture in tests/conftest.py) and the
benchmarks (bench/stack.py adds the emulator process, keys and memory sampling on top).

The web, worker and beat commands are the Procfile lines, run through `sh -c` as honcho
runs them, so tests and benchmarks run exactly what `make run` runs. What differs, and
only this:

- the environment: ``os.environ``, then the stack's own values (a free ``PORT``,
  ``HOST=127.0.0.1``, ``REDIS_URL`` of its own embedded Redis, ``DATABASE_URL`` of a
  fresh SQLite file, ``MEDIA_ROOT``, ``BANATIE_VAR_DIR`` and an empty
  ``PROMETHEUS_MULTIPROC_DIR`` in the workdir, a random
  ``SECRET_KEY``, the venv's bin/ first on ``PATH``), then the caller's ``env``;
- the worker's ``--pool`` and ``--concurrency`` when the caller sets ``worker_pool`` /
  ``worker_concurrency``; a worker started while another one runs gets its own
  ``--hostname``;
- beat's schedule file lives in the workdir, like the logs (``<role><n>.log``);
- ``manage.py migrate`` runs only with ``migrate=True`` (tests share a migrated database).

Every process is started in its own process group with PR_SET_PDEATHSIG, so nothing
outlives the caller even if it is killed (start them from the main thread: the signal
fires when the starting *thread* ends). ``stop()`` ends them by their own ids, never by
name, and stops only the Redis it started. All of it listens on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal as signals
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import psutil

from banatie.runner import procfile as read_procfile
from banatie.runner import EmbeddedRedis, die_with_parent, free_port, metrics_dir_fresh

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's commands by process name (banatie.runner's one reader, as `make run`
    uses it); web and worker are required."""
    commands = read_procfile(path)
    missing = {"web", "worker"} - set(commands)
    if missing:
        raise RuntimeError(f"Procfile has no {', '.join(sorted(missing))} process")
    return commands


def with_option(command: str, option: str, value: str) -> str:
    """``command`` with ``option``'s value replaced (``--opt value`` or ``--opt=value``),
    or the option appended when the command does not have it."""
    pattern = re.compile(rf"(?<!\S){re.escape(option)}(?:=|\s+)\S+")
    if pattern.search(command):
        return pattern.sub(lambda _: f"{option} {value}", command, count=1)
    return f"{command} {option} {value}"


def spawn(argv: list[str], *, env: Mapping[str, str] | None = None, log: Path | None = None,
          stdin: int | None = None, stdout: int | None = None) -> subprocess.Popen:
    """Start ``argv`` from ROOT in its own process group, dying with us; output to ``log``."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below, the child keeps its copy
    try:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else out, stderr=out if log else subprocess.DEVNULL,
            preexec_fn=die_with_parent, process_group=0,
        )
    finally:
        if log:
            out.close()


def stop_process(proc: subprocess.Popen | None, sig: int = signals.SIGTERM, wait: float = 10.0) -> None:
    """Signal our child's own process group (it is the group leader), kill the group if it
    lingers past ``wait`` seconds, then kill any of its descendants that outlived it
    (psutil checks the pid was not reused)."""
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
                os.killpg(proc.pid, signals.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
    for child in descendants:
        try:
            if child.is_running():
                child.kill()
        except psutil.Error:
            pass


class Stack:
    """Redis, web, worker(s) and beat as separate processes; see the module docstring.

    ``procs`` maps a role ("web", "worker", "beat") to its processes, the running ones and
    any that exited since the role was last started; ``signal``/``wait_exit`` act on them.
    """

    def __init__(self, *, workdir: Path, env: Mapping[str, str] | None = None, worker_processes: int = 1,
                 worker_concurrency: int | None = None, worker_pool: str | None = None,
                 migrate: bool = False) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.worker_processes = worker_processes  # how many copies of the worker line start_app() runs
        self.worker_concurrency = worker_concurrency
        self.worker_pool = worker_pool
        self.run_migrate = migrate
        self.commands = procfile()
        self.redis = EmbeddedRedis(workdir=self.workdir)
        self.port = free_port()
        self.db_path = self.workdir / "db.sqlite3"  # used unless env sets DATABASE_URL
        self.env: dict[str, str] = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "MEDIA_ROOT": str(self.workdir / "media"),
            "BANATIE_VAR_DIR": str(self.workdir),
            "BANATIE_ENV_FILE": str(self.workdir / "no.env"),  # never a developer's .env
            "SECRET_KEY": secrets.token_urlsafe(50),
            # One metrics directory for all of the stack's processes, as `make run` makes it.
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir_fresh(self.workdir / "prometheus")),
            **(env or {}),
        }
        self.procs: dict[str, list[subprocess.Popen]] = {}
        self._started: dict[str, int] = {}  # processes ever started per role: log and hostname numbers
        self._celery = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "Stack":
        """Redis, then (with migrate=True) `manage.py migrate`, then start_app()."""
        self.redis.start()
        if self.run_migrate:
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                           env=self.env, check=True, timeout=120)
        self.start_app()
        return self

    def start_app(self, workers: int | None = None) -> None:
        """Web, ``workers`` (default worker_processes) workers and beat; returns once they answer."""
        workers = self.worker_processes if workers is None else workers
        self.start_process("web", self.commands["web"])
        for _ in range(workers):
            self.start_worker()
        if "beat" in self.commands:
            self.start_process("beat", with_option(self.commands["beat"], "--schedule",
                                                   str(self.workdir / "celerybeat-schedule")))
        self.wait_ready(workers)

    def worker_command(self) -> str:
        """The Procfile's worker line with this stack's --pool and --concurrency, if set."""
        command = self.commands["worker"]
        if self.worker_pool:
            command = with_option(command, "--pool", self.worker_pool)
        if self.worker_concurrency:
            command = with_option(command, "--concurrency", str(self.worker_concurrency))
        return command

    def start_worker(self) -> subprocess.Popen:
        """One more worker process (it does not wait for it to answer)."""
        command = self.worker_command()
        if self.running("worker"):  # two workers must not share a node name
            command = with_option(command, "--hostname", f"worker{self._started.get('worker', 0) + 1}-{self.port}@%h")
        return self.start_process("worker", command)

    def start_process(self, role: str, command: str) -> subprocess.Popen:
        """Run ``command`` as `sh -c 'exec <command>'` (as honcho does); the pid is the command's."""
        index = self._started.get(role, 0)
        self._started[role] = index + 1
        log = self.workdir / f"{role}{index or ''}.log"
        proc = spawn(["sh", "-c", f"exec {command}"], env=self.env, log=log)
        # Processes that already exited were waited for: only running ones stay listed.
        self.procs[role] = [*self.running(role), proc]
        return proc

    def running(self, role: str) -> list[subprocess.Popen]:
        return [proc for proc in self.procs.get(role, []) if proc.poll() is None]

    def wait_ready(self, workers: int | None = None, timeout: float = 60) -> None:
        """Until /health is healthy and ``workers`` (default: all running) workers answer a
        ping; a process that exits meanwhile fails it at once."""
        workers = len(self.running("worker")) if workers is None else workers
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for role, procs in self.procs.items():
                for proc in procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{role} exited with {proc.returncode}; logs in {self.workdir}")
            try:
                status, body = self.http("GET", "/health", timeout=3)
                if status == 200 and body.get("status") == "healthy" and self.workers_answering(workers) >= workers:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"stack not healthy within {timeout}s; logs in {self.workdir}")

    def signal(self, role: str, sig: int) -> None:
        """Send ``sig`` to the role's running processes themselves (not their groups: a
        gunicorn master passes SIGTERM on to its workers as it does in production)."""
        for proc in self.running(role):
            proc.send_signal(sig)

    def wait_exit(self, role: str, timeout: float = 30) -> int:
        """Wait until every process of the role has exited; 0 if all exited 0, else the
        first other exit status (negative: killed by that signal)."""
        deadline = time.monotonic() + timeout
        codes = [proc.wait(max(0.0, deadline - time.monotonic())) for proc in self.procs.get(role, [])]
        return next((code for code in codes if code), 0)

    def stop_app(self) -> None:
        """Quick shutdowns (gunicorn and celery SIGQUIT, beat SIGTERM): whatever is still
        running is not needed any more, and gunicorn's workers may not exit while a request
        still waits for its job (up to SYNC_WAIT_SECONDS), so the web group is killed after
        3 s."""
        for role in ("web", "worker", "beat"):
            for proc in self.procs.pop(role, []):
                stop_process(proc, signals.SIGQUIT if role != "beat" else signals.SIGTERM, 3 if role == "web" else 10)

    def stop(self) -> None:
        try:
            self.stop_app()
        finally:
            if self._celery is not None:
                self._celery.close()
                self._celery = None
            self.redis.stop()  # ours: an EmbeddedRedis on a free port, never 6379

    # -- helpers -----------------------------------------------------------------------
    def http(self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
             timeout: float = 10) -> tuple[int, dict]:
        """One JSON request to the web process: (status, decoded body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - 127.0.0.1 only
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def celery(self):  # type: ignore[no-untyped-def]
        """A Celery app on this stack's broker, for control commands (ping, consumers)."""
        if self._celery is None:
            from celery import Celery

            # Not the current app: the caller's own app (the test suite's) must stay current.
            self._celery = Celery("stack-control", broker=self.redis.url, set_as_current=False)
        return self._celery

    def workers_answering(self, limit: int | None = None) -> int:
        return len(self.celery().control.ping(timeout=0.5, limit=limit) or [])
