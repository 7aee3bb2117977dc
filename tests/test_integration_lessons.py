"""One test per row of ../shared/spec/integration-lessons.md: each mistake client authors
make against image APIs, and the specific answer Banatie gives instead."""
from __future__ import annotations

import io
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests.conftest import auth
from tests.gemini_emulator import Reply

pytestmark = pytest.mark.django_db

T2I = {"prompt": "A beautiful sunset over mountains", "filename": "sunset"}


def post_json(api, path, body, key=None, **extra):  # type: ignore[no-untyped-def]
    return api.post(path, body, format="json", **(auth(key) if key else {}), **extra)


# Sent Authorization: Bearer <key> instead of X-API-Key
def test_key_sent_as_authorization_bearer_works(api, tenants):
    r = api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {tenants.a}")
    assert r.status_code == 200 and r.json()["key"]["projectId"] == "project-a"


# Sent X-API-Key: Bearer bnt_..., or the key in quotes, or with spaces/newline
def test_key_sent_with_bearer_prefix_in_x_api_key_is_named(api, tenants):
    body = api.get("/api/me", HTTP_X_API_KEY=f"Bearer {tenants.a}").json()
    assert body["code"] == "api_key_malformed" and "'Bearer '" in body["message"]
    assert "X-API-Key: bnt_" in body["hint"]


def test_key_wrapped_in_quotes_is_named(api, tenants):
    body = api.get("/api/me", HTTP_X_API_KEY=f"'{tenants.a}'").json()
    assert body["code"] == "api_key_malformed" and "quotes" in body["message"]


def test_key_with_spaces_or_newline_is_named(api, tenants):
    body = api.get("/api/me", HTTP_X_API_KEY=f"{tenants.a[:10]} {tenants.a[10:]}").json()
    assert body["code"] == "api_key_malformed" and "whitespace" in body["message"]


# Sent a key that is expired, revoked, or simply unknown
def test_expired_revoked_and_unknown_keys_get_distinct_codes(api, tenants):
    from django.utils import timezone

    from apps.keys.models import ApiKey

    ApiKey.objects.filter(pk=tenants.a_key.pk).update(expires_at=timezone.now())
    ApiKey.objects.filter(pk=tenants.b_key.pk).update(revoked_at=timezone.now())
    codes = [api.get("/api/me", **auth(k)).json()["code"] for k in (tenants.a, tenants.b, "bnt_aaaaaaaa" + "A" * 43)]
    assert codes == ["api_key_expired", "api_key_revoked", "api_key_invalid"]


# Used a project key on an admin route
def test_project_key_on_admin_route_names_the_key_type(api, tenants):
    r = api.get("/api/admin/keys", **auth(tenants.a))
    assert r.status_code == 403 and r.json()["code"] == "master_key_required"
    assert "you sent a project key" in r.json()["message"]


# Wanted to check "is my key OK?"
def test_key_check_endpoint_reports_key_and_budget(api, tenants):
    body = api.get("/api/me", **auth(tenants.a)).json()
    assert body["key"]["type"] == "project" and body["key"]["scopes"] and body["key"]["expiresAt"]
    assert body["rateLimit"]["remaining"] == body["rateLimit"]["limit"]


# Posted to /api/text-to-image/ (trailing slash)
@pytest.mark.parametrize("method,path", [
    ("post", "/api/text-to-image/"), ("post", "/api/generate/"), ("post", "/api/enhance/"),
    ("get", "/api/me/"), ("get", "/api/admin/keys/"), ("post", "/api/admin/keys/"), ("get", "/api/info/"),
    ("get", "/health/"), ("get", "/api/jobs/00000000-0000-4000-8000-000000000000/"),
    ("delete", "/api/admin/keys/00000000-0000-4000-8000-000000000000/"), ("get", "/api/schema/"),
])
def test_trailing_slash_works_for_every_route_without_redirect(api, tenants, method, path):
    r = getattr(api, method)(path, {}, format="json", **auth(tenants.master))
    assert r.status_code not in (301, 302, 307, 308)
    assert r.json().get("code") != "route_not_found"


