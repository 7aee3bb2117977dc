"""OpenAI's error shape on /v1/* only (shapes.py says why it is a re-skin of our own body).
A middleware, not an exception handler: it also sees the errors DRF never raised (the body
guard's 411/413, the JSON 404 of an unknown /v1 path, Django's 500)."""
from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.openai_compat.shapes import PREFIX, openai_error


class OpenAIErrorShapeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (not request.path.startswith(PREFIX) or response.status_code < 400 or response.streaming
                or not response.get("Content-Type", "").startswith("application/json")):
            return response
        try:
            body = json.loads(response.content)
        except ValueError:
            return response
        if not (isinstance(body, dict) and body.get("success") is False and "code" in body):
            return response  # not one of our error bodies
        status, shaped = openai_error(body, response.status_code)
        response.status_code = status
        response.reason_phrase = HttpResponse(status=status).reason_phrase
        response.content = json.dumps(shaped).encode()
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response
