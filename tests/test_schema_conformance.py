"""The OpenAPI schema is exactly what is sent: every operation in /api/schema/ is called
for real (real worker, real Redis, the Gemini emulator through the real SDK) and each live
answer is checked against what the schema declares for that exact status code.

Per response:
- the status code is one the operation declares;
- every header the schema declares ``required: true`` for that status is sent;
- the Content-Type is one the schema lists for that status (none for a 304);
- a JSON body validates against the declared schema with OpenAPI 3.0.3 semantics
  (openapi-schema-validator's OAS30Validator, built on jsonschema: ``nullable``, formats
  such as date-time and uuid checked), made STRICT about shape: every object schema that
  does not say ``additionalProperties`` itself is treated as ``additionalProperties: false``,
  so an undocumented field fails, and ``required`` is enforced;
- an image body starts with the magic bytes of its Content-Type;
- a text/event-stream body is well-formed server-sent events (each event one `event`, `id`
  and `data` line, ids whole numbers that only grow, comments allowed), and each event's
  `data` validates as the JSON body it is documented to be (EVENT_DATA).

schemathesis (tests/test_openapi.py) fuzzes the schema with generated input; this file
makes one realistic, documented request per operation and status instead, so a body that
only real input reaches (a finished job, a failed job, a blocked prompt) is checked too.

Known mismatches between today's app and its schema are xfail(strict=True) with the
exact mismatch as the reason; a test whose mismatches change (new ones or other ones)
fails instead of hiding behind its xfail, and one that starts passing fails as XPASS.
"""
from __future__ import annotations

import copy
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from rest_framework.test import APIClient

from tests.conftest import auth
from tests.gemini_emulator import Reply

# --- the checker ---------------------------------------------------------------------------


class SchemaMismatch(AssertionError):
    """A live response differs from the schema exactly as a known-mismatch mark says."""


NOTE = " -- "


def mismatch(*lines: str, why: str = "") -> pytest.MarkDecorator:
    """A known mismatch of today's app: the test must fail with exactly these lines (the
    reason is the lines, then optionally why)."""
    reason = "; ".join(sorted(lines)) + (NOTE + why if why else "")
    return pytest.mark.xfail(strict=True, raises=SchemaMismatch, reason=reason)


def _absolute_uri(value: object) -> bool:
    # jsonschema checks "uri" only when rfc3987 is installed; it is not, so check the
    # part that matters here (an absolute URL) with the standard library.
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and not any(c.isspace() for c in value)


FORMATS = FormatChecker()
FORMATS.checkers.update(oas30_format_checker.checkers)
FORMATS.checks("uri")(_absolute_uri)

_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number",
               list: "array", dict: "object", type(None): "null"}

_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "image/webp": (b"RIFF",)}

EVENT_STREAM = "text/event-stream"
# An event stream's `data` is the 200 JSON body of this operation (the schema's description says so).
EVENT_DATA = {"job_events": "job_retrieve"}


def _server_sent_events(body: bytes) -> tuple[list[Any], list[str]]:
    """(each event's data, parsed as JSON; the ways the stream is not well-formed)."""
    problems: list[str] = []
    text = body.decode()
    if text and not text.endswith("\n\n"):
        problems.append("stream: does not end with a blank line (a cut event)")
    datas: list[Any] = []
    last_id = None
    for block in filter(None, text.split("\n\n")):
        fields: dict[str, list[str]] = defaultdict(list)
        for line in block.split("\n"):
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            name, colon, value = line.partition(": ")
            if not colon or name not in ("event", "id", "data"):
                problems.append("stream: a line that is neither a comment nor an event, id or data field")
                continue
            fields[name].append(value)
        if not fields:
            continue  # comments only
        if sorted(fields) != ["data", "event", "id"] or any(len(v) != 1 for v in fields.values()):
            problems.append("stream: an event without exactly one event, id and data line")
            continue
        event_id = fields["id"][0]
        if not event_id.isdigit() or (last_id is not None and int(event_id) <= last_id):
            problems.append("stream: an event id that is not a whole number greater than the last one")
        last_id = int(event_id) if event_id.isdigit() else last_id
        try:
            datas.append(json.loads(fields["data"][0]))
        except ValueError:
            problems.append("stream: an event whose data is not JSON")
    return datas, problems


