"""The whole service as separate processes, the way `make run` starts it: its own
embedded Redis, gunicorn (web), a Celery worker and Celery beat, sharing the test
database. For fault tests that kill or restart pieces."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.db import connection

from banatie.runner import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Stack:
    def __init__(self, *, env: dict[str, str], workdir: Path) -> None:
        self.redis = EmbeddedRedis(workdir=workdir)
        self.port = free_port()
        self.workdir = workdir
        self.env = {
            **os.environ, "DATABASE_URL": database_url(), "REDIS_URL": self.redis.url, "PORT": str(self.port),
            "SECRET_KEY": "stack-test", "WEB_CONCURRENCY": "1", "WEB_THREADS": "20", "LOG_LEVEL": "warning",
            "MEDIA_ROOT": str(workdir / "media"), "BANATIE_VAR_DIR": str(workdir), **env,
        }
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Stack":
        self.redis.start()
        self.start_worker()
        self.start_process("beat", [str(BIN / "celery"), "-A", "banatie", "beat", "--loglevel", "WARNING",
                                    "--schedule", str(self.workdir / "beat-schedule")])
        self.start_process("web", [str(BIN / "gunicorn"), "banatie.wsgi:application",
                                   "--config", "python:banatie.gunicorn_conf"])
        self.wait_healthy()
        return self

    def start_process(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def start_worker(self) -> subprocess.Popen:
        return self.start_process("worker", [
            str(BIN / "celery"), "-A", "banatie", "worker", "--pool", "threads",
            "--concurrency", self.env.get("WORKER_CONCURRENCY", "4"),
            "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
        ])

    def wait_healthy(self, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                body = requests.get(f"{self.url}/health", timeout=2).json()
                if body["status"] == "healthy":
                    return body
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"stack not healthy in {timeout}s; logs in {self.workdir}")

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)

    def wait_exit(self, name: str, timeout: float = 30) -> int:
        return self.procs[name].wait(timeout)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.redis.stop()
