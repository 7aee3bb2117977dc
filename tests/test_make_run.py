"""`make run` as an operator sees it: the real runner (`python -m banatie.runner --serve`,
what the Makefile execs) with its own temporary directory, SQLite file, free port and
embedded Redis, all on 127.0.0.1. It keeps every Procfile process running, prefixes their
output, and gives in-flight requests SHUTDOWN_GRACE_SECONDS on SIGTERM."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from celery import Celery

from banatie.runner import free_port
from tests.conftest import GEMINI_TEST_KEY
from tests.test_reliability import _job_done, _post, _wait_for

ROOT = Path(__file__).resolve().parent.parent
MAKE_RUN = [sys.executable, "-m", "banatie.runner", "--serve"]
PREFIXED = re.compile(r"^(runner|migrate|web\.1|worker\.1|worker\.2|beat\.1) \| ")


class Service:
    """The runner as a child of this test, its output in a file; kill() leaves nothing behind."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log = workdir / "make-run.log"
        inherited = {k: v for k, v in os.environ.items()
                     if k not in ("REDIS_URL", "SECRET_KEY") and not k.startswith("GEMINI_")}
        self.env = {
            # No developer's .env: the runner reads BANATIE_ENV_FILE (absent here) instead.
            **inherited, "BANATIE_ENV_FILE": str(workdir / "no.env"), "BANATIE_VAR_DIR": str(workdir), "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "MEDIA_ROOT": str(workdir / "media"), "PORT": str(self.port), "WEB_CONCURRENCY": "1",
            "WORKER_CONCURRENCY": "4", "LOG_LEVEL": "info", **env,
        }
        self.proc: subprocess.Popen | None = None
        self.seen: set[psutil.Process] = set()  # every descendant ever looked at, for kill()
        self.key = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Service":
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(MAKE_RUN, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, process_group=0)
        _wait_for(self.healthy, 60, f"a healthy service (output in {self.log})")
        master = requests.post(f"{self.url}/api/bootstrap/initial-key", timeout=5).json()["apiKey"]
        self.key = requests.post(f"{self.url}/api/admin/keys", headers={"X-API-Key": master}, timeout=5, json={
            "type": "project", "projectId": "make-run", "name": "make run"}).json()["apiKey"]
        return self

    def healthy(self) -> bool:
        assert self.proc.poll() is None, f"the runner exited with {self.proc.returncode}: {self.output()[-2000:]}"
        try:
            return requests.get(f"{self.url}/health", timeout=2).json()["status"] == "healthy"
        except (requests.RequestException, ValueError):
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update(found)
        return found

    def workers(self) -> list[psutil.Process]:
        """The Celery worker processes (not beat), however deep below the runner."""
        found = []
        for p in self.descendants():
            try:
                argv = p.cmdline()
            except psutil.Error:
                continue
            if any(Path(a).name == "celery" for a in argv[:2]) and "worker" in argv:
                found.append(p)
        return found

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.descendants()
            self.proc.kill()
        for p in self.seen:
            try:
                p.kill()  # psutil checks it is still the process it saw, not a reused pid
            except psutil.NoSuchProcess:
                pass
        self.proc.wait(10)


