"""The Gemini emulator of the test suite (tests/gemini_emulator.py), wrapped for long runs.

    python -m bench.emulator --port 0 --latency 2.0
    # first stdout line: http://127.0.0.1:PORT ; then one command per stdin line:
    #   latency <seconds>   -> "ok latency <seconds>"
    #   count               -> "count <generateContent requests served so far>"
    # EOF on stdin, SIGTERM or SIGINT stops it.

What the wrapper changes, and why (replies keep their shape: the same JSON with a real PNG
of the requested size):
- requests are counted, not recorded: the emulator keeps every request body in memory for
  test assertions, which would grow without bound under a benchmark;
- the listen backlog is 1024, not socketserver's 5: a real Gemini front end does not drop
  SYNs when 100+ worker threads open connections at once, and a dropped SYN costs the
  client a 1 s retransmit that would be charged to Banatie;
- TCP_NODELAY on its sockets: the handler writes the headers and the body in two
  writes, and with Nagle's algorithm on, the body (under one loopback segment) waits for
  the client's delayed ACK of the headers: up to 40 ms added to some replies and not
  others, depending on the kernel's delayed-ACK heuristics. Google's front ends do not
  do that, and it made the reference (direct SDK call) and Banatie's own call differ by
  chance;
- images are rendered once and reused (16 variants per size, picked by the prompt): the
  test emulator draws a fresh 1024x1024 PNG per request, ~13 ms of CPU that a real Gemini
  spends on Google's machines, not on the 2 cores under test (it took 0.5-0.7 of them at
  50-60 images/s). Banatie still receives, decodes, checks and stores a real 1024x1024
  PNG per request. --render-every-image restores the per-request rendering;
- the latency can be changed between scenarios without restarting (the worker keeps its
  GEMINI_BASE_URL and its pooled connections).
"""
from __future__ import annotations

import argparse
import functools
import signal
import sys
import threading
import zlib
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tests.gemini_emulator as emulator_module  # noqa: E402


class _BigBacklogServer(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


def _make_handler_without_nagle(emu):  # type: ignore[no-untyped-def]
    handler = _original_make_handler(emu)
    handler.disable_nagle_algorithm = True  # TCP_NODELAY, set by StreamRequestHandler.setup()
    return handler


_original_make_handler = emulator_module._make_handler
_original_render_png = emulator_module.render_png
IMAGE_VARIANTS = 16


@functools.lru_cache(maxsize=256)
def _rendered(variant: int, size: tuple[int, int], seed_extra: str) -> bytes:
    return _original_render_png(f"bench image variant {variant}", size, seed_extra=seed_extra)


def render_png_cached(prompt: str, size: tuple[int, int], *, seed_extra: str = "") -> bytes:
    """One of IMAGE_VARIANTS real PNGs per size, chosen by the prompt, each rendered once."""
    return _rendered(zlib.crc32(prompt.encode("utf-8")) % IMAGE_VARIANTS, tuple(size), seed_extra)


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
    ap.add_argument("--render-every-image", action="store_true",
                    help="render a fresh PNG per request, as the test emulator does (~13 ms of CPU each)")
    args = ap.parse_args(argv)

    # Both are looked up in the module's globals by GeminiEmulator.start().
    emulator_module.ThreadingHTTPServer = _BigBacklogServer
    emulator_module._make_handler = _make_handler_without_nagle
    if not args.render_every_image:
        emulator_module.render_png = render_png_cached
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