def _strict(schema: Any, seen: set[int]) -> None:
    """additionalProperties: false on every object schema that does not set it."""
    if not isinstance(schema, dict) or id(schema) in seen:
        return
    seen.add(id(schema))
    if len(schema.get("allOf", [])) > 1:
        # Closing each member would reject the other members' properties.
        raise NotImplementedError("allOf with several members: teach _strict to merge them first")
    if ("properties" in schema or schema.get("type") == "object") and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for sub in (schema.get("properties") or {}).values():
        _strict(sub, seen)
    for key in ("items", "additionalProperties", "not"):
        _strict(schema.get(key), seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            _strict(sub, seen)


def _describe(error: ValidationError, prefix: str = "$") -> list[tuple[str, Any]]:
    """(line, what was sent) per problem; the line holds no live values (ids, timestamps),
    so a known mismatch can be matched exactly."""
    where, keyword, instance = prefix + error.json_path[1:], error.validator, error.instance
    if keyword == "additionalProperties":
        declared = set(error.schema.get("properties", {}))
        return [(f"{where}.{name}: sent, not in the schema", instance[name]) for name in instance
                if name not in declared]
    if keyword == "required":
        return [(f"{where}.{name}: required by the schema, not sent", None) for name in error.validator_value
                if name not in instance]
    if keyword == "type":
        if instance is None:  # OAS30Validator says it twice: "not nullable" and "not of type"
            return [(f"{where}: schema does not allow null, sent null", None)]
        sent = _JSON_TYPES.get(type(instance), type(instance).__name__)
        return [(f"{where}: schema says type {error.validator_value}, sent {sent}", instance)]
    if keyword == "format":
        return [(f"{where}: schema says format {error.validator_value}, sent a string not in that format", instance)]
    if keyword == "enum":
        return [(f"{where}: schema says one of {error.validator_value}, sent another value", instance)]
    return [(f"{where}: fails {keyword}={error.validator_value!r}", instance)]


class Conformance:
    def __init__(self, spec: dict[str, Any]) -> None:
        assert spec["openapi"].startswith("3.0."), spec["openapi"]
        self.components = copy.deepcopy(spec.get("components", {}))
        seen: set[int] = set()
        for schema in self.components.get("schemas", {}).values():
            _strict(schema, seen)
        self.operations: dict[str, dict[str, Any]] = {
            operation["operationId"]: operation
            for item in spec["paths"].values() for operation in item.values()
            if isinstance(operation, dict) and "responses" in operation
        }

    def problems(self, operation_id: str, response: Any) -> tuple[list[str], list[str]]:
        """(deterministic mismatch lines, the same with the live values, for humans)."""
        status = str(response.status_code)
        responses = self.operations[operation_id]["responses"]
        if status not in responses:
            line = f"status {status}: not declared by {operation_id} (declares {', '.join(sorted(responses))})"
            return [line], [line]
        declared = responses[status]
        lines: list[str] = []
        for name, header in declared.get("headers", {}).items():
            if header.get("required") and name not in response.headers:
                lines.append(f"header {name}: declared required for {status}, not sent")
        content = declared.get("content", {})
        media = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        body = b"".join(response.streaming_content) if response.streaming else response.content
        if not content:
            if body:
                lines.append(f"body: {status} declares no content, sent {len(body)} bytes of {media or '?'}")
            return sorted(set(lines)), sorted(set(lines))
        if media not in content:
            lines.append(f"Content-Type {media or '(none)'}: not declared for {status} "
                         f"(declares {', '.join(content)})")
            return sorted(set(lines)), sorted(set(lines))
        if media == EVENT_STREAM:
            datas, malformed = _server_sent_events(body)
            lines += malformed
            data_of = EVENT_DATA[operation_id]
            schema = self.operations[data_of]["responses"]["200"]["content"]["application/json"]["schema"]
            checks = [check for data in datas for check in self.body_checks(data_of, "event.data", schema, data)]
        elif media != "application/json":
            if not body or not body.startswith(_MAGIC.get(media, (b"",))):
                lines.append(f"body: not a {media} image ({len(body)} bytes)")
            return sorted(set(lines)), sorted(set(lines))
        else:
            checks = self.body_checks(operation_id, "$", content[media]["schema"], json.loads(body))
        detailed: list[str] = list(lines)
        for prefix, schema, instance in checks:
            for error in self.validator(schema).iter_errors(instance):
                for line, sent in _describe(error, prefix):
                    lines.append(line)
                    detailed.append(f"{line}  [sent: {json.dumps(sent)[:120]}]")
        return sorted(set(lines)), sorted(set(detailed))

    def body_checks(self, operation_id: str, prefix: str, schema: dict[str, Any],
                    document: Any) -> list[tuple[str, dict[str, Any], Any]]:
        """(where, schema, instance) to validate for one JSON body of ``operation_id``."""
        checks = [(prefix, schema, document)]
        if operation_id == "job_retrieve" and isinstance(document, dict) and "data" in document:
            # JobDetailOutput.data is a free-form object whose description promises "the `data`
            # of /api/text-to-image and /api/generate, or the /api/enhance result": hold it to that.
            checks.append((f"{prefix}.data", self.job_result_schema(document.get("kind")), document["data"]))
        return checks

    def validator(self, schema: dict[str, Any]) -> Any:
        schema = {**copy.deepcopy(schema), "components": self.components}
        _strict(schema, set())
        return OAS30Validator(schema, format_checker=FORMATS)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def job_result_schema(self, kind: str | None) -> dict[str, Any]:
        """What a succeeded job's `data` is documented to be, taken from the schema itself."""
        def ok_body(operation_id: str) -> dict[str, Any]:
            media = self.operations[operation_id]["responses"]["200"]["content"]["application/json"]
            return self.resolve(media["schema"])

        if kind == "generation":
            return ok_body("text_to_image_create")["properties"]["data"]
        # The /api/enhance body is the result plus the envelope's success and jobId.
        result = copy.deepcopy(ok_body("enhance_create"))
        for name in ("success", "jobId"):
            result["properties"].pop(name)
            result["required"].remove(name)
        return result

    def check(self, request: pytest.FixtureRequest, operation_id: str, response: Any, status: int) -> None:
        body = response.content if not response.streaming else b"<stream>"
        assert response.status_code == status, (
            f"the scenario meant to reach {status}, got {response.status_code}: {body[:500]!r}"
        )
        lines, detailed = self.problems(operation_id, response)
        marker = request.node.get_closest_marker("xfail")
        known = marker and marker.kwargs.get("raises") is SchemaMismatch
        expected = marker.kwargs["reason"].split(NOTE, 1)[0] if known else None
        if not lines:
            return  # conforms (a known-mismatch mark then makes this an XPASS(strict) failure)
        actual = "; ".join(lines)
        report = "\n  ".join(detailed)
        if expected is None:
            raise AssertionError(f"{operation_id} {status} does not match the schema:\n  {report}")
        if actual != expected:
            raise AssertionError(
                f"{operation_id} {status}: the known mismatch changed.\n"
                f"expected: {expected}\nactual:   {actual}\ndetails:\n  {report}"
            )
        raise SchemaMismatch(f"{operation_id} {status}:\n  {report}")


@pytest.fixture(scope="session")
def openapi(django_db_setup, django_db_blocker) -> Conformance:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    return Conformance(json.loads(response.content))


# --- the scenarios -------------------------------------------------------------------------

@dataclass
class Live:
    """What a scenario may use; tenants and the Gemini emulator only when it asks."""

    request: pytest.FixtureRequest
    api: APIClient
    settings: Any
    monkeypatch: pytest.MonkeyPatch

    @cached_property
    def tenants(self) -> Any:
        return self.request.getfixturevalue("tenants")

    @cached_property
    def gemini(self) -> Any:
        return self.request.getfixturevalue("gemini")

    # requests

    def t2i(self, key: str | None = None, headers: dict[str, str] | None = None, **body: Any) -> Any:
        payload = {"prompt": "A lighthouse on a cliff at dusk", "filename": "lighthouse", **body}
        return self.api.post("/api/text-to-image", payload, format="json",
                             **auth(key or self.tenants.a), **(headers or {}))

    def generate(self, key: str | None = None, headers: dict[str, str] | None = None, files: tuple = (),
                 **fields: Any) -> Any:
        data: dict[str, Any] = {"prompt": "A red bicycle leaning on a brick wall", "filename": "bicycle", **fields}
        if files:
            data["files"] = list(files)
        return self.api.post("/api/generate", data, format="multipart",
                             **auth(key or self.tenants.a), **(headers or {}))

    def enhance(self, key: str | None = None, headers: dict[str, str] | None = None,
                body: dict[str, Any] | None = None) -> Any:
        payload = body if body is not None else {
            "prompt": "A mountain landscape",
            "options": {"imageStyle": "photorealistic", "aspectRatio": "landscape", "mood": "serene",
                        "lighting": "golden hour", "cameraAngle": "wide shot", "outputFormat": "detailed",
                        "negativePrompts": ["blurry"]},
        }
        return self.api.post("/api/enhance", payload, format="json",
                             **auth(key or self.tenants.a), **(headers or {}))

    def job(self, job_id: str, key: str | None = None) -> Any:
        return self.api.get(f"/api/jobs/{job_id}", **auth(key or self.tenants.a))

    def cancel(self, job_id: str, key: str | None = None) -> Any:
        return self.api.post(f"/api/jobs/{job_id}/cancel", **auth(key or self.tenants.a))

    def finished_job(self, job_id: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.job(job_id)
            if response.json()["status"] in ("succeeded", "failed", "canceled"):
                return response
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s")

    # conditions

    def dead_counter_store(self) -> None:
        self.settings.CACHES = {"default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }}

    def dead_broker(self) -> None:
        from banatie.celery import app

        self.monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
        self.monkeypatch.setattr(app, "_pool", None)
        self.monkeypatch.setattr(app.amqp, "_producer_pool", None)

    def over_budget(self, call: Callable[[], Any]) -> Any:
        self.settings.BANATIE_RATE_LIMIT = "1/h"
        first = call()
        assert first.status_code in (200, 202), first.json()
        return call()

    def upstream_times_out(self) -> None:
        self.settings.JOB_SOFT_TIME_LIMIT = 1
        self.gemini.fail_all(Reply.delay(4))


Scenario = Callable[[Live], Any]
CASES: dict[str, list[Any]] = defaultdict(list)


def case(operation_id: str, status: int, name: str, *marks: pytest.MarkDecorator) -> Callable[[Scenario], Scenario]:
    def register(scenario: Scenario) -> Scenario:
        CASES[operation_id].append(pytest.param(scenario, status, id=f"{status}-{name}", marks=marks))
        return scenario
    return register


def png_bytes(size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buf, fmt)
    return buf.getvalue()


UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
TOO_LARGE = 1024  # MAX_REQUEST_BYTES for the whole-body 413 cases
PASSING_OUTAGE = Reply.error(503)
ASYNC = {"HTTP_PREFER": "respond-async"}

# --- today's known mismatches (each is one xfail; fix the app, then drop the mark) ---------

# /health ---------------------------------------------------------------------------------

@case("health", 200, "healthy")
def _(live: Live) -> Any:
    return live.api.get("/health")


@case("health", 503, "redis-unreachable")
def _(live: Live) -> Any:
    live.settings.REDIS_URL = "redis://127.0.0.1:1/0"
    return live.api.get("/health")


# /api/info -------------------------------------------------------------------------------

@case("info", 200, "info")
def _(live: Live) -> Any:
    return live.api.get("/api/info")


# /metrics --------------------------------------------------------------------------------

@case("metrics", 200, "loopback")
def _(live: Live) -> Any:
    return live.api.get("/metrics")


@case("metrics", 404, "remote-without-token")
def _(live: Live) -> Any:
    live.settings.METRICS_TOKEN = ""
    return live.api.get("/metrics", REMOTE_ADDR="203.0.113.7")


# /api/bootstrap/initial-key --------------------------------------------------------------

@case("bootstrap_initial_key", 201, "first-master-key")
def _(live: Live) -> Any:
    return live.api.post("/api/bootstrap/initial-key")


@case("bootstrap_initial_key", 403, "already-bootstrapped")
def _(live: Live) -> Any:
    live.tenants  # keys exist
    return live.api.post("/api/bootstrap/initial-key")


@case("bootstrap_initial_key", 405, "get")
def _(live: Live) -> Any:
    return live.api.get("/api/bootstrap/initial-key")


# /api/admin/keys -------------------------------------------------------------------------

@case("keys_list", 200, "master-key")
def _(live: Live) -> Any:
    t = live.tenants
    created = live.api.post("/api/admin/keys", {"type": "project", "projectId": "project-c", "name": "CI"},
                            format="json", **auth(t.master))
    assert created.status_code == 201
    assert live.api.delete(f"/api/admin/keys/{t.b_key.id}", **auth(t.master)).status_code == 200
    return live.api.get("/api/admin/keys", **auth(t.master))


@case("keys_list", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.get("/api/admin/keys")


@case("keys_list", 401, "unknown-key")
def _(live: Live) -> Any:
    return live.api.get("/api/admin/keys", **auth(live.tenants.master[:-4] + "zzzz"))


@case("keys_list", 401, "bearer-malformed")
def _(live: Live) -> Any:
    return live.api.get("/api/admin/keys", HTTP_AUTHORIZATION=f"Token {live.tenants.master}")


@case("keys_list", 403, "project-key")
def _(live: Live) -> Any:
    return live.api.get("/api/admin/keys", **auth(live.tenants.a))


@case("keys_list", 405, "put")
def _(live: Live) -> Any:
    return live.api.put("/api/admin/keys", {}, format="json", **auth(live.tenants.master))


@case("keys_create", 201, "project-key")
def _(live: Live) -> Any:
    body = {"type": "project", "projectId": "project-c", "organizationId": "org-1", "name": "CI",
            "expiresInDays": 30}
    return live.api.post("/api/admin/keys", body, format="json", **auth(live.tenants.master))


@case("keys_create", 201, "master-key")
def _(live: Live) -> Any:
    return live.api.post("/api/admin/keys", {"type": "master", "name": "ops"}, format="json",
                         **auth(live.tenants.master))


@case("keys_create", 400, "validation")
def _(live: Live) -> Any:
    return live.api.post("/api/admin/keys", {"type": "project"}, format="json", **auth(live.tenants.master))


@case("keys_create", 400, "invalid-json")
def _(live: Live) -> Any:
    return live.api.generic("POST", "/api/admin/keys", '{"type": "project",', content_type="application/json",
                            **auth(live.tenants.master))


@case("keys_create", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.post("/api/admin/keys", {"type": "master"}, format="json")


@case("keys_create", 403, "project-key")
def _(live: Live) -> Any:
    return live.api.post("/api/admin/keys", {"type": "master"}, format="json", **auth(live.tenants.a))


@case("keys_create", 415, "text-plain")
def _(live: Live) -> Any:
    return live.api.generic("POST", "/api/admin/keys", "type=master", content_type="text/plain",
                            **auth(live.tenants.master))


@case("keys_create", 405, "patch")
def _(live: Live) -> Any:
    return live.api.patch("/api/admin/keys", {}, format="json", **auth(live.tenants.master))


# /api/admin/keys/{keyId} -----------------------------------------------------------------

@case("keys_revoke", 200, "project-key")
def _(live: Live) -> Any:
    t = live.tenants
    return live.api.delete(f"/api/admin/keys/{t.b_key.id}", **auth(t.master))


@case("keys_revoke", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.delete(f"/api/admin/keys/{live.tenants.b_key.id}")


@case("keys_revoke", 403, "project-key")
def _(live: Live) -> Any:
    return live.api.delete(f"/api/admin/keys/{live.tenants.b_key.id}", **auth(live.tenants.a))


@case("keys_revoke", 404, "unknown-id")
def _(live: Live) -> Any:
    return live.api.delete(f"/api/admin/keys/{UNKNOWN_ID}", **auth(live.tenants.master))


@case("keys_revoke", 404, "malformed-id")
def _(live: Live) -> Any:
    return live.api.delete("/api/admin/keys/not-a-uuid", **auth(live.tenants.master))


@case("keys_revoke", 409, "last-master-key")
def _(live: Live) -> Any:
    t = live.tenants
    return live.api.delete(f"/api/admin/keys/{t.master_key.id}", **auth(t.master))


@case("keys_revoke", 405, "get")
def _(live: Live) -> Any:
    return live.api.get(f"/api/admin/keys/{live.tenants.b_key.id}", **auth(live.tenants.master))


# /api/me ---------------------------------------------------------------------------------

@case("me", 200, "project-key")
def _(live: Live) -> Any:
    return live.api.get("/api/me", **auth(live.tenants.a))


@case("me", 200, "master-key")
def _(live: Live) -> Any:
    return live.api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {live.tenants.master}")


@case("me", 200, "counter-store-down", mismatch(
    "$.rateLimit: schema does not allow null, sent null",
    why="MeOutput.rateLimit is {allOf: [RateLimitOutput], nullable: true}; in OpenAPI 3.0.3 nullable only "
        "applies next to a `type` in the same schema object, and RateLimitOutput is a non-nullable object"))
def _(live: Live) -> Any:
    live.dead_counter_store()
    return live.api.get("/api/me", **auth(live.tenants.a))


@case("me", 401, "revoked-key")
def _(live: Live) -> Any:
    t = live.tenants
    assert live.api.delete(f"/api/admin/keys/{t.b_key.id}", **auth(t.master)).status_code == 200
    return live.api.get("/api/me", **auth(t.b))


@case("me", 405, "post")
def _(live: Live) -> Any:
    return live.api.post("/api/me", {}, format="json", **auth(live.tenants.a))


@case("me", 406, "accept-image")
def _(live: Live) -> Any:
    return live.api.get("/api/me", HTTP_ACCEPT="image/png", **auth(live.tenants.a))


# /api/enhance ----------------------------------------------------------------------------

@case("enhance_create", 200, "sync-gemini")
def _(live: Live) -> Any:
    live.gemini
    return live.enhance()


@case("enhance_create", 200, "sync-offline")
def _(live: Live) -> Any:
    return live.enhance(body={"prompt": "un chat roux sur un canapé"})


@case("enhance_create", 202, "respond-async")
def _(live: Live) -> Any:
    live.gemini
    return live.enhance(headers=ASYNC)


@case("enhance_create", 202, "wait-ran-out")
def _(live: Live) -> Any:
    live.gemini.latency = 1.0
    return live.enhance(headers={"HTTP_PREFER": "wait=0.1"})


@case("enhance_create", 400, "missing-prompt")
def _(live: Live) -> Any:
    return live.enhance(body={"options": {"imageStyle": "comic"}})


@case("enhance_create", 400, "bad-option")
def _(live: Live) -> Any:
    return live.enhance(body={"prompt": "a cat", "options": {"imageStyle": "anime"}})


@case("enhance_create", 400, "invalid-idempotency-key")
def _(live: Live) -> Any:
    return live.enhance(headers={"HTTP_IDEMPOTENCY_KEY": "x" * 300})


@case("enhance_create", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.post("/api/enhance", {"prompt": "a cat"}, format="json")


@case("enhance_create", 405, "get")
def _(live: Live) -> Any:
    return live.api.get("/api/enhance", **auth(live.tenants.a))


@case("enhance_create", 411, "chunked-body")
def _(live: Live) -> Any:
    return live.api.generic("POST", "/api/enhance", "", content_type="application/json",
                            HTTP_TRANSFER_ENCODING="chunked", **auth(live.tenants.a))


@case("enhance_create", 413, "body-too-large")
def _(live: Live) -> Any:
    live.settings.MAX_REQUEST_BYTES = TOO_LARGE
    return live.enhance(body={"prompt": "x" * 4000})


@case("enhance_create", 415, "form-body")
def _(live: Live) -> Any:
    return live.api.post("/api/enhance", {"prompt": "a cat"}, format="multipart", **auth(live.tenants.a))


@case("enhance_create", 422, "content-blocked")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.prompt_blocked("SAFETY"))
    return live.enhance()


@case("enhance_create", 422, "idempotency-key-reused")
def _(live: Live) -> Any:
    first = live.enhance(headers={**ASYNC, "HTTP_IDEMPOTENCY_KEY": "order-1"})
    assert first.status_code == 202
    return live.enhance(body={"prompt": "something else"}, headers={"HTTP_IDEMPOTENCY_KEY": "order-1"})


@case("enhance_create", 429, "over-budget")
def _(live: Live) -> Any:
    return live.over_budget(lambda: live.enhance(headers=ASYNC))


@case("enhance_create", 502, "upstream-invalid-response")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.malformed())
    return live.enhance()


@case("enhance_create", 503, "upstream-unavailable")
def _(live: Live) -> Any:
    live.settings.UPSTREAM_MAX_ATTEMPTS = 2
    live.gemini.fail_all(PASSING_OUTAGE)
    return live.enhance()


@case("enhance_create", 503, "rate-limiter-unavailable")
def _(live: Live) -> Any:
    live.tenants
    live.dead_counter_store()
    return live.enhance()


@case("enhance_create", 503, "queue-unavailable")
def _(live: Live) -> Any:
    live.tenants
    live.dead_broker()
    return live.enhance()


@case("enhance_create", 504, "job-timed-out")
def _(live: Live) -> Any:
    live.upstream_times_out()
    return live.enhance()


@case("enhance_create", 409, "deadline-exceeded")
def _(live: Live) -> Any:
    live.gemini.latency = 3.0
    return live.enhance(headers={"HTTP_CANCEL_AFTER": "1s"})


# /api/text-to-image ----------------------------------------------------------------------

@case("text_to_image_create", 200, "sync-gemini")
def _(live: Live) -> Any:
    live.gemini
    return live.t2i(aspectRatio="16:9", autoEnhance=False, meta={"tags": ["demo"]})


@case("text_to_image_create", 200, "sync-gemini-auto-enhance")
def _(live: Live) -> Any:
    live.gemini
    return live.t2i(enhancementOptions={"template": "illustration", "mood": "peaceful"})


@case("text_to_image_create", 200, "sync-offline")
def _(live: Live) -> Any:
    return live.t2i(aspectRatio="3:4")


@case("text_to_image_create", 200, "idempotent-replay")
def _(live: Live) -> Any:
    live.gemini
    first = live.t2i(autoEnhance=False, headers={"HTTP_IDEMPOTENCY_KEY": "order-7"})
    assert first.status_code == 200
    return live.t2i(autoEnhance=False, headers={"HTTP_IDEMPOTENCY_KEY": "order-7"})


@case("text_to_image_create", 202, "respond-async")
def _(live: Live) -> Any:
    live.gemini
    return live.t2i(headers=ASYNC)


@case("text_to_image_create", 400, "validation")
def _(live: Live) -> Any:
    return live.t2i(prompt="ab", aspect_ratio="16:9")


@case("text_to_image_create", 400, "invalid-json")
def _(live: Live) -> Any:
    return live.api.generic("POST", "/api/text-to-image", '{"prompt": ', content_type="application/json",
                            **auth(live.tenants.a))


@case("text_to_image_create", 401, "malformed-key")
def _(live: Live) -> Any:
    return live.api.post("/api/text-to-image", {"prompt": "a cat", "filename": "cat"}, format="json",
                         HTTP_X_API_KEY="Bearer nope")


@case("text_to_image_create", 405, "get")
def _(live: Live) -> Any:
    return live.api.get("/api/text-to-image", **auth(live.tenants.a))


@case("text_to_image_create", 413, "body-too-large")
def _(live: Live) -> Any:
    live.settings.MAX_REQUEST_BYTES = TOO_LARGE
    return live.t2i(prompt="x" * 1500)


@case("text_to_image_create", 415, "form-body")
def _(live: Live) -> Any:
    return live.api.post("/api/text-to-image", {"prompt": "a cat", "filename": "cat"}, format="multipart",
                         **auth(live.tenants.a))


@case("text_to_image_create", 422, "content-blocked")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.blocked("IMAGE_SAFETY"))
    return live.t2i(autoEnhance=False)


@case("text_to_image_create", 422, "no-image-returned")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.text_only("I can't draw that."))
    return live.t2i(autoEnhance=False)


@case("text_to_image_create", 429, "over-budget")
def _(live: Live) -> Any:
    return live.over_budget(lambda: live.t2i(headers=ASYNC))


@case("text_to_image_create", 502, "upstream-rejected")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.error(400, "bad model"))
    return live.t2i(autoEnhance=False)


@case("text_to_image_create", 503, "upstream-unavailable")
def _(live: Live) -> Any:
    live.settings.UPSTREAM_MAX_ATTEMPTS = 2
    live.gemini.fail_all(PASSING_OUTAGE)
    return live.t2i(autoEnhance=False)


@case("text_to_image_create", 503, "queue-unavailable")
def _(live: Live) -> Any:
    live.tenants
    live.dead_broker()
    return live.t2i()


@case("text_to_image_create", 504, "job-timed-out")
def _(live: Live) -> Any:
    live.upstream_times_out()
    return live.t2i(autoEnhance=False)


@case("text_to_image_create", 409, "deadline-exceeded")
def _(live: Live) -> Any:
    live.gemini.latency = 3.0
    return live.t2i(autoEnhance=False, headers={"HTTP_CANCEL_AFTER": "1s"})


# /api/generate ---------------------------------------------------------------------------

@case("generate_create", 200, "reference-images-gemini")
def _(live: Live) -> Any:
    live.gemini
    files = (SimpleUploadedFile("ref1.jpg", png_bytes(fmt="JPEG"), content_type="image/jpeg"),
             SimpleUploadedFile("ref2.png", png_bytes(), content_type="image/png"))
    return live.generate(files=files, aspectRatio="4:3", autoEnhance="true",
                         enhancementOptions='{"template": "comic", "lighting": "neon"}')


@case("generate_create", 200, "no-files-offline")
def _(live: Live) -> Any:
    return live.generate()


@case("generate_create", 202, "respond-async")
def _(live: Live) -> Any:
    live.gemini
    return live.generate(headers=ASYNC)


@case("generate_create", 400, "not-an-image")
def _(live: Live) -> Any:
    return live.generate(files=(SimpleUploadedFile("doc.png", b"%PDF-1.7\n fake", content_type="image/png"),))


@case("generate_create", 400, "validation")
def _(live: Live) -> Any:
    return live.generate(filename="photo.png", autoEnhance="maybe")


@case("generate_create", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.post("/api/generate", {"prompt": "a cat", "filename": "cat"}, format="multipart")


@case("generate_create", 405, "get")
def _(live: Live) -> Any:
    return live.api.get("/api/generate", **auth(live.tenants.a))


@case("generate_create", 413, "reference-too-large")
def _(live: Live) -> Any:
    big = png_bytes() + b"\0" * (5 * 1024 * 1024)
    return live.generate(files=(SimpleUploadedFile("huge.png", big, content_type="image/png"),))


@case("generate_create", 413, "body-too-large")
def _(live: Live) -> Any:
    live.settings.MAX_REQUEST_BYTES = TOO_LARGE
    return live.generate(files=(SimpleUploadedFile("a.png", png_bytes((300, 300)) + b"\0" * 4096),))


@case("generate_create", 415, "json-body")
def _(live: Live) -> Any:
    return live.api.post("/api/generate", {"prompt": "a cat", "filename": "cat"}, format="json",
                         **auth(live.tenants.a))


@case("generate_create", 422, "content-blocked")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.blocked("PROHIBITED_CONTENT"))
    return live.generate()


@case("generate_create", 429, "over-budget")
def _(live: Live) -> Any:
    return live.over_budget(lambda: live.generate(headers=ASYNC))


@case("generate_create", 502, "upstream-invalid-response")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.not_an_image())
    return live.generate()


@case("generate_create", 503, "upstream-unavailable")
def _(live: Live) -> Any:
    live.settings.UPSTREAM_MAX_ATTEMPTS = 2
    live.gemini.fail_all(PASSING_OUTAGE)
    return live.generate()


@case("generate_create", 504, "job-timed-out")
def _(live: Live) -> Any:
    live.upstream_times_out()
    return live.generate()


@case("generate_create", 409, "deadline-exceeded")
def _(live: Live) -> Any:
    live.gemini.latency = 3.0
    return live.generate(headers={"HTTP_CANCEL_AFTER": "1s"})


# /v1 (OpenAI-compatible) ---------------------------------------------------------------

def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def v1_generate(live: Live, key: str | None = None, headers: dict[str, str] | None = None, **body: Any) -> Any:
    payload = {"prompt": "A lighthouse on a cliff at dusk", **body}
    return live.api.post("/v1/images/generations", payload, format="json", **bearer(key or live.tenants.a),
                         **(headers or {}))


def v1_edit(live: Live, key: str | None = None, headers: dict[str, str] | None = None, files: tuple = (),
            **fields: Any) -> Any:
    data: dict[str, Any] = {"prompt": "The same scene at night", **fields}
    data["image"] = list(files) or [SimpleUploadedFile("ref.png", png_bytes(), content_type="image/png")]
    return live.api.post("/v1/images/edits", data, format="multipart", **bearer(key or live.tenants.a),
                         **(headers or {}))


@case("openai_images_generate", 200, "urls-gemini")
def _(live: Live) -> Any:
    live.gemini
    return v1_generate(live, n=2, size="1536x1024", model="dall-e-3", quality="standard", style="vivid", user="u1")


@case("openai_images_generate", 200, "b64-jpeg-offline")
def _(live: Live) -> Any:
    return v1_generate(live, response_format="b64_json", output_format="jpeg", size="16:9")


@case("openai_images_generate", 400, "bad-size")
def _(live: Live) -> Any:
    return v1_generate(live, size="640x480")


@case("openai_images_generate", 400, "content-blocked")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.blocked("IMAGE_SAFETY"))
    return v1_generate(live)


