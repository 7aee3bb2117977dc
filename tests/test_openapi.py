"""The OpenAPI schema: generated from the serializers, covering every /api route, and
checked against the live app by schemathesis (bounded, so the suite stays fast)."""
from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLResolver, get_resolver

# The schema, Swagger UI and the error catalogue (a markdown page) document the API; they are not in it.
SELF_DOCUMENTING = {"/api/schema", "/api/docs", "/api/docs/errors\\.md"}


def urlconf_routes() -> set[str]:
    routes = set()

    def walk(patterns, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for pattern in patterns:
            regex = prefix + (getattr(pattern.pattern, "_regex", None) or str(pattern.pattern)).strip("^$")
            if isinstance(pattern, URLResolver):  # an app's urls, included
                walk(pattern.url_patterns, regex)
                continue
            path = "/" + regex.replace("/?", "").replace("(?P<path>.+)", "{path}")
            path = re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", path)
            if path.startswith(("/api/", "/v1/")) or path in ("/health", "/metrics"):
                routes.add(path.rstrip("/"))

    walk(get_resolver().url_patterns, "")
    return routes - SELF_DOCUMENTING


def test_every_api_route_is_in_the_schema_and_nothing_else(api, db):
    schema = api.get("/api/schema/").json()
    assert set(schema["paths"]) == urlconf_routes()


def test_schema_documents_security_headers_async_and_errors(api, db):
    schema = api.get("/api/schema/").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                       "description": schemes["ApiKeyHeader"]["description"]}
    assert schemes["BearerAuth"]["scheme"] == "bearer"
    t2i = schema["paths"]["/api/text-to-image"]["post"]
    assert t2i["security"] == [{"ApiKeyHeader": []}, {"BearerAuth": []}]
    assert {p["name"] for p in t2i["parameters"]} >= {"Prefer", "Idempotency-Key"}
    assert {"200", "202", "400", "401", "413", "415", "422", "429", "503"} <= set(t2i["responses"])
    assert t2i["responses"]["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"} <= \
        set(t2i["responses"]["429"]["headers"])
    assert "Location" in t2i["responses"]["202"]["headers"]
    assert schema["paths"]["/api/info"]["get"].get("security") in (None, [], [{}])


@pytest.mark.slow
def _as_png(value):  # type: ignore[no-untyped-def]
    """A generated multipart value, with every file in it replaced by a small real PNG."""
    import io

    from PIL import Image

    if isinstance(value, list):
        return [_as_png(v) for v in value]
    if not isinstance(value, bytes):
        return value
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(worker, live_server, tenants, settings):
    import schemathesis
    from django.utils import timezone
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance, positive_data_acceptance, response_schema_conformance, status_code_conformance,
    )

    from apps.generation.services import image_model_resolve
    from apps.jobs.cursor import cursor_encode
    from workers.providers.image_models import image_size_supported

    settings.BANATIE_RATE_LIMIT = "100000/h"
    raw = __import__("requests").get(f"{live_server.url}/api/schema/", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw)

    @schema.hook("map_query")
    def our_cursor(ctx, query):  # type: ignore[no-untyped-def]
        # No schema can tell a cursor this server signed from any other string: a generated
        # one is never ours (400 invalid_cursor). Send a position this server issued instead.
        if ctx.operation.path == "/api/jobs" and query and "cursor" in query:
            query["cursor"] = cursor_encode(created_at=timezone.now(), job_id=uuid.uuid4())
        return query

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    # positive_data_acceptance: what the schema calls valid is accepted (no 4xx for a request the
    # schema allows), so the schema states the constraints the server enforces. The one rule
    # no JSON Schema can state: an uploaded file must really be an image. Generated files
    # are replaced by a real PNG, so /api/generate is held to the check too.
    # POST /api/webhooks: the URL's host must resolve to a public address (SSRF rules), which
    # no schema can state; generated URLs are refused with webhook_url_not_allowed.
    # GET /api/usage: `from` after `to` is a 400, and either may be left to its default (the
    # current month), which a schema cannot relate to the other.
    not_positive: set[tuple[str, str]] = {("POST", "/api/webhooks"), ("GET", "/api/usage")}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        @given(case=operation.as_strategy())
        @hsettings(max_examples=12, deadline=None, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))
        def run(case):  # type: ignore[no-untyped-def]
            if case.headers and "Idempotency-Key" in case.headers:
                # Generated keys repeat across examples with other bodies (a legitimate 422
                # idempotency_key_reused); keep the header, make each use a new key.
                case.headers["Idempotency-Key"] = uuid.uuid4().hex
            if operation.path == "/api/generate" and isinstance(case.body, dict):
                case.body = {name: _as_png(value) for name, value in case.body.items()}
            if isinstance(case.body, dict) and case.body.get("imageSize") and not image_size_supported(
                    image_model_resolve(case.body.get("model"))):
                # The one rule between two fields no schema here states: imageSize needs a
                # model that takes one (else 400 image_size_unsupported naming the model).
                case.body.pop("imageSize")
            response = case.call(base_url=live_server.url, headers={"X-API-Key": tenants.master}, timeout=30)
            extra = [] if (operation.method.upper(), operation.path) in not_positive else [positive_data_acceptance]
            case.validate_response(response, checks=checks + extra)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report every operation at once
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_enum_names_are_stable_and_collision_free(api, db, capsys):
    schema = api.get("/api/schema/").json()
    enums = {name for name in schema["components"]["schemas"] if name.endswith("Enum")}
    assert {"JobStatusEnum", "HealthStatusEnum", "GenerationJobDetailOutputKindEnum",
            "EnhancementJobDetailOutputKindEnum"} <= enums
    assert not [name for name in enums if re.search(r"\d", name)]  # e.g. Status444Enum
    assert "collision" not in capsys.readouterr().err


def test_job_endpoints_document_prefer_wait_and_no_base_class_text(api, db):
    schema = api.get("/api/schema/").json()
    for path in ("/api/text-to-image", "/api/generate", "/api/enhance"):
        operation = schema["paths"][path]["post"]
        assert "What every job-creating endpoint shares" not in operation.get("description", "")
        prefer = next(p for p in operation["parameters"] if p["name"] == "Prefer")
        assert "respond-async" in prefer["description"] and "wait=N" in prefer["description"]


def test_every_job_endpoints_request_example_is_accepted_as_is(api, worker, tenants):
    # What Swagger UI's "Try it out" pre-fills must work when sent unchanged.
    schema = api.get("/api/schema/").json()
    for path in ("/api/text-to-image", "/api/generate", "/api/enhance"):
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        media, body = next(iter(content.items()))
        example = next(iter(body["examples"].values()))["value"]
        fmt = "json" if media == "application/json" else "multipart"
        r = api.post(path, example, format=fmt, HTTP_X_API_KEY=tenants.a, HTTP_PREFER="respond-async")
        assert r.status_code == 202, (path, r.json())


def test_the_schema_description_links_the_error_catalogue_the_server_serves(api, db):
    import re as _re

    description = api.get("/api/schema/").json()["info"]["description"]
    link = _re.search(r"\]\((/api/docs/errors\.md)\)", description)
    assert link, description
    r = api.get(link.group(1))
    assert r.status_code == 200 and r["Content-Type"].startswith("text/markdown")
    assert b"| `malformed_request` | 400 |" in r.content and b"| `rate_limit_exceeded` |" in r.content
