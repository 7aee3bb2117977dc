"""gunicorn's gevent worker, answering what never reaches Django (a malformed request
line, a duplicate Content-Type, an oversized header) with our JSON error body and a
request id instead of gunicorn's HTML page. gunicorn writes every such answer through one
function, ``gunicorn.util.write_error``; this worker replaces it in its own process."""
from __future__ import annotations

import json
import socket
import uuid

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error's signature, our body (banatie.errors)."""
    from banatie.errors import InternalError, MalformedRequest
    from banatie.request_context import reset_request_id, set_request_id

    request_id = uuid.uuid4().hex
    token = set_request_id(request_id)
    try:
        error = InternalError() if status_int >= 500 and status_int != 501 else MalformedRequest(
            f"The HTTP request could not be parsed ({reason}{': ' + mesg if mesg else ''}).")
        body = json.dumps(error.body()).encode()
    finally:
        reset_request_id(token)
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class GeventWorker(_GeventWorker):
    def init_process(self) -> None:
        util.write_error = write_json_error
        super().init_process()