@case("openai_images_generate", 401, "invalid-key")
def _(live: Live) -> Any:
    return v1_generate(live, key="bnt_" + "x" * 40)


@case("openai_images_generate", 403, "master-key")
def _(live: Live) -> Any:
    return v1_generate(live, key=live.tenants.master)


@case("openai_images_generate", 405, "get")
def _(live: Live) -> Any:
    return live.api.get("/v1/images/generations", **bearer(live.tenants.a))


@case("openai_images_generate", 406, "accept-xml")
def _(live: Live) -> Any:
    return v1_generate(live, headers={"HTTP_ACCEPT": "application/xml"})


@case("openai_images_generate", 409, "deadline-exceeded")
def _(live: Live) -> Any:
    live.gemini.latency = 3.0
    return v1_generate(live, headers={"HTTP_CANCEL_AFTER": "1s"})


@case("openai_images_generate", 413, "body-too-large")
def _(live: Live) -> Any:
    live.settings.MAX_REQUEST_BYTES = TOO_LARGE
    return v1_generate(live, prompt="x" * 1500)


@case("openai_images_generate", 415, "form-body")
def _(live: Live) -> Any:
    return live.api.post("/v1/images/generations", {"prompt": "a cat"}, format="multipart", **bearer(live.tenants.a))


