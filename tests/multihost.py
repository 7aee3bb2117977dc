"""Several hosts on one machine: Linux network namespaces on a private bridge, for the
scenarios of tests/test_multihost.py (issue 19) and `make bench-multihost`.

Topology (``10.213.N.0/24``, N from our pid; every name starts ``bm<pid>``)::

    root namespace: the bridge bm<pid>br (.1), the test process, the Gemini emulator
    data   .2   private PostgreSQL (port 15432) and Redis (port 16380), bound to .2 only
    web1   .11  the Procfile's web line (gunicorn, HOST=.11, PORT=8000)
    web2   .12  the same
    wk1    .21  the Procfile's worker line
    wk2    .22  the Procfile's worker line and the one beat

Every process of the app is the Procfile's line through `sh -c 'exec …'` (as `make run`
and tests/stack.py run it) under `ip netns exec`, with DATABASE_URL / REDIS_URL pointing
at the data host; nothing listens on 5432 or 6379 and nothing talks to the machine's own
services. All traffic is on the bridge and loopback: the namespaces have no route out.

Cleanup: ``stop()`` SIGKILLs every process in each namespace (``ip netns pids``, by id),
then deletes the namespaces and the bridge; it runs from the fixture's finalizer and from
atexit. A run that was itself SIGKILLed leaves ``bm<pid>-*`` namespaces: the next start
removes those whose pid is no longer alive.

``skip_reason()`` says why namespaces cannot be made here (not root, no `ip`, no
PostgreSQL binaries); the tests skip with it.
"""
from __future__ import annotations

import atexit
import json
import os
import pwd
import re
import secrets
import shutil
import signal as signals
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.load import MULTIHOST_NETWORK
from tests.gemini_emulator import GeminiEmulator
from tests.stack import BIN, ROOT, procfile, spawn, with_option

PG_PORT = 15432  # inside the data namespace; still never the machine's 5432
REDIS_PORT = 16380  # never 6379
WEB_PORT = 8000
PG_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")
HOSTS = {"data": 2, "web1": 11, "web2": 12, "wk1": 21, "wk2": 22}
_NAME = re.compile(r"^bm(\d+)-")


def _run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


def pg_bin() -> Path | None:
    for folder in PG_BIN_DIRS:
        if Path(folder, "postgres").exists():
            return Path(folder)
    found = shutil.which("postgres")
    return Path(found).resolve().parent if found else None