# Hit a wrong path or method
def test_wrong_path_and_method_get_json_with_suggestions(api, tenants):
    wrong_path = api.post("/api/text2image", T2I, format="json", **auth(tenants.a))
    assert wrong_path.status_code == 404 and "Did you mean /api/text-to-image?" in wrong_path.json()["message"]
    wrong_method = api.get("/api/text-to-image", **auth(tenants.a))
    assert wrong_method.status_code == 405 and wrong_method.json()["details"]["allowed"] == ["POST", "OPTIONS"]
    assert wrong_method["Allow"] == "POST, OPTIONS"


# Sent a JSON body as form data, or the reverse, or forgot Content-Type
def test_json_endpoint_given_form_data_is_415_naming_both_types(api, tenants):
    r = api.post("/api/text-to-image", T2I, **auth(tenants.a))  # Django's test client sends multipart
    body = r.json()
    assert r.status_code == 415 and body["code"] == "unsupported_media_type"
    assert body["details"]["accepted"] == ["application/json"] and "multipart/form-data" in body["details"]["received"]


def test_multipart_endpoint_given_json_is_415(api, tenants):
    r = post_json(api, "/api/generate", T2I, tenants.a)
    assert r.status_code == 415 and "multipart/form-data" in r.json()["details"]["accepted"]


def test_body_without_content_type_is_415(api, tenants):
    r = api.generic("POST", "/api/text-to-image", '{"prompt": "abc", "filename": "x"}', content_type="",
                    **auth(tenants.a))
    assert r.status_code == 415 and r.json()["details"]["received"] == "nothing"


def test_invalid_json_reports_the_parser_position(api, tenants):
    r = api.generic("POST", "/api/text-to-image", '{"prompt": "abc" "filename": "x"}',
                    content_type="application/json", **auth(tenants.a))
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    assert "line 1 column 18" in r.json()["message"]


# Wrapped the payload in another object, or sent an empty body
def test_wrapped_payload_lists_missing_and_unknown_fields(api, tenants):
    details = post_json(api, "/api/text-to-image", {"body": T2I}, tenants.a).json()["details"]
    assert "Unknown field 'body'" in details["body"][0]
    assert details["prompt"] == ["Prompt is required"] and details["filename"] == ["filename is required."]


def test_empty_body_lists_every_missing_field(api, tenants):
    r = api.generic("POST", "/api/text-to-image", "", content_type="application/json", **auth(tenants.a))
    assert r.status_code == 400 and set(r.json()["details"]) == {"prompt", "filename"}


# Used aspect_ratio instead of aspectRatio, Standard instead of standard
def test_snake_case_field_suggests_the_known_field(api, tenants):
    details = post_json(api, "/api/text-to-image", {**T2I, "aspect_ratio": "16:9"}, tenants.a).json()["details"]
    assert details["aspect_ratio"] == ["Unknown field 'aspect_ratio'. Did you mean 'aspectRatio'?"]


def test_wrong_enum_case_lists_allowed_values(api, tenants):
    body = {**T2I, "enhancementOptions": {"template": "Photorealistic"}}
    message = post_json(api, "/api/text-to-image", body, tenants.a).json()["details"]["enhancementOptions.template"][0]
    assert "'Photorealistic' is not allowed; use one of: photorealistic, illustration" in message


# Sent "true" (string) for a boolean in JSON, or a number where a string is required
def test_string_boolean_in_json_names_expected_and_received_type(api, tenants):
    details = post_json(api, "/api/text-to-image", {**T2I, "autoEnhance": "true"}, tenants.a).json()["details"]
    assert details["autoEnhance"] == ["Expected a boolean (true or false), received string."]


def test_number_for_string_names_expected_and_received_type(api, tenants):
    details = post_json(api, "/api/text-to-image", {**T2I, "prompt": 42}, tenants.a).json()["details"]
    assert details["prompt"] == ["Expected a string, received integer."]


def test_multipart_form_booleans_are_accepted(api, tenants):
    for value in ("true", "false", "1", "0"):
        r = api.post("/api/generate", {**T2I, "autoEnhance": value}, format="multipart", **auth(tenants.a),
                     HTTP_PREFER="respond-async")
        assert r.status_code == 202, r.json()
        assert r.json().get("code") != "validation_failed"