@case("openai_images_generate", 422, "no-image-returned")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.text_only("I can't draw that."))
    return v1_generate(live)


@case("openai_images_generate", 429, "over-budget")
def _(live: Live) -> Any:
    return live.over_budget(lambda: v1_generate(live))


@case("openai_images_generate", 502, "upstream-rejected")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.error(400, "bad model"))
    return v1_generate(live)


@case("openai_images_generate", 503, "upstream-unavailable")
def _(live: Live) -> Any:
    live.settings.UPSTREAM_MAX_ATTEMPTS = 2
    live.gemini.fail_all(PASSING_OUTAGE)
    return v1_generate(live)


@case("openai_images_generate", 504, "job-timeout")
def _(live: Live) -> Any:
    live.settings.OPENAI_COMPAT_WAIT_SECONDS = 1
    live.gemini.latency = 2.0
    response = v1_generate(live)
    _wait_all_finished()  # the job keeps running after the 504; let it end inside the test
    return response


@case("openai_images_edit", 200, "two-images-gemini")
def _(live: Live) -> Any:
    live.gemini
    files = (SimpleUploadedFile("a.png", png_bytes(), content_type="image/png"),
             SimpleUploadedFile("b.jpg", png_bytes(fmt="JPEG"), content_type="image/jpeg"))
    return v1_edit(live, files=files, n="2", response_format="b64_json", output_format="webp")


