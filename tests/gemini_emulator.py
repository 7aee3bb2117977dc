"""Local emulator of the Gemini Developer API ``generateContent`` endpoint.

Why: tests and benchmarks must exercise the *real* ``google-genai`` client
(request building, error mapping, timeouts) without internet access. The
emulator speaks just enough of the REST protocol for
``genai.Client(api_key=..., http_options=types.HttpOptions(base_url=emu.base_url))``
to work, and lets a test script faults (HTTP errors, delays, malformed bodies,
safety blocks, odd image answers) per request.

Only the standard library and Pillow are used.

In-process use::

    with GeminiEmulator() as emu:
        emu.enqueue(Reply.error(429, retry_after=2))
        client = genai.Client(api_key="k",
                              http_options=types.HttpOptions(base_url=emu.base_url))
        ...
        assert emu.requests[-1]["model"] == "gemini-2.5-flash-image"
        assert emu.requests[-1]["aspect_ratio"] == "16:9"   # also "image_size" ("2K"), None if unsent

As a process::

    python tests/gemini_emulator.py --port 0 --latency 2.0
    # first stdout line: http://127.0.0.1:PORT ; serves until SIGTERM/SIGINT

    python -m tests.gemini_emulator --bench-defaults --port 0   # what bench/ starts
    # the same, with BENCH_OPTIONS (below) and one command per stdin line:
    #   latency <seconds>   -> "ok latency <seconds>"
    #   count               -> "count <requests received so far>"
    # EOF on stdin (the driver is gone), SIGTERM or SIGINT stops it.

Options for long runs (benchmarks). The defaults suit tests; ``BENCH_OPTIONS`` (CLI
``--bench-defaults``) is what ``make bench`` uses, and every one can be set alone. None
changes a reply's shape (the same JSON with a real PNG of the requested size):

- ``record_requests=False``: requests are counted (``served``), not recorded. Tests
  assert on every recorded request body, which under a benchmark would grow memory
  without bound.
- ``listen_backlog=4096`` instead of socketserver's 5: a real Gemini front end does not
  drop SYNs when 100+ worker threads (or 2,000 greenlets) open connections at once, and a
  dropped SYN costs the client a 1 s retransmit that would be charged to Banatie. 4096 is
  Linux's default ``somaxconn`` cap; at 1024, a burst of 2,000 connections measured
  20.4-22.5 s for a 20 s latency instead of 20.3-21.1 s.
- ``nodelay=True`` (TCP_NODELAY on accepted sockets): the handler writes the headers and
  the body in two writes, and with Nagle's algorithm on, the body (under one loopback
  segment) waits for the client's delayed ACK of the headers: up to 40 ms added to some
  replies and not others, depending on the kernel's delayed-ACK heuristics. Google's
  front ends do not do that, and it made the reference (direct SDK call) and Banatie's
  own call differ by chance.
- ``cache_images=True``: images are rendered once and reused (``IMAGE_VARIANTS`` per
  size, picked by the prompt) instead of drawing a fresh PNG per request, ~13 ms of CPU
  for 1024x1024 that a real Gemini spends on Google's machines, not on the cores under
  test (it took 0.5-0.7 of 2 cores at 50-60 images/s). Banatie still receives, decodes,
  checks and stores a real PNG per request. Each image is drawn once even when a burst of
  first requests asks for it at the same moment (2,000 at once drew it 2,000 times). ``bench.run --render-every-image`` turns
  this off.
- ``latency`` is a plain attribute, so it can change between scenarios without a restart
  (the worker keeps its GEMINI_BASE_URL and its pooled connections); the stdin command
  ``latency <s>`` sets it in the process.

Reply resolution order for a generateContent request:
unknown path -> 404; missing API key -> 403; bad key (if ``valid_api_keys``
is set) -> 400; scripted queue (FIFO); sticky ``fail_all`` reply; default.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hashlib
import io
import itertools
import json
import re
import signal
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping, Optional, Union
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

__all__ = ["GeminiEmulator", "Reply", "DEFAULT_TEXT_REPLY", "BENCH_OPTIONS", "image_size_for"]

# GET /{api_version}/models/{model}: the model's metadata (models.get), e.g. a health check.
_MODEL_RE = re.compile(r"^/(?P<version>v1|v1beta|v1alpha)/models/(?P<model>[^/:]+)$")
# Path shape the SDK produces: /{api_version}/models/{model}:generateContent
# (google-genai 3.4.0 defaults to api_version "v1" for the Developer API).
_GENERATE_RE = re.compile(
    r"^/(?P<version>v1|v1beta|v1alpha)/models/(?P<model>[^/:]+):generateContent$"
)

# Google canonical status names for the codes tests care about.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "The service is currently unavailable.",
}

# Aspect ratios the Gemini image models accept; anything else is a 400 there,
# so it is one here too (catches typos in our own request building).
_ASPECT_RATIOS = {
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
}
_IMAGE_SIZES = {"1K": 1024, "2K": 2048, "4K": 4096}
IMAGE_OUTPUT_TOKENS = 1290  # what Gemini image models report per 1K image
REFERENCE_IMAGE_TOKENS = 258  # what Gemini counts per input image

DEFAULT_TEXT_REPLY: dict[str, Any] = {
    "enhancedPrompt": "{prompt} — enhanced by emulator",
    "detectedLanguage": "en",
    "appliedTemplate": "photorealistic",
    "enhancements": ["emulator_enhancement"],
}

JSON_CT = "application/json; charset=UTF-8"

PayloadFn = Callable[["GeminiEmulator", dict], Any]


def google_error(code: int, message: Optional[str] = None,
                 status: Optional[str] = None,
                 details: Optional[list] = None) -> dict[str, Any]:
    """Build a Google-style error body ``{"error": {code, message, status}}``."""
    err: dict[str, Any] = {
        "code": code,
        "message": message or _DEFAULT_MESSAGES.get(code, "Emulated error."),
        "status": status or _STATUS_NAMES.get(code, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return {"error": err}


def image_size_for(aspect_ratio: Optional[str], long_side: int = 1024) -> tuple[int, int]:
    """Pixel size for an aspect ratio such as ``"16:9"`` (long side = ``long_side``)."""
    w, h = (int(x) for x in (aspect_ratio or "1:1").split(":"))
    if w >= h:
        return long_side, round(long_side * h / w)
    return round(long_side * w / h), long_side


def render_png(prompt: str, size: tuple[int, int], *, seed_extra: str = "") -> bytes:
    """Deterministic PNG for ``prompt``: colours derived from a hash of it."""
    digest = hashlib.sha256((seed_extra + prompt).encode("utf-8")).digest()
    bg = tuple(digest[0:3])
    fg = tuple(digest[3:6])
    img = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(img)
    w, h = size
    # A few hash-positioned rectangles so different prompts differ visibly.
    for i in range(4):
        x0 = digest[6 + i] * w // 256
        y0 = digest[10 + i] * h // 256
        draw.rectangle([x0, y0, min(w - 1, x0 + w // 4), min(h - 1, y0 + h // 4)],
                       fill=tuple(digest[14 + i * 3: 17 + i * 3]) if i else fg)
    buf = io.BytesIO()
    # compress_level=1: large images stay cheap to produce under load.
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


IMAGE_VARIANTS = 16  # distinct cached images per size and seed (cache_images=True)


# Bounded by its keys: IMAGE_VARIANTS x the sizes the aspect ratios and image sizes allow.
_rendered: dict[tuple[int, tuple[int, int], str], bytes] = {}
# Held while drawing: functools.lru_cache does not lock, so a burst of first requests (all
# waking from the same latency) would each draw the same image, ~13 ms of CPU apiece.
_render_lock = threading.Lock()


def render_png_cached(prompt: str, size: tuple[int, int], *, seed_extra: str = "") -> bytes:
    """One of ``IMAGE_VARIANTS`` real PNGs per size, chosen by the prompt, each rendered once."""
    key = (zlib.crc32(prompt.encode("utf-8")) % IMAGE_VARIANTS, tuple(size), seed_extra)
    png = _rendered.get(key)
    if png is None:
        with _render_lock:
            png = _rendered.get(key)
            if png is None:
                png = _rendered[key] = render_png(f"bench image variant {key[0]}", key[1], seed_extra=seed_extra)
    return png


# The options `make bench` runs the emulator with (see the module docstring for why).
BENCH_OPTIONS: dict[str, Any] = {
    "record_requests": False, "listen_backlog": 4096, "nodelay": True, "cache_images": True,
}


@dataclass(frozen=True)
class Reply:
    """A scripted answer for one request.

    ``payload`` selects the body: ``None`` = default behaviour, ``bytes`` = sent
    raw, ``dict``/``list`` = JSON, callable ``(emulator, record) -> dict`` =
    JSON built per request. ``delay_seconds`` is slept first; if ``then`` is set it is
    handled after the delay instead of this reply's own payload.
    """

    status: int = 200
    payload: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    then: Optional["Reply"] = None
    disconnect: bool = False

    # ---- constructors -------------------------------------------------
    @classmethod
    def default(cls) -> "Reply":
        """Behave exactly like an unscripted request (latency included)."""
        return cls()

    @classmethod
    def error(cls, code: int, message: Optional[str] = None, status: Optional[str] = None,
              *, retry_after: Optional[float] = None, details: Optional[list] = None,
              headers: Optional[Mapping[str, str]] = None) -> "Reply":
        """HTTP error with Google error JSON; ``retry_after`` adds the header + RetryInfo."""
        hdrs = dict(headers or {})
        det = list(details or [])
        if retry_after is not None:
            hdrs["Retry-After"] = str(int(retry_after) if float(retry_after).is_integer()
                                      else retry_after)
            # Real 429s carry RetryInfo in details; keep it so callers can parse either.
            det.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{retry_after}s"})
        return cls(status=code, payload=google_error(code, message, status, det or None),
                   headers=hdrs)

    @classmethod
    def delay(cls, seconds: float, then: Optional["Reply"] = None) -> "Reply":
        """Sleep ``seconds`` then answer with ``then`` (default behaviour if None)."""
        return cls(delay_seconds=seconds, then=then)

    @classmethod
    def malformed(cls, body: bytes = b'{"candidates": [{"content": {"parts": [{"tex') -> "Reply":
        """HTTP 200 with a body that is not valid JSON."""
        return cls(status=200, payload=bytes(body))

    @classmethod
    def json(cls, obj: Any, status: int = 200,
             headers: Optional[Mapping[str, str]] = None) -> "Reply":
        """Arbitrary JSON body."""
        return cls(status=status, payload=copy.deepcopy(obj), headers=dict(headers or {}))

    @classmethod
    def custom(cls, fn: PayloadFn, status: int = 200) -> "Reply":
        """JSON built by ``fn(emulator, record)`` at request time."""
        return cls(status=status, payload=fn)

    @classmethod
    def blocked(cls, finish_reason: str = "IMAGE_SAFETY") -> "Reply":
        """Candidate stopped by a safety filter: finishReason set, no parts."""
        def build(emu: "GeminiEmulator", rec: dict) -> dict:
            return emu.envelope(rec, [{"finishReason": finish_reason, "index": 0,
                                       "finishMessage": f"Blocked: {finish_reason}"}])
        return cls.custom(build)

    @classmethod
    def prompt_blocked(cls, block_reason: str = "SAFETY") -> "Reply":
        """Prompt rejected: ``promptFeedback.blockReason``, no candidates at all."""
        def build(emu: "GeminiEmulator", rec: dict) -> dict:
            body = emu.envelope(rec, None)
            body["promptFeedback"] = {"blockReason": block_reason}
            return body
        return cls.custom(build)

    @classmethod
    def text_only(cls, text: str = "I can't draw that.", finish_reason: str = "STOP") -> "Reply":
        """A successful answer that contains text but no image."""
        def build(emu: "GeminiEmulator", rec: dict) -> dict:
            return emu.envelope(rec, [{"content": {"role": "model", "parts": [{"text": text}]},
                                       "finishReason": finish_reason, "index": 0}])
        return cls.custom(build)

    @classmethod
    def not_an_image(cls, data: bytes = b"definitely not a PNG",
                     mime_type: str = "image/png") -> "Reply":
        """An inlineData part claiming ``mime_type`` whose bytes are not an image."""
        def build(emu: "GeminiEmulator", rec: dict) -> dict:
            parts = [{"text": "Here is your image"},
                     {"inlineData": {"mimeType": mime_type,
                                     "data": base64.b64encode(data).decode("ascii")}}]
            return emu.envelope(rec, [{"content": {"role": "model", "parts": parts},
                                       "finishReason": "STOP", "index": 0}])
        return cls.custom(build)

    @classmethod
    def with_thought(cls) -> "Reply":
        """Default image answer preceded by a ``thought: true`` draft image part."""
        def build(emu: "GeminiEmulator", rec: dict) -> dict:
            body = emu.default_body(rec, force_image=True)
            parts = body["candidates"][0]["content"]["parts"]
            draft = emu.render(emu.prompt_of(rec), (256, 256), seed_extra="thought:")
            parts[:0] = [
                {"text": "Sketching a draft first...", "thought": True},
                {"inlineData": {"mimeType": "image/png",
                                "data": base64.b64encode(draft).decode("ascii")},
                 "thought": True},
            ]
            return body
        return cls.custom(build)

    @classmethod
    def drop_connection(cls) -> "Reply":
        """Close the socket without any HTTP response (connection reset)."""
        return cls(disconnect=True)


class GeminiEmulator:
    """Threaded HTTP server emulating ``POST /{ver}/models/{model}:generateContent``."""

    def __init__(self, *, port: int = 0, latency: float = 0.0,
                 valid_api_keys: Optional[Iterable[str]] = None,
                 record_requests: bool = True, listen_backlog: int = 5,
                 nodelay: bool = False, cache_images: bool = False, host: str = "127.0.0.1") -> None:
        """``record_requests=False`` keeps only the count ``served`` (bounded memory);
        ``listen_backlog``, ``nodelay`` and ``cache_images``: see the module docstring.
        ``host``: the address to bind; tests/multihost.py binds its bridge's address so
        worker hosts in other network namespaces reach it (each record's ``client`` says
        which host called)."""
        self._host = host
        self._port = port
        self.latency = latency
        self.record_requests = record_requests
        self.listen_backlog = listen_backlog
        self.nodelay = nodelay
        self.render: Callable[..., bytes] = render_png_cached if cache_images else render_png
        self.served = 0  # requests received since start or the last reset(), recorded or not
        # generateContent calls being answered now, and the most at once since the last reset().
        self.in_flight = 0
        self.max_in_flight = 0
        # None = any non-empty key is accepted.
        self.valid_api_keys: Optional[set[str]] = set(valid_api_keys) if valid_api_keys else None
        # Model names models.get answers 404 NOT_FOUND for (a misconfigured model name).
        self.unknown_models: set[str] = set()
        self.model_lookups = 0
        self.text_reply: Union[dict[str, Any], Callable[[str], Any]] = copy.deepcopy(DEFAULT_TEXT_REPLY)
        self.plain_text_reply: str = "Emulated answer to: {prompt}"
        self._lock = threading.Lock()
        self._requests: list[dict] = []
        self._queue: deque[Reply] = deque()
        self._sticky: Optional[Reply] = None
        self._stopping = threading.Event()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._ids = itertools.count(1)

    # ---- lifecycle -----------------------------------------------------
    def start(self) -> "GeminiEmulator":
        """Bind ``host`` (127.0.0.1 by default; free port if 0) and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        handler = _make_handler(self)
        server = ThreadingHTTPServer((self._host, self._port), handler, bind_and_activate=False)
        server.request_queue_size = self.listen_backlog  # read by server_activate(): listen(n)
        # Daemon handler threads: a request sleeping in a delay must not block stop().
        server.daemon_threads = True
        try:
            server.server_bind()
            server.server_activate()
        except BaseException:
            server.server_close()
            raise
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="gemini-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; pending delays are cut short."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "GeminiEmulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # ---- scripting & inspection -----------------------------------------
    @property
    def requests(self) -> list[dict]:
        """Snapshot (copy) of recorded requests, oldest first (none if not ``record_requests``)."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> Optional[dict]:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies consumed FIFO by the next generateContent requests."""
        with self._lock:
            self._queue.extend(replies)

    def fail_all(self, reply: Optional[Reply]) -> None:
        """Answer every request (after the queue) with ``reply``; ``None`` clears."""
        with self._lock:
            self._sticky = reply

    def clear_fail_all(self) -> None:
        self.fail_all(None)

    def reset(self) -> None:
        """Forget recorded requests (and the count), queued replies and the sticky fault."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()
            self._sticky = None
            self.served = 0
            self.model_lookups = 0
            self.max_in_flight = self.in_flight
            self.unknown_models = set()

    @property
    def pending_replies(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next_reply(self) -> Optional[Reply]:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            return self._sticky

    def _record(self, rec: dict) -> None:
        with self._lock:
            self.served += 1
            if self.record_requests:
                self._requests.append(rec)

    def sleep(self, seconds: float) -> None:
        """Interruptible sleep so stop() never waits for a long scripted delay."""
        if seconds > 0:
            self._stopping.wait(seconds)

    # ---- response builders (public so custom replies can reuse them) -----
    @staticmethod
    def prompt_of(rec: dict) -> str:
        """Last non-thought text part of the last user turn ('' if none)."""
        body = rec.get("json") or {}
        for content in reversed(body.get("contents") or []):
            if content.get("role", "user") != "user":
                continue
            for part in reversed(content.get("parts") or []):
                if isinstance(part.get("text"), str) and not part.get("thought"):
                    return part["text"]
        return ""

    @staticmethod
    def generation_config(rec: dict) -> dict:
        return (rec.get("json") or {}).get("generationConfig") or {}

    def wants_image(self, rec: dict) -> bool:
        mods = self.generation_config(rec).get("responseModalities") or []
        return any(str(m).upper() == "IMAGE" for m in mods)

    def envelope(self, rec: dict, candidates: Optional[list], *,
                 candidate_tokens: int = 0, image_tokens: int = 0) -> dict:
        """Common response fields around ``candidates`` (omitted if None), with
        ``usageMetadata`` as Gemini sends it: totals plus per-modality details (reference
        images count 258 input tokens each; ``image_tokens`` of the output are the image's)."""
        text_tokens = max(1, len(self.prompt_of(rec).split()))
        inline_images = len(decode_inline_parts(rec)) if isinstance(rec.get("json"), dict) else 0
        prompt_tokens = text_tokens + REFERENCE_IMAGE_TOKENS * inline_images
        body: dict[str, Any] = {}
        if candidates is not None:
            body["candidates"] = candidates
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidate_tokens,
            "totalTokenCount": prompt_tokens + candidate_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": text_tokens}]
            + ([{"modality": "IMAGE", "tokenCount": REFERENCE_IMAGE_TOKENS * inline_images}] if inline_images else []),
        }
        if candidate_tokens:
            usage["candidatesTokensDetails"] = (
                ([{"modality": "IMAGE", "tokenCount": image_tokens}] if image_tokens else [])
                + ([{"modality": "TEXT", "tokenCount": candidate_tokens - image_tokens}]
                   if candidate_tokens > image_tokens else []))
        body["usageMetadata"] = usage
        body["modelVersion"] = rec.get("model") or "unknown"
        body["responseId"] = f"emu-{next(self._ids)}"
        return body

    def default_body(self, rec: dict, *, force_image: bool = False) -> dict:
        """Default answer: PNG for IMAGE modality, else JSON/plain text."""
        prompt = self.prompt_of(rec)
        cfg = self.generation_config(rec)
        if force_image or self.wants_image(rec):
            img_cfg = cfg.get("imageConfig") or {}
            ratio = img_cfg.get("aspectRatio") or "1:1"
            long_side = _IMAGE_SIZES.get(str(img_cfg.get("imageSize") or "1K").upper(), 1024)
            png = self.render(prompt, image_size_for(ratio, long_side))
            caption = f"Here is your image: {prompt[:60]}"
            parts = [
                {"text": caption},
                {"inlineData": {"mimeType": "image/png",
                                "data": base64.b64encode(png).decode("ascii")}},
            ]
            image_tokens = IMAGE_OUTPUT_TOKENS
            tokens = image_tokens + len(caption.split())
        else:
            mime = str(cfg.get("responseMimeType") or "text/plain").lower()
            if mime == "application/json":
                reply = self.text_reply(prompt) if callable(self.text_reply) else self.text_reply
                text = json.dumps(_fill_prompt(reply, prompt), ensure_ascii=False)
            else:
                text = self.plain_text_reply.replace("{prompt}", prompt)
            parts = [{"text": text}]
            tokens = max(1, len(text.split()))
            image_tokens = 0
        cand = {"content": {"role": "model", "parts": parts},
                "finishReason": "STOP", "index": 0}
        return self.envelope(rec, [cand], candidate_tokens=tokens, image_tokens=image_tokens)