# Sent a huge body or a non-image file as a reference
def test_huge_body_is_413_json(api, tenants, settings):
    settings.MAX_REQUEST_BYTES = 2048
    r = api.generic("POST", "/api/text-to-image", "x" * 4096, content_type="application/json", **auth(tenants.a))
    assert r.status_code == 413 and r.json()["details"] == {"received": 4096, "limit": 2048}


def test_non_image_reference_is_named_with_its_detected_type(api, tenants):
    upload = SimpleUploadedFile("cat.png", b"%PDF-1.7 not a cat", content_type="image/png")
    body = api.post("/api/generate", {**T2I, "files": [upload]}, format="multipart", **auth(tenants.a)).json()
    assert body["code"] == "reference_image_invalid" and body["details"]["file"] == "cat.png"
    assert body["details"]["detectedType"] == "application/pdf"
    assert "PNG, JPEG, WebP" in body["message"]


# Got a 500 with no detail and no way to report it
def test_every_response_carries_a_request_id_that_errors_repeat(api, tenants, caplog):
    caplog.set_level(logging.INFO)
    ok = api.get("/api/info")
    bad = api.get("/api/me", HTTP_X_API_KEY="nope", HTTP_X_REQUEST_ID="trace-me-1")
    assert ok["X-Request-ID"] and bad["X-Request-ID"] == "trace-me-1" == bad.json()["requestId"]


# Upstream model refused the prompt (safety) or returned no image; quota or outage
def test_safety_refusal_and_missing_image_and_outage_are_typed(api, worker, tenants, gemini, settings):
    settings.UPSTREAM_MAX_ATTEMPTS = 1
    gemini.enqueue(Reply.blocked("IMAGE_SAFETY"), Reply.text_only("No."), Reply.error(429, retry_after=30))
    body = {**T2I, "autoEnhance": False}
    blocked, no_image, quota = (post_json(api, "/api/text-to-image", body, tenants.a) for _ in range(3))
    assert (blocked.status_code, blocked.json()["code"], blocked.json()["details"]["reason"]) == \
        (422, "content_blocked", "IMAGE_SAFETY")
    assert (no_image.status_code, no_image.json()["code"], no_image.json()["details"]["modelText"]) == \
        (422, "no_image_returned", "No.")
    assert (quota.status_code, quota.json()["code"], quota["Retry-After"]) == (503, "upstream_unavailable", "30")


# Hit the rate limit and did not know when to retry
def test_rate_limited_responses_carry_headers_and_429_has_retry_after(api, worker, tenants, settings):
    settings.BANATIE_RATE_LIMIT = "1/h"
    first = post_json(api, "/api/enhance", {"prompt": "x"}, tenants.a, HTTP_PREFER="respond-async")
    second = post_json(api, "/api/enhance", {"prompt": "x"}, tenants.a, HTTP_PREFER="respond-async")
    for r in (first, second):
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(r.headers)
    assert second.status_code == 429 and int(second["Retry-After"]) >= 1


# Wanted to confirm connectivity before debugging auth
def test_health_reports_database_queue_and_worker_without_a_key(api, worker):
    body = api.get("/health").json()
    assert body["status"] == "healthy"
    assert {"database", "redis", "worker", "provider"} <= set(body["checks"])
    assert body["checks"]["worker"]["status"] == "up"


# Did not know which API version or field casing the server speaks
def test_openapi_schema_and_interactive_docs_are_served(api):
    schema = api.get("/api/schema/").json()
    assert schema["info"]["version"] == "1.0.0"
    props = schema["components"]["schemas"]["TextToImageInputRequest"]["properties"]
    assert {"prompt", "filename", "aspectRatio", "autoEnhance", "enhancementOptions", "meta"} <= set(props)
    assert api.get("/api/docs/").status_code == 200


def test_image_of_the_right_type_is_accepted_whatever_its_name(api, tenants):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "WEBP")
    upload = SimpleUploadedFile("photo.jpg", buf.getvalue(), content_type="image/jpeg")
    r = api.post("/api/generate", {**T2I, "files": [upload]}, format="multipart", **auth(tenants.a),
                 HTTP_PREFER="respond-async")
    assert r.status_code == 202, r.json()
