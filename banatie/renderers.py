"""Renderers besides DRF's JSON one (the default for every view)."""
from __future__ import annotations

from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer


class EventStreamRenderer(BaseRenderer):
    """text/event-stream (server-sent events), one message at a time.

    Listed on a streaming view so that DRF's content negotiation accepts
    `Accept: text/event-stream` instead of answering 406. The view itself answers with a
    StreamingHttpResponse of messages rendered here (DRF passes such a response through
    untouched); its errors stay JSON (they are DRF Responses, see the view).

    ``render`` takes one message, ``{"event": name, "id": n, "data": value}`` (event and id
    optional), and writes ``data`` as compact JSON on one ``data:`` line, byte for byte what
    DRF's JSONRenderer answers for it elsewhere. JSON escapes every line break inside
    strings (and DRF's renderer U+2028/U+2029 too), so the message cannot be split."""

    media_type = "text/event-stream"
    format = "event-stream"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        head = "".join(f"{field}: {data[field]}\n" for field in ("event", "id") if data.get(field) is not None)
        return head.encode() + b"data: " + JSONRenderer().render(data["data"]) + b"\n\n"

    @staticmethod
    def comment(text: str) -> bytes:
        """A comment line (ignored by clients; keeps idle connections open)."""
        return f": {text}\n\n".encode()