def _fill_prompt(value: Any, prompt: str) -> Any:
    """Replace ``{prompt}`` in every string of a JSON-like structure."""
    if isinstance(value, str):
        return value.replace("{prompt}", prompt)
    if isinstance(value, list):
        return [_fill_prompt(v, prompt) for v in value]
    if isinstance(value, dict):
        return {k: _fill_prompt(v, prompt) for k, v in value.items()}
    return value


def _validate_request(emu: GeminiEmulator, rec: dict) -> Optional[Reply]:
    """Server-side checks the real API does; returns an error reply or None."""
    body = rec.get("json")
    if not isinstance(body, dict):
        return Reply.error(400, "Invalid JSON payload received.")
    if not body.get("contents"):
        return Reply.error(400, "* GenerateContentRequest.contents: contents is not specified")
    cfg = emu.generation_config(rec)
    ratio = (cfg.get("imageConfig") or {}).get("aspectRatio")
    if ratio is not None and ratio not in _ASPECT_RATIOS:
        return Reply.error(400, f"Unsupported aspect ratio: {ratio}")
    size = (cfg.get("imageConfig") or {}).get("imageSize")
    if size is not None and size not in _IMAGE_SIZES:
        return Reply.error(400, f"Unsupported image size: {size}")
    if size is not None and str(rec.get("model") or "").startswith("gemini-2.5-flash-image"):
        return Reply.error(400, f"Image size is not supported for model {rec.get('model')}.")
    # Inline data must be valid base64 (SDK sends urlsafe base64; accept both).
    for content in body.get("contents") or []:
        for part in content.get("parts") or []:
            blob = part.get("inlineData") or part.get("inline_data")
            if blob is not None:
                try:
                    _b64decode(blob.get("data") or "")
                except (binascii.Error, ValueError):
                    return Reply.error(400, "Invalid value at 'contents.parts.inline_data.data'")
    return None