@case("openai_images_edit", 200, "one-image-offline")
def _(live: Live) -> Any:
    return v1_edit(live, size="1024x1792")


@case("openai_images_edit", 400, "mask")
def _(live: Live) -> Any:
    return v1_edit(live, mask=SimpleUploadedFile("mask.png", png_bytes(), content_type="image/png"))


@case("openai_images_edit", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.post("/v1/images/edits", {"prompt": "a cat"}, format="multipart")


@case("openai_images_edit", 403, "master-key")
def _(live: Live) -> Any:
    return v1_edit(live, key=live.tenants.master)


@case("openai_images_edit", 405, "get")
def _(live: Live) -> Any:
    return live.api.get("/v1/images/edits", **bearer(live.tenants.a))


@case("openai_images_edit", 409, "deadline-exceeded")
def _(live: Live) -> Any:
    live.gemini.latency = 3.0
    return v1_edit(live, headers={"HTTP_CANCEL_AFTER": "1s"})


@case("openai_images_edit", 411, "chunked-body")
def _(live: Live) -> Any:
    return live.api.generic("POST", "/v1/images/edits", b"", content_type="multipart/form-data; boundary=x",
                            HTTP_TRANSFER_ENCODING="chunked", **bearer(live.tenants.a))


@case("openai_images_edit", 413, "image-too-large")
def _(live: Live) -> Any:
    big = png_bytes() + b"\0" * (5 * 1024 * 1024)
    return v1_edit(live, files=(SimpleUploadedFile("huge.png", big, content_type="image/png"),))


@case("openai_images_edit", 415, "json-body")
def _(live: Live) -> Any:
    return live.api.post("/v1/images/edits", {"prompt": "a cat"}, format="json", **bearer(live.tenants.a))


@case("openai_images_edit", 422, "no-image-returned")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.text_only("I can't draw that."))
    return v1_edit(live)


@case("openai_images_edit", 429, "over-budget")
def _(live: Live) -> Any:
    return live.over_budget(lambda: v1_edit(live))


@case("openai_images_edit", 502, "upstream-invalid-response")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.not_an_image())
    return v1_edit(live)


@case("openai_images_edit", 503, "queue-unavailable")
def _(live: Live) -> Any:
    live.tenants
    live.dead_broker()
    return v1_edit(live)


@case("openai_images_edit", 504, "job-timed-out")
def _(live: Live) -> Any:
    live.upstream_times_out()
    return v1_edit(live)


@case("openai_models_list", 200, "models")
def _(live: Live) -> Any:
    return live.api.get("/v1/models", **bearer(live.tenants.a))


@case("openai_models_list", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.get("/v1/models")


@case("openai_models_list", 403, "master-key")
def _(live: Live) -> Any:
    return live.api.get("/v1/models", **bearer(live.tenants.master))


@case("openai_models_list", 405, "post")
def _(live: Live) -> Any:
    return live.api.post("/v1/models", {}, format="json", **bearer(live.tenants.a))


def _wait_all_finished(timeout: float = 15.0) -> None:
    from apps.jobs.models import Job

    deadline = time.monotonic() + timeout
    while Job.objects.filter(status__in=Job.UNFINISHED).exists():
        assert time.monotonic() < deadline, "a job did not finish"
        time.sleep(0.05)


# /api/jobs/{jobId} -----------------------------------------------------------------------

@case("job_retrieve", 200, "generation-in-progress")
def _(live: Live) -> Any:
    live.gemini.latency = 1.0
    accepted = live.t2i(autoEnhance=False, headers=ASYNC)
    response = live.job(accepted.json()["jobId"])
    assert response.json()["status"] in ("queued", "running")
    return response


@case("job_retrieve", 200, "generation-succeeded")
def _(live: Live) -> Any:
    live.gemini
    return live.finished_job(live.t2i(autoEnhance=False, headers=ASYNC).json()["jobId"])


@case("job_retrieve", 200, "generation-succeeded-enhanced")
def _(live: Live) -> Any:
    return live.finished_job(live.generate(autoEnhance="true", headers=ASYNC).json()["jobId"])


@case("job_retrieve", 200, "generation-failed-content-blocked")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.blocked("IMAGE_SAFETY"))
    response = live.finished_job(live.t2i(autoEnhance=False, headers=ASYNC).json()["jobId"])
    assert response.json()["status"] == "failed"
    return response