def skip_reason() -> str | None:
    """Why the multihost stack cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "no `ip` command (apt-get install iproute2)"
    if pg_bin() is None:
        return "no PostgreSQL server binaries (apt-get install postgresql)"
    if shutil.which("setpriv") is None:
        return "no setpriv (util-linux) to run PostgreSQL as a non-root user"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no 'postgres' system user to run the private PostgreSQL as"
    probe = f"bm{os.getpid()}-probe"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return None


def remove_stale() -> None:
    """Namespaces and bridges of earlier runs whose process is gone (a SIGKILLed pytest)."""
    listed = _run("ip", "netns", "list", check=False).stdout.split()
    for name in listed:
        match = _NAME.match(name)
        if not match or psutil.pid_exists(int(match.group(1))):
            continue
        for pid in _run("ip", "netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signals.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _run("ip", "netns", "del", name, check=False)
        _run("ip", "link", "del", f"bm{match.group(1)}br", check=False)


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    address: str
    veth: str  # the root-namespace end of its link to the bridge


class Network:
    """A bridge in the root namespace and one namespace per host, each on a veth pair."""

    def __init__(self) -> None:
        self.tag = f"bm{os.getpid()}"
        subnet = list(MULTIHOST_NETWORK.subnets(new_prefix=24))[os.getpid() % 250 + 1]
        self.prefix = str(subnet.network_address).rsplit(".", 1)[0]
        self.bridge = f"{self.tag}br"
        self.gateway = f"{self.prefix}.1"
        self.hosts: dict[str, Host] = {}

    def up(self, names: Iterable[str]) -> "Network":
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for name in names:
            self.add(name, HOSTS[name])
        return self

    def add(self, name: str, last_octet: int) -> Host:
        host = Host(name, f"{self.tag}-{name}", f"{self.prefix}.{last_octet}", f"{self.tag}{name}"[:15])
        self.hosts[name] = host
        _run("ip", "netns", "add", host.netns)
        _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        _run("ip", "link", "set", host.veth, "master", self.bridge, "up")
        _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
        _run("ip", "-n", host.netns, "link", "set", "lo", "up")
        return host

    def link(self, name: str, up: bool) -> None:
        """Cut (or restore) a host's only link: its packets are dropped, not refused."""
        _run("ip", "link", "set", self.hosts[name].veth, "up" if up else "down")

    def pids(self, name: str) -> list[int]:
        out = _run("ip", "netns", "pids", self.hosts[name].netns, check=False).stdout.split()
        return [int(pid) for pid in out if pid.isdigit()]

    def kill(self, name: str, sig: int = signals.SIGKILL) -> list[int]:
        """Signal every process in the host's namespace, by id; returns the ids."""
        pids = self.pids(name)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def down(self) -> None:
        for name in list(self.hosts):
            for _ in range(3):  # a process may fork while we kill
                if not self.kill(name):
                    break
                time.sleep(0.1)
        for host in self.hosts.values():
            _run("ip", "netns", "del", host.netns, check=False)
        _run("ip", "link", "del", self.bridge, check=False)
        self.hosts.clear()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class MultiHostStack:
    """The data host, two web hosts, two worker hosts (beat on wk2) and the emulator.

    ``env`` adds to what every app process gets (the scenarios' short leases and sweeps).
    """

    def __init__(self, *, env: Mapping[str, str] | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="banatie-multihost-"))
        self.workdir.chmod(0o755)  # the postgres user walks into pgdata/
        self.net = Network()
        self.commands = procfile()
        self.emulator: GeminiEmulator | None = None
        self.pg: subprocess.Popen | None = None
        self.redis: subprocess.Popen | None = None
        self.procs: dict[tuple[str, str], subprocess.Popen] = {}  # (host, role) -> its process
        self._started: dict[str, int] = {}
        self.stopped: set[tuple[str, str]] = set()  # processes a scenario ended on purpose
        self.extra_env = dict(env or {})
        self.secret_key = secrets.token_urlsafe(50)  # one for all web hosts: signed cursors
        self.master_key = self.project_key = ""
        self._celery = None
        self._stopped = False

    # -- addresses ---------------------------------------------------------------------
    @property
    def data(self) -> str:
        return self.net.hosts["data"].address

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.data}:{PG_PORT}/banatie"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.data}:{REDIS_PORT}/0"

    def url(self, host: str) -> str:
        return f"http://{self.net.hosts[host].address}:{WEB_PORT}"

    def host_of(self, address: str) -> str:
        return next((h.name for h in self.net.hosts.values() if h.address == address), address)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "MultiHostStack":
        atexit.register(self.stop)
        remove_stale()
        self.net.up(HOSTS)
        self.emulator = GeminiEmulator(host=self.net.gateway, cache_images=True, listen_backlog=1024,
                                       nodelay=True).start()
        self._start_data()
        subprocess.run([str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                       env=self.env_for("migrate"), check=True, timeout=180, capture_output=True)
        for host in ("web1", "web2"):
            self.start_role(host, "web")
        for host in ("wk1", "wk2"):
            self.start_role(host, "worker")
        self.start_role("wk2", "beat")
        self.wait_ready()
        self._create_keys()
        return self

    def _start_data(self) -> None:
        bindir = pg_bin()
        assert bindir is not None
        user = pwd.getpwnam("postgres")
        pgdata, sockets = self.workdir / "pgdata", self.workdir / "pgsock"
        for folder in (pgdata, sockets):
            folder.mkdir(mode=0o700)
            os.chown(folder, user.pw_uid, user.pw_gid)
        as_postgres = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
        subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "-A", "trust",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        with open(pgdata / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.net.prefix}.0/24 trust\n")
        ns = ["ip", "netns", "exec", self.net.hosts["data"].netns]
        # Durability is not under test (the data host is never killed): fsync off saves the disk.
        self.pg = spawn([*ns, *as_postgres, str(bindir / "postgres"), "-D", str(pgdata),
                         "-c", f"listen_addresses={self.data}", "-p", str(PG_PORT),
                         "-c", f"unix_socket_directories={sockets}", "-c", "fsync=off",
                         "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                         "-c", "max_connections=400", "-c", "shared_buffers=64MB"],
                        log=self.workdir / "postgres.log")
        self.redis = spawn([*ns, "redis-server", "--bind", self.data, "--port", str(REDIS_PORT), "--save", "",
                            "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no",
                            "--loglevel", "warning", "--maxclients", "4000"],
                           log=self.workdir / "redis.log")
        import psycopg

        def pg_up() -> bool:
            try:
                with psycopg.connect(host=self.data, port=PG_PORT, user="postgres", dbname="postgres",
                                     autocommit=True, connect_timeout=2) as conn:
                    conn.execute("CREATE DATABASE banatie")
                return True
            except psycopg.OperationalError:
                if self.pg is not None and self.pg.poll() is not None:
                    raise RuntimeError(f"postgres exited; see {self.workdir}/postgres.log") from None
                return False
        wait_for(pg_up, 60, "the data host's PostgreSQL")
        wait_for(lambda: self.redis_call("PING") is True, 20, "the data host's Redis")

    def env_for(self, host: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A host's environment: what docs/deployment.md lists, pointed at the data host."""
        address = self.net.hosts[host].address if host in self.net.hosts else "127.0.0.1"
        assert self.emulator is not None
        return {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "banatie.settings",
            "DEBUG": "0",
            "SECRET_KEY": self.secret_key,
            "ALLOWED_HOSTS": "*",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "HOST": address,
            "PORT": str(WEB_PORT),
            "WEB_CONCURRENCY": "1",  # two cores for five hosts: one gunicorn worker per web host
            "PROCESS_NAME": host,  # the Celery node name: the namespaces share one UTS hostname
            "GEMINI_API_KEY": "multihost-any-key",
            "GEMINI_BASE_URL": self.emulator.base_url,
            "MEDIA_ROOT": str(self.workdir / "media"),  # shared, as S3 or a shared volume would be
            "BANATIE_VAR_DIR": str(self.workdir / host),
            "BANATIE_ENV_FILE": str(self.workdir / "no.env"),
            "BANATIE_RATE_LIMIT": "1000000/h",
            "LOG_LEVEL": "INFO",
            **self.extra_env,
            **(extra or {}),
        }

    def start_role(self, host: str, role: str, extra: Mapping[str, str] | None = None) -> subprocess.Popen:
        """The Procfile's ``role`` line on ``host`` (replacing one that exited)."""
        command = self.commands[role]
        if role == "beat":
            command = with_option(command, "--schedule", str(self.workdir / host / "celerybeat-schedule"))
        (self.workdir / host).mkdir(exist_ok=True)
        index = self._started.get(f"{host}.{role}", 0)
        self._started[f"{host}.{role}"] = index + 1
        proc = spawn(["ip", "netns", "exec", self.net.hosts[host].netns, "sh", "-c", f"exec {command}"],
                     env=self.env_for(host, extra), log=self.workdir / f"{host}.{role}{index or ''}.log")
        self.procs[(host, role)] = proc
        self.stopped.discard((host, role))
        return proc

    def log(self, host: str, role: str) -> str:
        index = self._started.get(f"{host}.{role}", 1) - 1
        path = self.workdir / f"{host}.{role}{index or ''}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, host: str, role: str) -> bool:
        proc = self.procs.get((host, role))
        return proc is not None and proc.poll() is None

    def wait_ready(self, timeout: float = 90) -> None:
        """Both web hosts healthy and every running worker answering a ping."""
        def ready() -> bool:
            for (host, role), proc in self.procs.items():
                if proc.poll() is not None and (host, role) not in self.stopped:
                    raise RuntimeError(f"{host} {role} exited with {proc.returncode}; logs in {self.workdir}")
            for host in ("web1", "web2"):
                if self.alive(host, "web"):
                    status, body, _ = self.http(host, "GET", "/health", timeout=3)
                    if status != 200 or body.get("status") != "healthy":
                        return False
            workers = {host for (host, role) in self.procs if role == "worker" and self.alive(host, role)}
            return workers <= self.workers_answering()
        wait_for(ready, timeout, "the hosts to answer", interval=0.5)

    def stop_role(self, host: str, role: str, sig: int = signals.SIGTERM, timeout: float = 60) -> tuple[int, float]:
        """``sig`` to the host's ``role`` process; (exit status, seconds until it exited).
        SIGKILLed after ``timeout`` (then the status is -9)."""
        proc = self.procs[(host, role)]
        self.stopped.add((host, role))
        start = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
        return code, time.monotonic() - start

    def restore(self, extras: Iterable[tuple[str, str]] = ()) -> None:
        """Every link up and every process a scenario ended running again (but ``extras``,
        processes that are not part of the normal topology: they stay stopped)."""
        for name in self.net.hosts:
            self.net.link(name, True)
        for host, role in sorted(self.stopped - set(extras)):
            if not self.alive(host, role):
                self.start_role(host, role)
        self.stopped -= self.stopped - set(extras)
        self.wait_ready()

    def kill_host(self, host: str, sig: int = signals.SIGKILL) -> list[int]:
        """``sig`` to every process on the host (SIGKILL: waits until they are gone)."""
        pids = self.net.kill(host, sig)
        for (name, role), proc in self.procs.items():
            if name != host:
                continue
            self.stopped.add((name, role))
            if sig == signals.SIGKILL:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        return pids

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._celery is not None:
                self._celery.close()
        finally:
            try:
                self.net.down()  # SIGKILLs the app, PostgreSQL and Redis in their namespaces
            finally:
                for proc in [*self.procs.values(), self.pg, self.redis]:
                    if proc is not None and proc.poll() is None:
                        proc.kill()
                    if proc is not None:
                        try:
                            proc.wait(5)
                        except subprocess.TimeoutExpired:
                            pass
                if self.emulator is not None:
                    self.emulator.stop()
                if not os.environ.get("MULTIHOST_KEEP"):
                    shutil.rmtree(self.workdir, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------
    def http(self, host: str, method: str, path: str, body: dict | None = None, headers: dict | None = None,
             timeout: float = 10) -> tuple[int, dict, dict]:
        """One request to a web host: (status, decoded body, headers); status 0 with the
        error's name when no HTTP answer came; a non-JSON body is ``{"raw": bytes}``."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url(host) + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our bridge only
                return resp.status, _decoded(resp.read(), resp.headers.get("Content-Type", "")), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, _decoded(exc.read(), exc.headers.get("Content-Type", "")), dict(exc.headers)
        except (OSError, ValueError) as exc:
            return 0, {"error": type(exc).__name__}, {}

    def _create_keys(self) -> None:
        status, body, _ = self.http("web1", "POST", "/api/bootstrap/initial-key")
        if status != 201:
            raise RuntimeError(f"bootstrap failed: {status} {body}")
        self.master_key = body["apiKey"]
        status, body, _ = self.http("web1", "POST", "/api/admin/keys",
                                    {"type": "project", "projectId": "multihost", "name": "multihost"},
                                    {"X-API-Key": self.master_key})
        if status != 201:
            raise RuntimeError(f"project key creation failed: {status} {body}")
        self.project_key = body["apiKey"]

    def redis_call(self, *parts: str) -> object:
        """One command to the data host's Redis: its reply, or None when unreachable."""
        import redis

        try:
            client = redis.Redis(host=self.data, port=REDIS_PORT, socket_timeout=3, socket_connect_timeout=2,
                                 decode_responses=True)
            try:
                return client.execute_command(*parts)
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return None

    def sql(self, query: str, params: tuple | list = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(host=self.data, port=PG_PORT, user="postgres", dbname="banatie",
                             connect_timeout=5) as conn:
            return list(conn.execute(query, params).fetchall())

    def jobs(self, ids: Iterable[str]) -> dict[str, dict]:
        """The rows of these jobs: status, attempts, error_code."""
        rows = self.sql("SELECT id::text, status, attempts, error_code FROM generation_job WHERE id::text = ANY(%s)",
                        (list(ids),))
        return {row[0]: {"status": row[1], "attempts": row[2], "error_code": row[3]} for row in rows}

    def celery(self):  # type: ignore[no-untyped-def]
        if self._celery is None:
            from celery import Celery

            self._celery = Celery("multihost-control", broker=self.redis_url, set_as_current=False)
        return self._celery

    def workers_answering(self) -> set[str]:
        """Hosts whose worker answers a ping (node names are ``<host>@…``)."""
        try:
            replies = self.celery().control.ping(timeout=1.0) or []
        except Exception:  # noqa: BLE001 - the broker may be unreachable mid-scenario: nobody answers
            return set()
        return {name.split("@", 1)[0] for reply in replies for name in reply}

    def cpu_seconds(self, host: str) -> float:
        """CPU (user + system) used so far by every process in the host's namespace."""
        total = 0.0
        for pid in self.net.pids(host):
            try:
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                pass
        return total

    def calls_by_token(self, since: int = 0) -> dict[str, list[dict]]:
        """The emulator's generateContent calls after the first ``since``, by the job token
        in their prompt (``mh:<scenario>:<n>``): who called (host) and when."""
        assert self.emulator is not None
        out: dict[str, list[dict]] = {}
        for rec in self.emulator.requests[since:]:
            match = TOKEN.search(json.dumps(rec.get("json")))
            if match:
                out.setdefault(match.group(0), []).append({"host": self.host_of(rec["client"]), "time": rec["time"]})
        return out


def _decoded(raw: bytes, content_type: str) -> dict:
    """A JSON body as a dict; any other body (an image) as ``{"raw": bytes}``."""
    if content_type.startswith("application/json") or raw.startswith(b"{"):
        return json.loads(raw or b"{}")
    return {"raw": raw}


TOKEN = re.compile(r"mh:[a-z0-9-]+:\d+")


def job_body(token: str) -> dict:
    """A text-to-image request whose prompt carries ``token`` (to match upstream calls)."""
    return {"prompt": f"a lighthouse at dusk {token}", "filename": "multihost", "autoEnhance": False}


def run_threads(count: int, fn, timeout: float) -> list:  # type: ignore[no-untyped-def]
    """``fn(i)`` for i in range(count), each in its own thread, joined within ``timeout``;
    the results in order (None where a thread did not finish)."""
    results: list = [None] * count

    def target(i: int) -> None:
        results[i] = fn(i)
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return results
