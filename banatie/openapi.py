"""OpenAPI (drf-spectacular): the security schemes, the common error body, and the
headers every response carries, added in one post-processing hook so no view repeats them."""
from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.keys.authentication.ApiKeyAuthentication"
    name = ["ApiKeyHeader", "BearerAuth"]

    def get_security_requirement(self, auto_schema):  # type: ignore[no-untyped-def]
        # Either header works (OR), not both (AND).
        return [{"ApiKeyHeader": []}, {"BearerAuth": []}]

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key",
             "description": "Your key: X-API-Key: bnt_... (documented form)."},
            {"type": "http", "scheme": "bearer", "description": "The same key as Authorization: Bearer bnt_..."},
        ]


class JsonObjectFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "banatie.serializers.JsonObjectField"

    def map_serializer_field(self, auto_schema, direction):  # type: ignore[no-untyped-def]
        return auto_schema.resolve_serializer(self.target.inner, direction).ref


class ChoiceListFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "banatie.serializers.ChoiceListField"

    def map_serializer_field(self, auto_schema, direction):  # type: ignore[no-untyped-def]
        return {"type": "array", "items": {"type": "string", "enum": list(self.target.choices)}, "minItems": 1}


class ErrorSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="Always false.")
    message = serializers.CharField(help_text="What was wrong, for humans.")
    error = serializers.CharField(help_text="The original API's error wording, e.g. 'Invalid API key'.")
    code = serializers.CharField(help_text="Stable machine-readable reason; see docs/errors.md.")
    requestId = serializers.CharField(help_text="Same as the X-Request-ID response header.")
    field = serializers.CharField(required=False, help_text="The first offending field, if any.")
    hint = serializers.CharField(required=False, help_text="How to fix it.")
    details = serializers.DictField(required=False, help_text="Per-field messages or extra facts.")
    originalPrompt = serializers.CharField(required=False, help_text="/api/enhance only: the prompt you sent.")
    jobId = serializers.UUIDField(required=False, help_text="When the error is a job's outcome: the job (GET /api/jobs/{jobId}).")


class OpenAIErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="What was wrong and how to fix it.")
    type = serializers.CharField(help_text="invalid_request_error, authentication_error, permission_error, "
                                           "rate_limit_error or server_error.")
    param = serializers.CharField(allow_null=True, help_text="The offending parameter, if any.")
    code = serializers.CharField(help_text="Our stable code (docs/errors.md), e.g. content_blocked.")


class OpenAIErrorSerializer(serializers.Serializer):
    error = OpenAIErrorDetailSerializer()


# The OpenAI-compatible routes answer errors in OpenAI's shape (apps/openai_compat/shapes.py).
OPENAI_PREFIX = "/v1/"


ERROR_DESCRIPTIONS = {
    400: "Invalid input: the body names each field that is wrong.",
    401: "Missing, malformed, unknown, expired or revoked API key.",
    403: "Forbidden (e.g. a project key on an admin route, a master key on /v1).",
    404: "Not found.",
    405: "Method not allowed here.",
    406: "The Accept header asks for a type this route cannot answer with.",
    409: "Conflicts with the current state (e.g. the job was canceled or passed its Cancel-After; canceling a "
         "finished job; revoking the last active master key).",
    411: "A chunked body without Content-Length.",
    413: "Body or file too large.",
    415: "Wrong Content-Type.",
    422: "The request was understood but cannot be done (content blocked, no image, idempotency key reused).",
    429: "Rate limit exceeded; see Retry-After.",
    500: "Server error; report the requestId.",
    502: "The upstream model returned something unusable.",
    503: "A dependency (queue, rate limiter, upstream) is unavailable; see Retry-After.",
    504: "The job ran past its time limit (on /v1 also: it did not finish within OPENAI_COMPAT_WAIT_SECONDS).",
}


def errors(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    # Errors are JSON whatever else the view renders (the event stream's are too).
    return {(status, "application/json"): OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status])
            for status in statuses}


def openai_errors(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """The same statuses in OpenAI's error shape (the /v1 routes)."""
    return {(status, "application/json"): OpenApiResponse(OpenAIErrorSerializer,
                                                          description=ERROR_DESCRIPTIONS[status])
            for status in statuses}


AUTH_ERRORS = (401, 404, 405, 500)
JOB_ENDPOINT_ERRORS = (400, 401, 405, 409, 413, 415, 422, 429, 500, 502, 503, 504)

PREFER = OpenApiParameter(
    "Prefer", str, OpenApiParameter.HEADER, required=False,
    description="`respond-async`: answer 202 at once with the job to poll instead of waiting. `wait=N`: wait at "
                "most N seconds (up to SYNC_WAIT_SECONDS, default 60) for the result before answering 202; the "
                "answer then carries `Preference-Applied: wait=N`. Both may be combined with commas.",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x21-\x7e]+$"},
    OpenApiParameter.HEADER, required=False,
    description="Retry-safe key (1-255 visible ASCII characters): the same key and body within 24 h "
                "returns the original job, without a second charge.",
)
CANCEL_AFTER = OpenApiParameter(
    # The pattern spells out "1 s to 24 h" (whole numbers; decimals such as 1.5m are accepted too).
    "Cancel-After", {"type": "string", "pattern": (
        r"^(?:(?:[1-9]\d{0,3}|[1-7]\d{4}|8[0-5]\d{3}|86[0-3]\d{2}|86400)s?"
        r"|(?:[1-9]\d{0,2}|1[0-3]\d{2}|14[0-3]\d|1440)m|(?:[1-9]|1\d|2[0-4])h)$")},
    OpenApiParameter.HEADER, required=False,
    description="A deadline for the job: `30s`, `2m`, `1h` or plain seconds, at most 24 h. If the job has not "
                "finished by then it ends `canceled` (`error.code: deadline_exceeded`, `cancelReason: deadline`), no "
                "upstream call starts after it, and a waiting synchronous request answers 409 `deadline_exceeded`.",
)