def still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those not gone yet; a zombie (killed, waiting for init to reap it) counts as gone."""
    left = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


def started(workdir: Path, **env: str) -> Iterator[Service]:
    service = Service(workdir, **env)
    try:
        yield service.start()
    finally:
        service.kill()


@pytest.fixture(scope="module")
def offline_service(tmp_path_factory) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    yield from started(tmp_path_factory.mktemp("make-run"))


@pytest.fixture
def slow_gemini_service(tmp_path, emulator) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    """Jobs that take 8 s upstream: longer than the 5 s honcho gave before its SIGKILL."""
    emulator.reset()
    emulator.latency = 8.0
    try:
        yield from started(tmp_path, GEMINI_API_KEY=GEMINI_TEST_KEY, GEMINI_BASE_URL=emulator.base_url,
                           SHUTDOWN_GRACE_SECONDS="20")
    finally:
        emulator.reset()
        emulator.latency = 0.0


@pytest.mark.slow
def test_make_run_restarts_a_killed_worker_while_the_rest_keeps_serving(offline_service):
    service = offline_service
    before = service.workers()
    assert len(before) == 2
    victim = before[0]
    victim.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    replaced = False
    while time.monotonic() < deadline and not replaced:
        assert requests.get(f"{service.url}/health", timeout=2).status_code == 200
        now = service.workers()
        replaced = len(now) == 2 and victim.pid not in {p.pid for p in now}
        time.sleep(0.2)
    assert replaced, service.output()[-3000:]
    assert re.search(r"^runner \| worker\.[12] exited with -9; restarting in 1 s$", service.output(), re.M)

    accepted = _post(service, service.key, prefer_async=True)
    assert accepted.status_code == 202, accepted.text
    assert _job_done(service, service.key, accepted.json()["jobId"])["status"] == "succeeded"


@pytest.mark.slow
def test_make_run_prefixes_every_line_with_its_process_name(offline_service):
    service = offline_service
    wanted = ("web.1 | ", "worker.1 | ", "worker.2 | ", "beat.1 | ")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(f"\n{w}" in service.output() for w in wanted):
        time.sleep(0.2)
    lines = service.output().splitlines()
    assert [line for line in lines if not PREFIXED.match(line)][:5] == []
    assert [w for w in wanted if not any(line.startswith(w) for line in lines)] == []


@pytest.mark.slow
def test_make_run_gives_each_worker_its_own_celery_node_name(offline_service):
    service = offline_service
    assert requests.get(f"{service.url}/health", timeout=5).json()["environment"] == "development"
    broker = re.search(r"^runner \| embedded Redis at (redis://\S+)", service.output(), re.M).group(1)
    app = Celery(broker=broker)
    names: set[str] = set()

    def both_answer() -> bool:
        # Replies are keyed by node name: two workers sharing one would answer as one.
        names.update(name for reply in app.control.ping(timeout=1) for name in reply)
        return len(names) == 2

    try:
        _wait_for(both_answer, 20, "two workers answering a ping")
    finally:
        app.close()
    assert sorted(name.split("@")[0] for name in names) == ["worker.1", "worker.2"]


@pytest.mark.slow
def test_make_run_stops_loudly_when_migrate_fails(tmp_path):
    service = Service(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite3'}")
    done = subprocess.run(MAKE_RUN, cwd=ROOT, env=service.env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert re.search(r"^runner \| migrate exited with \d+; nothing started$", done.stdout, re.M), done.stdout
    assert "web.1" not in done.stdout


@pytest.mark.slow
def test_make_run_sigterm_lets_an_in_flight_sync_request_finish(slow_gemini_service, emulator):
    service = slow_gemini_service
    results: dict = {}

    def request() -> None:
        try:
            results["r"] = _post(service, service.key)
        except requests.ConnectionError as exc:
            results["error"] = exc

    client = threading.Thread(target=request)
    client.start()
    _wait_for(lambda: len(emulator.requests) == 1, 10, "the job's upstream call")
    children = service.descendants()
    service.proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    client.join(30)
    assert "r" in results, f"the in-flight request was dropped: {results.get('error')}"
    assert results["r"].status_code == 200, results["r"].text
    assert time.monotonic() - sent > 5  # it really outlived honcho's 5 s
    assert service.proc.wait(20) == 0
    assert still_running(children) == []
    assert "runner | stopped" in service.output()


@pytest.mark.slow
def test_make_run_second_sigterm_kills_at_once(slow_gemini_service, emulator):
    service = slow_gemini_service
    def doomed_request() -> None:
        try:
            _post(service, service.key)
        except requests.ConnectionError:
            pass  # killed at once: the connection goes, the job is redelivered later

    client = threading.Thread(target=doomed_request, daemon=True)
    client.start()
    _wait_for(lambda: len(emulator.requests) == 1, 10, "the job's upstream call")
    children = service.descendants()
    service.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    service.proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    service.proc.wait(5)
    assert time.monotonic() - sent < 3
    assert still_running(children) == []


def test_runner_exec_becomes_one_procfile_process(tmp_path):
    """What the systemd units start: the Procfile's line in the runner's own pid."""
    env = {**os.environ, "BANATIE_VAR_DIR": str(tmp_path), "SECRET_KEY": "exec-test",
           "REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens there: beat sends nothing anywhere
    proc = subprocess.Popen([sys.executable, "-m", "banatie.runner", "--exec", "beat"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def argv() -> list[str]:
        try:
            return psutil.Process(proc.pid).cmdline()
        except psutil.Error:
            return []

    try:
        _wait_for(lambda: any(Path(a).name == "celery" for a in argv()[:2]), 10, "the runner to become celery beat")
        assert "beat" in argv() and str(tmp_path / "celerybeat-schedule") in argv()
    finally:
        proc.kill()
        proc.wait(5)


def test_runner_exec_of_an_unknown_process_names_the_procfiles():
    done = subprocess.run([sys.executable, "-m", "banatie.runner", "--exec", "nosuch"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "the Procfile has no 'nosuch' (it has web, worker, beat)" in done.stderr


def test_the_runner_raises_the_open_file_limit_for_its_processes():
    # Thousands of waiting clients are thousands of sockets; a shell's 1,024 would cap them.
    code = ("import resource, sys; from banatie.runner import raise_open_file_limit; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
            "raise_open_file_limit(4096); soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
            "print(soft, hard)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    soft, hard = int(out[0]), int(out[1])
    assert soft == (4096 if hard == -1 else min(4096, hard)) and soft > 256
