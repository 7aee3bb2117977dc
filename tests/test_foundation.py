"""Cross-cutting HTTP behaviour: health, info, request ids, JSON errors, slashes, CORS,
settings validation, Celery invariants."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.urls import re_path
from rest_framework.views import APIView

from banatie import urls as real_urls

pytestmark = pytest.mark.django_db


def test_health_reports_checks_and_provider(api):
    r = api.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] in ("healthy", "degraded")
    assert body["version"] == "1.0.0"
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["redis"]["status"] == "up"
    assert body["checks"]["provider"]["name"] == "offline"
    assert body["timestamp"].endswith("Z") and body["uptime"] >= 0


def test_health_is_unhealthy_when_redis_is_unreachable(api, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    r = api.get("/health")
    assert r.status_code == 503
    assert r.json()["status"] == "unhealthy"
    assert r.json()["checks"]["redis"]["status"] == "down"


def test_health_is_unhealthy_when_database_is_unreachable(api, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    r = api.get("/health")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == {"status": "down", "error": "OperationalError"}


def test_info_lists_limits_and_endpoints(api):
    r = api.get("/api/info")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Banatie - Nano Banana Image Generation API"
    assert body["limits"]["maxFileSize"] == "5MB"
    assert body["limits"]["maxFiles"] == 3
    assert {"PNG", "JPEG", "WebP"} <= set(body["limits"]["supportedFormats"])
    assert "POST /api/text-to-image" in body["endpoints"]


def test_request_id_is_kept_when_sane(api):
    r = api.get("/api/info", HTTP_X_REQUEST_ID="client-abc.123")
    assert r["X-Request-ID"] == "client-abc.123"


@pytest.mark.parametrize("bad", ["has space", "x" * 200, "semi;colon", "<script>"])
def test_request_id_is_replaced_when_not_sane(api, bad):
    r = api.get("/api/info", HTTP_X_REQUEST_ID=bad)
    assert r["X-Request-ID"] != bad and len(r["X-Request-ID"]) == 32


def test_request_id_is_generated_and_repeated_in_error_body(api):
    r = api.get("/api/nope")
    assert r["X-Request-ID"]
    assert r.json()["requestId"] == r["X-Request-ID"]


def test_unknown_path_is_json_404_with_suggestion(api):
    r = api.post("/api/text-to-imag", {}, format="json")
    assert r.status_code == 404
    assert r["Content-Type"] == "application/json"
    body = r.json()
    assert body["success"] is False and body["code"] == "route_not_found"
    assert "/api/text-to-image" in body["message"]


def test_unknown_non_api_path_is_json_404(api):
    r = api.get("/favicon.ico")
    assert r.status_code == 404 and r.json()["code"] == "route_not_found"


def test_wrong_method_is_json_405_with_allow(api):
    r = api.delete("/api/info")
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    assert "GET" in r["Allow"] and "GET" in r.json()["message"]


class _Boom(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("secret internals")


boom_urls = [re_path(r"^boom/?$", _Boom.as_view()), *real_urls.urlpatterns]


@override_settings(ROOT_URLCONF=__name__ + "_boom", DEBUG=False)
def test_unhandled_error_is_json_500_without_traceback(api, caplog):
    import types

    sys.modules[__name__ + "_boom"] = types.SimpleNamespace(urlpatterns=boom_urls, handler500=real_urls.handler500)
    r = api.get("/boom", HTTP_X_REQUEST_ID="req-500")
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "internal_error" and body["requestId"] == "req-500"
    assert "secret internals" not in r.content.decode() and "Traceback" not in r.content.decode()
    assert any("req-500" in getattr(rec, "request_id", "") for rec in caplog.records)
    assert "secret internals" in caplog.text  # the traceback goes to the log instead


@pytest.mark.parametrize("path", ["/api/info", "/api/info/", "/health", "/health/"])
def test_trailing_slash_is_optional_for_get(api, path):
    assert api.get(path).status_code in (200, 503)


@pytest.mark.parametrize("path", ["/api/bootstrap/initial-key", "/api/bootstrap/initial-key/"])
def test_trailing_slash_is_optional_for_post_without_redirect(api, path):
    r = api.post(path)
    assert r.status_code == 201


def test_cors_allows_documented_origin(api):
    r = api.get("/api/info", HTTP_ORIGIN="http://localhost:3001")
    assert r["Access-Control-Allow-Origin"] == "http://localhost:3001"


def test_cors_refuses_other_origin(api):
    r = api.get("/api/info", HTTP_ORIGIN="http://evil.example")
    assert "Access-Control-Allow-Origin" not in r


def test_cors_preflight_allows_api_key_header(api):
    r = api.options(
        "/api/text-to-image", HTTP_ORIGIN="http://localhost:3002",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST", HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key,content-type",
    )
    assert r.status_code == 200
    assert "x-api-key" in r["Access-Control-Allow-Headers"]


DJANGO_START = "import django; django.setup()"
# PORT (and HOST) are read where they are used: the web server's config.
WEB_START = "import banatie.gunicorn_conf"


@pytest.mark.parametrize(
    "name,value,start",
    [("PORT", "abc", WEB_START), ("SYNC_WAIT_SECONDS", "-1", DJANGO_START), ("SYNC_WAIT_SECONDS", "-1", WEB_START),
     ("BANATIE_RATE_LIMIT", "lots", DJANGO_START), ("DEBUG", "maybe", DJANGO_START),
     ("GEMINI_BASE_URL", "localhost:9", DJANGO_START), ("REDIS_URL", "http://x", DJANGO_START)],
)
def test_bad_setting_stops_startup_naming_the_variable(name, value, start):
    env = {**os.environ, name: value, "SECRET_KEY": "x"}
    proc = subprocess.run([sys.executable, "-c", start], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"Environment variable {name}=" in proc.stderr


def test_missing_secret_key_stops_startup_when_debug_is_off():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | {"DEBUG": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and "SECRET_KEY" in proc.stderr


def test_celery_is_configured_for_safe_redelivery():
    from django.conf import settings

    from banatie.celery import app

    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_pool == "gevent"
    assert conf.task_soft_time_limit < conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]
    # What bounds a job is its own deadline (under any pool; the tests' in-process worker
    # uses threads, which ignore Celery's limits), inside the broker's redelivery timeout, and a lease its worker's heartbeat
    # renews (so the lease is short: a dead worker's jobs come back quickly).
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert settings.JOB_SOFT_TIME_LIMIT < settings.JOB_HARD_TIME_LIMIT < visibility
    assert settings.JOB_HEARTBEAT_SECONDS * 2 < settings.JOB_LEASE_SECONDS < visibility
    assert settings.CELERY_RESULT_BACKEND is None


# --- body and transport mistakes ---------------------------------------------------------

def test_deeply_nested_json_is_400_not_500(api, tenants):
    r = api.generic("POST", "/api/enhance", "[" * 100000, content_type="application/json",
                    HTTP_X_API_KEY=tenants.a)
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"


def test_invalid_json_names_the_position(api, tenants):
    r = api.generic("POST", "/api/enhance", '{"prompt": "x",}', content_type="application/json",
                    HTTP_X_API_KEY=tenants.a)
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    assert "line 1 column" in r.json()["message"]


def test_multipart_without_boundary_is_invalid_multipart(api, tenants):
    r = api.generic("POST", "/api/generate", "garbage", content_type="multipart/form-data",
                    HTTP_X_API_KEY=tenants.a)
    assert r.status_code == 400 and r.json()["code"] == "invalid_multipart"
    assert "-F" in r.json()["hint"]


def test_chunked_body_is_411_not_silently_empty(api, tenants):
    r = api.generic("POST", "/api/enhance", "", content_type="application/json",
                    HTTP_X_API_KEY=tenants.a, HTTP_TRANSFER_ENCODING="chunked")
    assert r.status_code == 411 and r.json()["code"] == "length_required"


def test_oversized_body_413_is_readable_cross_origin(api, settings):
    settings.MAX_REQUEST_BYTES = 1024
    r = api.generic("POST", "/api/enhance", "x" * 4096, content_type="application/json",
                    HTTP_ORIGIN="http://localhost:3001")
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert r["Access-Control-Allow-Origin"] == "http://localhost:3001"


def test_too_many_multipart_files_is_400_not_500(api, tenants, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 10
    files = [SimpleUploadedFile(f"f{i}.png", b"x") for i in range(11)]
    r = api.post("/api/generate", {"prompt": "p", "filename": "f", "files": files}, format="multipart",
                 HTTP_X_API_KEY=tenants.a)
    assert r.status_code == 400 and r.json()["field"] == "files"


def test_unknown_field_and_other_errors_are_reported_together(api, tenants):
    r = api.post("/api/text-to-image", {"aspect_ratio": "16:9", "autoEnhance": "true", "filename": "cat.png"},
                 format="json", HTTP_X_API_KEY=tenants.a)
    details = r.json()["details"]
    assert {"aspect_ratio", "autoEnhance", "filename", "prompt"} <= set(details)
    assert "received string" in details["autoEnhance"][0]


def test_wrapped_payload_lists_each_missing_field(api, tenants):
    r = api.post("/api/text-to-image", {"body": {"prompt": "abc", "filename": "x"}}, format="json",
                 HTTP_X_API_KEY=tenants.a)
    details = r.json()["details"]
    assert "Unknown field 'body'" in details["body"][0]
    assert details["prompt"] == ["Prompt is required"] and "filename" in details


def test_number_where_string_expected_names_both_types(api, tenants):
    r = api.post("/api/text-to-image", {"prompt": 12345, "filename": 12345}, format="json", HTTP_X_API_KEY=tenants.a)
    details = r.json()["details"]
    assert details["prompt"] == ["Expected a string, received integer."]
    assert details["filename"] == ["Expected a string, received integer."]


def test_openapi_schema_and_swagger_ui_are_served_locally(api):
    schema = api.get("/api/schema/")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")
    ui = api.get("/api/docs/")
    assert ui.status_code == 200
    html = ui.content.decode()
    assert "cdn.jsdelivr" not in html and "unpkg" not in html
    static = [part.split('"')[0] for part in html.split('src="')[1:]]
    assert static and all(api.get(src).status_code == 200 for src in static if src.startswith("/"))


def test_a_host_not_in_allowed_hosts_is_named_with_the_setting(api, db):
    r = api.get("/api/info", HTTP_HOST="evil.example:3000")
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "host_not_allowed" and body["error"] == "Bad request"
    assert "'evil.example:3000'" in body["message"] and "ALLOWED_HOSTS" in body["message"]
    assert body["details"] == {"host": "evil.example:3000"} and "ALLOWED_HOSTS" in body["hint"]


@pytest.mark.parametrize("url,tls", [("redis://127.0.0.1:1/0", False), ("rediss://127.0.0.1:1/0", True)])
def test_the_broker_uses_our_redis_transport_and_keeps_tls_for_rediss(url, tls):
    probe = ("import django; django.setup(); from banatie.celery import app; c = app.connection_for_write(); "
             "print(type(c.transport).__module__, bool(c.ssl))")
    env = {**os.environ, "REDIS_URL": url, "SECRET_KEY": "x"}
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["banatie.redis_transport", str(tls)]


@pytest.mark.slow
@pytest.mark.parametrize("trusted,scheme", [("", "http"), ("127.0.0.1", "https")])
def test_x_forwarded_proto_is_believed_only_from_trusted_proxies(stack_factory, tenants, trusted, scheme):
    import requests

    stack = stack_factory(TRUSTED_PROXIES=trusted)
    r = requests.post(f"{stack.url}/api/text-to-image", timeout=30,
                      json={"prompt": "a lighthouse", "filename": "light", "autoEnhance": False},
                      headers={"X-API-Key": tenants.a, "X-Forwarded-Proto": "https"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["url"].startswith(f"{scheme}://127.0.0.1:{stack.port}/api/images/")


def test_tests_store_images_in_their_own_directory_not_var_media(settings, tmp_path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    assert not Path(settings.MEDIA_ROOT).resolve().is_relative_to(Path(settings.VAR_DIR).resolve())
    key = default_storage.save("probe/x.png", ContentFile(b"x"))
    assert (tmp_path / "media" / key).is_file()


def test_every_request_gets_one_access_line_with_its_id_errors_included(api, tenants, caplog):
    import logging

    from banatie.middleware import RequestIdLogFilter

    caplog.set_level(logging.INFO, logger="banatie.access")
    caplog.handler.addFilter(RequestIdLogFilter())
    api.get("/api/me", HTTP_X_REQUEST_ID="trace-401")
    api.get("/api/jobs/nope", HTTP_X_API_KEY=tenants.a, HTTP_X_REQUEST_ID="trace-404")
    lines = {r.request_id: r.getMessage() for r in caplog.records if r.name == "banatie.access"}
    assert lines["trace-401"].startswith("GET /api/me 401 ") and lines["trace-401"].endswith("route=me")
    # The route's pattern, not the raw path: lines of one endpoint group together.
    assert lines["trace-404"].startswith("GET /api/jobs/{jobId} 404 ") and "ms route=job" in lines["trace-404"]


# --- /health asks the provider --------------------------------------------------------------

@pytest.fixture
def fresh_provider_health(settings):  # type: ignore[no-untyped-def]
    from workers import providers

    providers._health_cache.clear()
    settings.HEALTH_PROVIDER_TTL_SECONDS = 60
    yield
    providers._health_cache.clear()


def test_health_reports_gemini_up_with_a_good_key(api, worker, gemini, fresh_provider_health):
    body = api.get("/health").json()
    assert body["status"] == "healthy" and body["checks"]["provider"]["status"] == "up"
    assert body["checks"]["provider"]["name"] == "gemini" and gemini.model_lookups == 1


@pytest.mark.parametrize("fault,says", [
    ("wrong-key", "GEMINI_API_KEY"), ("unknown-model", "GEMINI_IMAGE_MODEL"), ("unreachable", "GEMINI_BASE_URL"),
])
def test_health_is_degraded_naming_what_is_wrong_with_gemini(api, worker, gemini, settings, fresh_provider_health,
                                                             fault, says):
    from banatie.runner import free_port

    if fault == "wrong-key":
        gemini.valid_api_keys = {"the-right-key"}
    elif fault == "unknown-model":
        gemini.unknown_models = {settings.GEMINI_IMAGE_MODEL}
    else:
        settings.GEMINI_BASE_URL = f"http://127.0.0.1:{free_port()}"
    try:
        r = api.get("/health")
    finally:
        gemini.valid_api_keys = None
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "degraded" and body["checks"]["provider"]["status"] == "down"
    assert says in body["checks"]["provider"]["reason"]
    assert settings.GEMINI_API_KEY not in r.content.decode()


def test_health_asks_gemini_at_most_once_per_ttl(api, worker, gemini, settings, fresh_provider_health):
    for _ in range(3):
        assert api.get("/health").json()["checks"]["provider"]["status"] == "up"
    assert gemini.model_lookups == 1
    from workers import providers

    settings.HEALTH_PROVIDER_TTL_SECONDS = 0  # applies to answers stored from now on
    providers._health_cache.clear()
    api.get("/health")
    api.get("/health")
    assert gemini.model_lookups == 3