_HEADER = {"schema": {"type": "string"}}


def _error_response(status: int, path: str = "") -> dict[str, Any]:
    schema = "OpenAIError" if path.startswith(OPENAI_PREFIX) else "Error"
    return {"description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _header(description: str, *, required: bool) -> dict[str, Any]:
    return {**_HEADER, "description": description, "required": required}


# Statuses of a rate-limited operation answered before the budget is read (the body guard
# refuses 411/413 first; DRF negotiates the content type (406) and checks permissions (403)
# before it throttles; a 503 may be the counter store itself being down).
_BEFORE_BUDGET = {"403", "406", "411", "413", "503"}


def add_metrics_route(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """GET /metrics is a plain Django view (Prometheus' text format, no DRF): declared here
    so the schema lists every route the service answers (docs/operations.md)."""
    result.setdefault("paths", {})["/metrics"] = {"get": {
        "operationId": "metrics", "tags": ["service"], "summary": "Prometheus metrics",
        "description": "Every process's metrics in the Prometheus text format. Open to loopback callers; "
                       "any other caller needs `Authorization: Bearer $METRICS_TOKEN` and otherwise gets "
                       "the 404 of an unknown path.",
        "security": [],
        "responses": {
            "200": {"description": "The metrics (text/plain; version=0.0.4).",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            "404": _error_response(404),
        },
    }}
    return result


def add_common_headers(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """What every operation shares, added once: the errors any route can answer (406 from
    content negotiation; 411/413 from the body guard on operations with a body); X-Request-ID
    on every response; X-RateLimit-* on rate-limited operations; Retry-After on 429/503;
    Location on 202. ``required`` says whether the header is always sent with that status."""
    # A rate-limited operation is one whose view throttles (the views say so, not a list here).
    limited_ops = {(path, method.lower()) for path, _, method, view in generator.endpoints
                   if getattr(view.cls, "throttle_classes", None)}
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.setdefault("406", _error_response(406, path))
            if "requestBody" in operation or method in ("post", "put", "patch"):
                responses.setdefault("411", _error_response(411, path))
                responses.setdefault("413", _error_response(413, path))
            limited = (path, method) in limited_ops
            for status, response in responses.items():
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = _header("Request id (yours if sane, else generated).", required=True)
                if limited and status != "401":
                    always = status not in _BEFORE_BUDGET
                    headers["X-RateLimit-Limit"] = _header("Requests allowed per window.", required=always)
                    headers["X-RateLimit-Remaining"] = _header("Requests left (never negative).", required=always)
                    headers["X-RateLimit-Reset"] = _header("When the window resets (ISO 8601).", required=always)
                if status == "429" or (status == "503" and operation.get("operationId") != "health"):
                    headers["Retry-After"] = _header("Seconds to wait before retrying.", required=True)
                if status == "202":
                    headers["Location"] = _header("The job's status URL.", required=True)
    return result


# What DRF's CharField does to every request string: trims surrounding whitespace (then
# min_length applies to what is left) and refuses NUL and lone surrogates. The whitespace
# class is spelled out (what Python's str.strip() strips), since a schema's \s is ECMA's.
_WS = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_TEXT = rf"[^{_WS}\x00\ud800-\udfff]"
_ANY = r"[^\x00\ud800-\udfff]"
_SPACE = rf"[{_WS}]"


def _string_pattern(min_length: int) -> str:
    if min_length <= 1:
        return rf"^{_SPACE}*{_TEXT}(?:{_ANY}*{_TEXT})?{_SPACE}*$"
    return rf"^{_SPACE}*{_TEXT}{_ANY}{{{min_length - 2},}}{_TEXT}{_SPACE}*$"


def state_input_constraints(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Request schemas say what the server enforces, so a request the schema calls valid is
    accepted: no unknown fields (StrictSerializer refuses them), and strings as DRF checks them."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request") or schema.get("type") != "object":
            continue
        schema.setdefault("additionalProperties", False)
        for prop in schema.get("properties", {}).values():
            for target in [prop, prop.get("items") or {}]:
                if target.get("type") == "string" and not ({"format", "enum", "pattern"} & set(target)):
                    if target.get("minLength", 0) >= 1:
                        target["pattern"] = _string_pattern(target["minLength"])
                    else:
                        target["pattern"] = rf"^{_ANY}*$"
    return result


def comma_separated_query_lists(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """A list in a query parameter is one comma-separated value (ChoiceListField reads it so:
    status=queued,running), not OpenAPI's default of one parameter per item."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("in") == "query" and parameter.get("schema", {}).get("type") == "array":
                    parameter.setdefault("style", "form")
                    parameter.setdefault("explode", False)
    return result


def only_api_routes(endpoints: list[tuple]) -> list[tuple]:
    """Document the API, not the admin or the catch-all 404; show each route once, without
    the optional trailing slash the URL patterns accept."""
    cleaned = []
    for path, path_regex, method, callback in endpoints:
        if not (path.startswith("/api/") or path.startswith("/health") or path.startswith(OPENAI_PREFIX)):
            continue  # the admin, and the catch-all JSON 404
        cleaned.append((path.rstrip("?").rstrip("/") or path, path_regex, method, callback))
    return cleaned