@case("job_retrieve", 200, "generation-failed-retry-after")
def _(live: Live) -> Any:
    live.settings.UPSTREAM_MAX_ATTEMPTS = 1
    live.gemini.enqueue(Reply.error(429, retry_after=7))
    response = live.finished_job(live.t2i(autoEnhance=False, headers=ASYNC).json()["jobId"])
    assert response.json()["error"]["retryAfter"] == 7
    return response


@case("job_retrieve", 200, "enhancement-succeeded")
def _(live: Live) -> Any:
    live.gemini
    return live.finished_job(live.enhance(headers=ASYNC).json()["jobId"])


@case("job_retrieve", 200, "enhancement-failed")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.malformed())
    response = live.finished_job(live.enhance(headers=ASYNC).json()["jobId"])
    assert response.json()["status"] == "failed"
    return response


@case("job_retrieve", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.get(f"/api/jobs/{UNKNOWN_ID}")


@case("job_retrieve", 404, "unknown-id")
def _(live: Live) -> Any:
    return live.job(UNKNOWN_ID)


@case("job_retrieve", 404, "other-project")
def _(live: Live) -> Any:
    job_id = live.enhance(headers=ASYNC).json()["jobId"]
    return live.job(job_id, key=live.tenants.b)


@case("job_retrieve", 405, "delete")
def _(live: Live) -> Any:
    return live.api.delete(f"/api/jobs/{UNKNOWN_ID}", **auth(live.tenants.a))


@case("job_retrieve", 200, "generation-canceled")
def _(live: Live) -> Any:
    live.gemini.latency = 3.0
    job_id = live.t2i(autoEnhance=False, headers=ASYNC).json()["jobId"]
    assert live.cancel(job_id).status_code == 200
    response = live.job(job_id)
    assert response.json()["status"] == "canceled"
    return response


# /api/jobs/{jobId}/cancel ----------------------------------------------------------------

@case("job_cancel", 200, "running")
def _(live: Live) -> Any:
    live.gemini.latency = 3.0
    return live.cancel(live.t2i(autoEnhance=False, headers=ASYNC).json()["jobId"])


@case("job_cancel", 200, "already-canceled")
def _(live: Live) -> Any:
    live.gemini.latency = 3.0
    job_id = live.enhance(headers=ASYNC).json()["jobId"]
    first = live.cancel(job_id)
    again = live.cancel(job_id)
    assert again.json() == first.json()
    return again


@case("job_cancel", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.post(f"/api/jobs/{UNKNOWN_ID}/cancel")


@case("job_cancel", 404, "other-project")
def _(live: Live) -> Any:
    job_id = live.enhance(headers=ASYNC).json()["jobId"]
    return live.cancel(job_id, key=live.tenants.b)


@case("job_cancel", 405, "get")
def _(live: Live) -> Any:
    return live.api.get(f"/api/jobs/{UNKNOWN_ID}/cancel", **auth(live.tenants.a))


@case("job_cancel", 409, "already-succeeded")
def _(live: Live) -> Any:
    live.gemini
    job_id = live.enhance().json()["jobId"]
    return live.cancel(job_id)


# /api/jobs -------------------------------------------------------------------------------

def _jobs_of_every_status(live: Live) -> None:
    """Project A's jobs: one succeeded, one failed and one canceled of each kind, and one
    still queued or running (a slow upstream)."""
    live.gemini.enqueue(Reply.blocked("IMAGE_SAFETY"))
    assert live.finished_job(live.t2i(autoEnhance=False, headers=ASYNC).json()["jobId"]).json()["status"] == "failed"
    live.finished_job(live.t2i(autoEnhance=False, headers=ASYNC).json()["jobId"])
    live.gemini.enqueue(Reply.malformed())
    assert live.finished_job(live.enhance(headers=ASYNC).json()["jobId"]).json()["status"] == "failed"
    live.finished_job(live.enhance(headers=ASYNC).json()["jobId"])
    live.gemini.latency = 3.0
    for created in (live.t2i(autoEnhance=False, headers=ASYNC), live.enhance(headers=ASYNC)):
        assert live.cancel(created.json()["jobId"]).status_code == 200
    live.t2i(autoEnhance=False, headers=ASYNC)


def jobs(live: Live, key: str | None = None, **params: Any) -> Any:
    return live.api.get("/api/jobs", params, **auth(key or live.tenants.a))


@case("jobs_list", 200, "every-status")
def _(live: Live) -> Any:
    _jobs_of_every_status(live)
    response = jobs(live)
    assert {job["status"] for job in response.json()["jobs"]} >= {"succeeded", "failed", "canceled"}
    return response


@case("jobs_list", 200, "filtered-next-page")
def _(live: Live) -> Any:
    _jobs_of_every_status(live)
    first = jobs(live, limit=1, status="succeeded,failed", kind="generation").json()
    assert first["hasMore"] is True
    return jobs(live, limit=1, status="succeeded,failed", kind="generation", cursor=first["nextCursor"],
                createdAfter="2020-01-01T00:00:00Z")


@case("jobs_list", 200, "master-key-project")
def _(live: Live) -> Any:
    live.enhance(headers=ASYNC)
    return jobs(live, key=live.tenants.master, projectId="project-a")


@case("jobs_list", 200, "empty")
def _(live: Live) -> Any:
    return jobs(live, key=live.tenants.b)


@case("jobs_list", 400, "validation")
def _(live: Live) -> Any:
    return jobs(live, limit=0, status="done", createdAfter="yesterday")


@case("jobs_list", 400, "invalid-cursor")
def _(live: Live) -> Any:
    return jobs(live, cursor="not-a-cursor")


@case("jobs_list", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.get("/api/jobs")


@case("jobs_list", 403, "project-key-other-project")
def _(live: Live) -> Any:
    return jobs(live, projectId="project-b")


@case("jobs_list", 405, "post")
def _(live: Live) -> Any:
    return live.api.post("/api/jobs", {}, format="json", **auth(live.tenants.a))


# /api/jobs/{jobId}/events ----------------------------------------------------------------

def _events(live: Live, job_id: str, key: str | None = None, **headers: str) -> Any:
    return live.api.get(f"/api/jobs/{job_id}/events", HTTP_ACCEPT="text/event-stream",
                        **auth(key or live.tenants.a), **headers)


@case("job_events", 200, "generation-until-succeeded")
def _(live: Live) -> Any:
    live.gemini.latency = 0.5
    live.settings.SSE_KEEPALIVE_SECONDS = 0.2  # comments between the events too
    return _events(live, live.t2i(autoEnhance=False, headers=ASYNC).json()["jobId"])


@case("job_events", 200, "enhancement-failed")
def _(live: Live) -> Any:
    live.gemini.enqueue(Reply.malformed())
    return _events(live, live.enhance(headers=ASYNC).json()["jobId"])


@case("job_events", 200, "generation-canceled")
def _(live: Live) -> Any:
    live.gemini.latency = 3.0
    job_id = live.t2i(autoEnhance=False, headers=ASYNC).json()["jobId"]
    assert live.cancel(job_id).status_code == 200
    return _events(live, job_id)


@case("job_events", 200, "resumed-after-the-end")
def _(live: Live) -> Any:
    live.gemini
    job_id = live.enhance().json()["jobId"]
    return _events(live, job_id, HTTP_LAST_EVENT_ID="6")


@case("job_events", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.get(f"/api/jobs/{UNKNOWN_ID}/events", HTTP_ACCEPT="text/event-stream")


@case("job_events", 404, "unknown-id")
def _(live: Live) -> Any:
    return _events(live, UNKNOWN_ID)


@case("job_events", 404, "other-project")
def _(live: Live) -> Any:
    return _events(live, live.enhance(headers=ASYNC).json()["jobId"], key=live.tenants.b)


@case("job_events", 405, "post")
def _(live: Live) -> Any:
    return live.api.post(f"/api/jobs/{UNKNOWN_ID}/events", **auth(live.tenants.a))


@case("job_events", 406, "accept-image")
def _(live: Live) -> Any:
    return live.api.get(f"/api/jobs/{UNKNOWN_ID}/events", HTTP_ACCEPT="image/png", **auth(live.tenants.a))


# /api/images/{path} ----------------------------------------------------------------------

def _image_path(live: Live) -> str:
    live.gemini
    created = live.t2i(autoEnhance=False)
    assert created.status_code == 200, created.json()
    return "/" + created.json()["data"]["url"].split("://", 1)[1].split("/", 1)[1]


@case("image_retrieve", 200, "png")
def _(live: Live) -> Any:
    return live.api.get(_image_path(live))


@case("image_retrieve", 304, "etag-matches")
def _(live: Live) -> Any:
    path = _image_path(live)
    first = live.api.get(path)
    return live.api.get(path, HTTP_IF_NONE_MATCH=first["ETag"])


@case("image_retrieve", 404, "missing")
def _(live: Live) -> Any:
    return live.api.get(f"/api/images/project-a/2026/01/{uuid.uuid4().hex}-nothing.png")


@case("image_retrieve", 405, "post")
def _(live: Live) -> Any:
    return live.api.post(_image_path(live), {}, format="json")


# /api/webhooks and its routes -------------------------------------------------------------

LONG_PROJECT = "?projectId=" + "p" * 101  # over the 100 characters a project id may have


def _webhook(live: Live, key: str | None = None, url: str = "/hook", **body: Any) -> dict[str, Any]:
    """A registered endpoint (its receiver on 127.0.0.1: private targets allowed)."""
    live.settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    receiver = live.request.getfixturevalue("receiver")
    r = live.api.post("/api/webhooks", {"url": receiver.url + url, **body}, format="json",
                      **auth(key or live.tenants.a))
    assert r.status_code == 201, r.json()
    return r.json()["webhook"]


def _delivered(live: Live, outcome: str = "succeeded") -> tuple[str, str]:
    """(endpoint id, delivery id) of a job.succeeded delivery, once it ended with ``outcome``."""
    webhook_id = _webhook(live)["id"]
    live.settings.GEMINI_API_KEY = ""
    job_id = live.t2i(headers=ASYNC, autoEnhance=False).json()["jobId"]
    live.finished_job(job_id)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = live.api.get(f"/api/webhooks/{webhook_id}/deliveries", **auth(live.tenants.a)).json()["deliveries"]
        if found and found[0]["status"] == outcome:
            return webhook_id, found[0]["id"]
        time.sleep(0.05)
    raise AssertionError(f"the delivery did not end {outcome} in 15 s")


@case("webhooks_create", 201, "project-key")
def _(live: Live) -> Any:
    live.settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    return live.api.post("/api/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["job.started"],
                                           "description": "CI"}, format="json", **auth(live.tenants.a))


@case("webhooks_create", 201, "master-key-for-a-project")
def _(live: Live) -> Any:
    live.settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    return live.api.post("/api/webhooks", {"url": "http://127.0.0.1:9/hook", "projectId": "project-b"},
                         format="json", **auth(live.tenants.master))


@case("webhooks_create", 400, "unknown-event")
def _(live: Live) -> Any:
    return live.api.post("/api/webhooks", {"url": "https://example.com/hook", "events": ["job.done"]},
                         format="json", **auth(live.tenants.a))


@case("webhooks_create", 400, "url-not-allowed")
def _(live: Live) -> Any:
    live.settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    return live.api.post("/api/webhooks", {"url": "https://169.254.169.254/latest"}, format="json",
                         **auth(live.tenants.a))


@case("webhooks_create", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.post("/api/webhooks", {"url": "https://example.com/hook"}, format="json")


@case("webhooks_create", 403, "project-key-naming-another-project")
def _(live: Live) -> Any:
    return live.api.post("/api/webhooks", {"url": "https://example.com/hook", "projectId": "project-b"},
                         format="json", **auth(live.tenants.a))


@case("webhooks_create", 405, "put")
def _(live: Live) -> Any:
    return live.api.put("/api/webhooks", {}, format="json", **auth(live.tenants.a))


@case("webhooks_create", 415, "form-body")
def _(live: Live) -> Any:
    return live.api.post("/api/webhooks", {"url": "https://example.com/hook"}, format="multipart",
                         **auth(live.tenants.a))


@case("webhooks_list", 200, "project-key")
def _(live: Live) -> Any:
    _webhook(live)
    _webhook(live, url="/second", events=["job.failed"])
    return live.api.get("/api/webhooks", **auth(live.tenants.a))


@case("webhooks_list", 200, "master-key-for-a-project")
def _(live: Live) -> Any:
    _webhook(live, live.tenants.b)
    return live.api.get("/api/webhooks?projectId=project-b", **auth(live.tenants.master))


@case("webhooks_list", 400, "project-id-too-long")
def _(live: Live) -> Any:
    return live.api.get(f"/api/webhooks{LONG_PROJECT}", **auth(live.tenants.master))


@case("webhooks_list", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.get("/api/webhooks")


@case("webhooks_list", 403, "project-key-naming-another-project")
def _(live: Live) -> Any:
    return live.api.get("/api/webhooks?projectId=project-b", **auth(live.tenants.a))


@case("webhooks_list", 405, "patch")
def _(live: Live) -> Any:
    return live.api.patch("/api/webhooks", {}, format="json", **auth(live.tenants.a))


@case("webhook_delete", 200, "own")
def _(live: Live) -> Any:
    return live.api.delete(f"/api/webhooks/{_webhook(live)['id']}", **auth(live.tenants.a))


@case("webhook_delete", 400, "project-id-too-long")
def _(live: Live) -> Any:
    return live.api.delete(f"/api/webhooks/{_webhook(live)['id']}{LONG_PROJECT}", **auth(live.tenants.master))


@case("webhook_delete", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.delete(f"/api/webhooks/{UNKNOWN_ID}")


@case("webhook_delete", 403, "project-key-naming-another-project")
def _(live: Live) -> Any:
    return live.api.delete(f"/api/webhooks/{UNKNOWN_ID}?projectId=project-b", **auth(live.tenants.a))


@case("webhook_delete", 404, "other-project")
def _(live: Live) -> Any:
    return live.api.delete(f"/api/webhooks/{_webhook(live, live.tenants.b)['id']}", **auth(live.tenants.a))


@case("webhook_delete", 405, "get")
def _(live: Live) -> Any:
    return live.api.get(f"/api/webhooks/{UNKNOWN_ID}", **auth(live.tenants.a))


@case("webhook_rotate_secret", 200, "own")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{_webhook(live)['id']}/rotate-secret", **auth(live.tenants.a))


@case("webhook_rotate_secret", 400, "project-id-too-long")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{UNKNOWN_ID}/rotate-secret{LONG_PROJECT}", **auth(live.tenants.master))


@case("webhook_rotate_secret", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{UNKNOWN_ID}/rotate-secret")


@case("webhook_rotate_secret", 403, "project-key-naming-another-project")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{UNKNOWN_ID}/rotate-secret?projectId=project-b", **auth(live.tenants.a))


@case("webhook_rotate_secret", 404, "unknown-id")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{UNKNOWN_ID}/rotate-secret", **auth(live.tenants.a))


@case("webhook_rotate_secret", 405, "get")
def _(live: Live) -> Any:
    return live.api.get(f"/api/webhooks/{UNKNOWN_ID}/rotate-secret", **auth(live.tenants.a))


@case("webhook_deliveries_list", 200, "delivered")
def _(live: Live) -> Any:
    webhook_id, _ = _delivered(live)
    return live.api.get(f"/api/webhooks/{webhook_id}/deliveries?limit=1", **auth(live.tenants.a))


@case("webhook_deliveries_list", 200, "failed")
def _(live: Live) -> Any:
    live.settings.WEBHOOK_RETRY_SCHEDULE = (0,)
    live.request.getfixturevalue("receiver").default.status = 500
    webhook_id, _ = _delivered(live, "failed")
    return live.api.get(f"/api/webhooks/{webhook_id}/deliveries", **auth(live.tenants.a))


@case("webhook_deliveries_list", 400, "forged-cursor")
def _(live: Live) -> Any:
    return live.api.get(f"/api/webhooks/{_webhook(live)['id']}/deliveries?cursor=forged", **auth(live.tenants.a))


@case("webhook_deliveries_list", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.get(f"/api/webhooks/{UNKNOWN_ID}/deliveries")


@case("webhook_deliveries_list", 403, "project-key-naming-another-project")
def _(live: Live) -> Any:
    return live.api.get(f"/api/webhooks/{UNKNOWN_ID}/deliveries?projectId=project-b", **auth(live.tenants.a))


@case("webhook_deliveries_list", 404, "other-project")
def _(live: Live) -> Any:
    return live.api.get(f"/api/webhooks/{_webhook(live, live.tenants.b)['id']}/deliveries", **auth(live.tenants.a))


@case("webhook_deliveries_list", 405, "post")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{UNKNOWN_ID}/deliveries", **auth(live.tenants.a))


@case("webhook_delivery_redeliver", 202, "delivered")
def _(live: Live) -> Any:
    webhook_id, delivery_id = _delivered(live)
    return live.api.post(f"/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", **auth(live.tenants.a))


@case("webhook_delivery_redeliver", 400, "project-id-too-long")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{UNKNOWN_ID}/deliveries/{UNKNOWN_ID}/redeliver{LONG_PROJECT}",
                         **auth(live.tenants.master))


@case("webhook_delivery_redeliver", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{UNKNOWN_ID}/deliveries/{UNKNOWN_ID}/redeliver")


@case("webhook_delivery_redeliver", 403, "project-key-naming-another-project")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{UNKNOWN_ID}/deliveries/{UNKNOWN_ID}/redeliver?projectId=project-b",
                         **auth(live.tenants.a))


@case("webhook_delivery_redeliver", 404, "unknown-delivery")
def _(live: Live) -> Any:
    return live.api.post(f"/api/webhooks/{_webhook(live)['id']}/deliveries/{UNKNOWN_ID}/redeliver",
                         **auth(live.tenants.a))


@case("webhook_delivery_redeliver", 405, "get")
def _(live: Live) -> Any:
    return live.api.get(f"/api/webhooks/{UNKNOWN_ID}/deliveries/{UNKNOWN_ID}/redeliver", **auth(live.tenants.a))


# --- the tests: one per operation, one parameter per status and situation ------------------

@pytest.fixture(autouse=True)
def _media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def live(request, api, settings, monkeypatch) -> Live:  # type: ignore[no-untyped-def]
    return Live(request, api, settings, monkeypatch)


# --- usage and quotas ----------------------------------------------------------------------

@case("usage_report", 200, "project-key")
def _(live: Live) -> Any:
    return live.api.get("/api/usage?groupBy=model", **auth(live.tenants.a))


@case("usage_report", 200, "master-key-every-project")
def _(live: Live) -> Any:
    return live.api.get("/api/usage?groupBy=project&from=2026-01-01&to=2026-12-31", **auth(live.tenants.master))


@case("usage_report", 400, "bad-date")
def _(live: Live) -> Any:
    return live.api.get("/api/usage?from=2026-02-30", **auth(live.tenants.a))


@case("usage_report", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.get("/api/usage")


@case("usage_report", 403, "project-key-naming-another-project")
def _(live: Live) -> Any:
    return live.api.get("/api/usage?projectId=project-b", **auth(live.tenants.a))


@case("usage_report", 405, "post")
def _(live: Live) -> Any:
    return live.api.post("/api/usage", {}, format="json", **auth(live.tenants.a))


@case("projects_list", 200, "master-key")
def _(live: Live) -> Any:
    live.api.put("/api/admin/projects/project-a", {"dailyImageLimit": 3, "monthlyBudgetUsd": None}, format="json",
                 **auth(live.tenants.master))
    return live.api.get("/api/admin/projects", **auth(live.tenants.master))


@case("projects_list", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.get("/api/admin/projects")


@case("projects_list", 403, "project-key")
def _(live: Live) -> Any:
    return live.api.get("/api/admin/projects", **auth(live.tenants.a))


@case("projects_list", 405, "delete")
def _(live: Live) -> Any:
    return live.api.delete("/api/admin/projects", **auth(live.tenants.master))


@case("project_quota_set", 200, "both-quotas")
def _(live: Live) -> Any:
    return live.api.put("/api/admin/projects/project-a", {"dailyImageLimit": 10, "monthlyBudgetUsd": 12.5},
                        format="json", **auth(live.tenants.master))


@case("project_quota_set", 400, "missing-field")
def _(live: Live) -> Any:
    return live.api.put("/api/admin/projects/project-a", {"dailyImageLimit": 10}, format="json",
                        **auth(live.tenants.master))


@case("project_quota_set", 401, "missing-key")
def _(live: Live) -> Any:
    return live.api.put("/api/admin/projects/project-a", {"dailyImageLimit": 1, "monthlyBudgetUsd": None},
                        format="json")


@case("project_quota_set", 403, "project-key")
def _(live: Live) -> Any:
    return live.api.put("/api/admin/projects/project-a", {"dailyImageLimit": 1, "monthlyBudgetUsd": None},
                        format="json", **auth(live.tenants.a))


@case("project_quota_set", 405, "get")
def _(live: Live) -> Any:
    return live.api.get("/api/admin/projects/project-a", **auth(live.tenants.master))


@case("project_quota_set", 415, "text-plain")
def _(live: Live) -> Any:
    return live.api.generic("PUT", "/api/admin/projects/project-a", "dailyImageLimit=1", content_type="text/plain",
                            **auth(live.tenants.master))


def _run(openapi: Conformance, request: pytest.FixtureRequest, live: Live, operation_id: str,
         scenario: Scenario, status: int) -> None:
    openapi.check(request, operation_id, scenario(live), status)


def test_every_operation_has_cases_for_success_and_its_reachable_errors(openapi):
    assert set(CASES) == set(openapi.operations), "an operation without a live case, or a case for none"
    # Answered by layers every operation shares (content negotiation, the body guard): one
    # live case on some operation is enough for these.
    shared = {406, 411, 413}
    covered = {param.values[1] for params in CASES.values() for param in params}
    assert shared <= covered, f"no live case anywhere for {sorted(shared - covered)}"
    for operation_id, params in CASES.items():
        statuses = {param.values[1] for param in params}
        declared = {int(s) for s in openapi.operations[operation_id]["responses"]}
        assert statuses & {200, 201, 202}, f"{operation_id}: no success case"
        # 500 needs a bug; everything else the operation declares has a live case.
        missing = declared - statuses - {500} - shared
        assert not missing, f"{operation_id}: no case for {sorted(missing)}"


@pytest.mark.parametrize("scenario,status", CASES["health"])
def test_health(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "health", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["info"])
def test_info(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "info", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["metrics"])
def test_metrics(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "metrics", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["bootstrap_initial_key"])
def test_bootstrap_initial_key(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "bootstrap_initial_key", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["keys_list"])
def test_keys_list(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "keys_list", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["keys_create"])
def test_keys_create(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "keys_create", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["keys_revoke"])
def test_keys_revoke(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "keys_revoke", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["me"])
def test_me(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "me", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["enhance_create"])
def test_enhance_create(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "enhance_create", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["text_to_image_create"])
def test_text_to_image_create(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "text_to_image_create", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["generate_create"])
def test_generate_create(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "generate_create", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["job_retrieve"])
def test_job_retrieve(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "job_retrieve", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["image_retrieve"])
def test_image_retrieve(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "image_retrieve", scenario, status)



@pytest.mark.parametrize("scenario,status", CASES["job_cancel"])
def test_job_cancel(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "job_cancel", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["jobs_list"])
def test_jobs_list(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "jobs_list", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["job_events"])
def test_job_events(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "job_events", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["webhooks_create"])
def test_webhooks_create(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "webhooks_create", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["webhooks_list"])
def test_webhooks_list(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "webhooks_list", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["webhook_delete"])
def test_webhook_delete(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "webhook_delete", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["webhook_rotate_secret"])
def test_webhook_rotate_secret(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "webhook_rotate_secret", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["webhook_deliveries_list"])
def test_webhook_deliveries_list(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "webhook_deliveries_list", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["webhook_delivery_redeliver"])
def test_webhook_delivery_redeliver(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "webhook_delivery_redeliver", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["usage_report"])
def test_usage_report(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "usage_report", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["projects_list"])
def test_projects_list(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "projects_list", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["project_quota_set"])
def test_project_quota_set(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "project_quota_set", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["openai_images_generate"])
def test_openai_images_generate(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "openai_images_generate", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["openai_images_edit"])
def test_openai_images_edit(openapi, request, live, worker, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "openai_images_edit", scenario, status)


@pytest.mark.parametrize("scenario,status", CASES["openai_models_list"])
def test_openai_models_list(openapi, request, live, db, scenario, status):  # type: ignore[no-untyped-def]
    _run(openapi, request, live, "openai_models_list", scenario, status)
