"""The Gemini emulator of the test suite (tests/gemini_emulator.py), wrapped for long runs.

    python -m bench.emulator --port 0 --latency 2.0
    # first stdout line: http://127.0.0.1:PORT ; then one command per stdin line:
    #   latency <seconds>   -> "ok latency <seconds>"
    #   count               -> "count <generateContent requests served so far>"
    # EOF on stdin, SIGTERM or SIGINT stops it.

What the wrapper changes, and why (nothing about the replies themselves):
- requests are counted, not recorded: the emulator keeps every request body in memory for
  test assertions, which would grow without bound under a benchmark;
- the listen backlog is 1024, not socketserver's 5: a real Gemini front end does not drop
  SYNs when 100+ worker threads open connections at once, and a dropped SYN costs the
  client a 1 s retransmit that would be charged to Banatie;
- the latency can be changed between scenarios without restarting (the worker keeps its
  GEMINI_BASE_URL and its pooled connections).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tests.gemini_emulator as emulator_module  # noqa: E402


class _BigBacklogServer(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


class CountingEmulator(emulator_module.GeminiEmulator):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.served = 0
        self._count_lock = threading.Lock()

    def _record(self, rec: dict) -> None:  # count, don't keep (bounded memory)
        with self._count_lock:
            self.served += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Gemini emulator for benchmarks")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    args = ap.parse_args(argv)

    emulator_module.ThreadingHTTPServer = _BigBacklogServer  # used by GeminiEmulator.start()
    emu = CountingEmulator(port=args.port, latency=args.latency)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    emu.start()
    print(emu.base_url, flush=True)

    def commands() -> None:
        for line in sys.stdin:
            words = line.split()
            if words[:1] == ["latency"] and len(words) == 2:
                emu.latency = max(0.0, float(words[1]))
                print(f"ok latency {emu.latency}", flush=True)
            elif words[:1] == ["count"]:
                print(f"count {emu.served}", flush=True)
            elif words:
                print(f"error unknown command {words[0]!r}", flush=True)
        done.set()  # stdin closed: our driver is gone

    threading.Thread(target=commands, daemon=True).start()
    try:
        while not done.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