def _b64decode(data: str) -> bytes:
    """Decode standard or urlsafe base64 (the SDK uses urlsafe)."""
    return base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)


def decode_inline_parts(rec: dict) -> list[dict]:
    """Inline blobs of a recorded request as ``{"mime_type", "data"(bytes)}``."""
    out = []
    for content in (rec.get("json") or {}).get("contents") or []:
        for part in content.get("parts") or []:
            blob = part.get("inlineData") or part.get("inline_data")
            if blob is not None:
                out.append({"mime_type": blob.get("mimeType") or blob.get("mime_type"),
                            "data": _b64decode(blob.get("data") or "")})
    return out


def _make_handler(emu: GeminiEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real API (httpx pools)
        server_version = "GeminiEmulator/1.0"
        disable_nagle_algorithm = emu.nodelay  # TCP_NODELAY, set by StreamRequestHandler.setup()
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet: tests and benchmarks don't want per-request logs

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        # -- plumbing --
        def _handle(self) -> None:
            try:
                self._dispatch()
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                # Client gave up (e.g. its timeout fired during a delay).
                self.close_connection = True

        def _dispatch(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            m = _GENERATE_RE.match(split.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            rec = {
                "method": self.command,
                "path": split.path,
                "query": query,
                "model": m.group("model") if m else None,
                "api_version": m.group("version") if m else None,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "json": parsed,
                "raw_body": raw,
                "time": time.time(),
                "client": self.client_address[0],
            }
            # What the image call asked for, so tests assert on it without digging.
            image_config = ((parsed or {}).get("generationConfig") or {}).get("imageConfig") or {} \
                if isinstance(parsed, dict) else {}
            rec["aspect_ratio"] = image_config.get("aspectRatio")
            rec["image_size"] = image_config.get("imageSize")
            meta = _MODEL_RE.match(split.path) if self.command == "GET" else None
            if meta is None:
                emu._record(rec)
            else:  # metadata lookups are counted apart: `requests` stays the generation calls
                with emu._lock:
                    emu.model_lookups += 1
            if (m is None or self.command != "POST") and meta is None:
                self._send_reply(emu, rec, Reply.error(
                    404, f"Method or path not found: {self.command} {split.path}"))
                return
            # Google accepts the key as header or ?key=; the SDK sends the header.
            key = rec["headers"].get("x-goog-api-key") or query.get("key")
            if not key:
                self._send_reply(emu, rec, Reply.error(
                    403, "Method doesn't allow unregistered callers (callers without "
                    "established identity). Please use API Key or other form of API "
                    "consumer identity to call this API.", "PERMISSION_DENIED"))
                return
            if emu.valid_api_keys is not None and key not in emu.valid_api_keys:
                self._send_reply(emu, rec, Reply.error(
                    400, "API key not valid. Please pass a valid API key.",
                    "INVALID_ARGUMENT",
                    details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                              "reason": "API_KEY_INVALID",
                              "domain": "googleapis.com"}]))
                return
            if meta is not None:  # models.get: metadata of a known model, else 404 NOT_FOUND
                name = meta.group("model")
                if name in emu.unknown_models:
                    self._send_reply(emu, rec, Reply.error(404, f"models/{name} is not found for API version "
                                                                f"{meta.group('version')}.", "NOT_FOUND"))
                else:
                    self._send_reply(emu, rec, Reply.json({
                        "name": f"models/{name}", "displayName": name, "version": "001",
                        "supportedGenerationMethods": ["generateContent", "countTokens"]}))
                return
            with emu._lock:
                emu.in_flight += 1
                emu.max_in_flight = max(emu.max_in_flight, emu.in_flight)
                self._counted = True
            try:
                self._send_reply(emu, rec, emu._next_reply() or Reply())
            finally:
                with emu._lock:  # a reply already counted down as its answer started
                    if self._counted:
                        emu.in_flight -= 1
                        self._counted = False

        _counted = False  # this request is one of emu.in_flight

        def _send_reply(self, emu: GeminiEmulator, rec: dict, reply: Reply) -> None:
            # Follow delay -> then chains.
            while True:
                emu.sleep(reply.delay_seconds)
                if reply.then is None:
                    break
                reply = reply.then
            if reply.disconnect:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            status, headers, payload = reply.status, dict(reply.headers), reply.payload
            if payload is None:
                # Default behaviour: validation, then latency, then a model answer.
                err = _validate_request(emu, rec)
                if err is not None:
                    status, headers, payload = err.status, dict(err.headers), err.payload
                else:
                    emu.sleep(emu.latency)
                    payload = emu.default_body(rec)
            elif callable(payload):
                payload = payload(emu, rec)
            if isinstance(payload, (bytes, bytearray)):
                data = bytes(payload)
            else:
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            if self._counted:  # the answer goes out now: the call is no longer in flight
                with emu._lock:
                    emu.in_flight -= 1
                    self._counted = False
            self.send_response(status)
            if not any(h.lower() == "content-type" for h in headers):
                self.send_header("Content-Type", JSON_CT)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _serve_commands(emu: GeminiEmulator, done: threading.Event) -> None:
    """One command per stdin line (``latency <s>``, ``count``), one answer line each;
    EOF means the driver is gone, so the emulator stops."""
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["latency"] and len(words) == 2:
            try:
                emu.latency = max(0.0, float(words[1]))
            except ValueError:
                print(f"error bad latency {words[1]!r}", flush=True)
                continue
            print(f"ok latency {emu.latency}", flush=True)
        elif words == ["count"]:
            print(f"count {emu.served}", flush=True)
        elif words:
            print(f"error unknown command {words[0]!r}", flush=True)
    done.set()


def main(argv: Optional[list[str]] = None) -> int:
    """CLI: run the emulator until SIGTERM/SIGINT (or stdin EOF with --stdin-commands),
    printing the base URL first. Unset options take the constructor's defaults, or
    BENCH_OPTIONS (and --stdin-commands) with --bench-defaults."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--latency", type=float, default=0.0,
                    help="seconds added to every default reply")
    ap.add_argument("--api-key", action="append", dest="api_keys",
                    help="accept only these keys (repeatable); default: any key")
    ap.add_argument("--bench-defaults", action="store_true",
                    help="BENCH_OPTIONS and --stdin-commands, unless set otherwise below")
    flag = argparse.BooleanOptionalAction
    ap.add_argument("--record-requests", action=flag, default=None,
                    help="keep every request (tests) or only count them (bounded memory)")
    ap.add_argument("--listen-backlog", type=int, default=None, help="listen() backlog")
    ap.add_argument("--nodelay", action=flag, default=None, help="TCP_NODELAY on accepted sockets")
    ap.add_argument("--cache-images", action=flag, default=None,
                    help="render IMAGE_VARIANTS PNGs per size once and reuse them")
    ap.add_argument("--stdin-commands", action=flag, default=None,
                    help="answer 'latency <s>' and 'count' on stdin; EOF stops the emulator")
    args = ap.parse_args(argv)

    options = dict(BENCH_OPTIONS) if args.bench_defaults else {}
    for name in BENCH_OPTIONS:
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    commands = args.bench_defaults if args.stdin_commands is None else args.stdin_commands
    emu = GeminiEmulator(port=args.port, latency=args.latency, valid_api_keys=args.api_keys, **options)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    emu.start()
    print(emu.base_url, flush=True)  # first stdout line: drivers read it
    if commands:
        threading.Thread(target=_serve_commands, args=(emu, done), daemon=True).start()
    try:
        while not done.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
