"""Infrastructure routes: /health, /api/info, /metrics, and the JSON answer for unknown paths."""
from __future__ import annotations

import hmac
import ipaddress
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from banatie.errors import RouteNotFound, closest
from banatie.health import active_provider_name, check_database, check_redis, check_worker, registered_checks
from banatie.metrics import scrape_collectors
from banatie.timefmt import iso

STARTED_AT = time.monotonic()

NAME = "Banatie - Nano Banana Image Generation API"
DESCRIPTION = "REST API service for AI-powered image generation using Gemini Flash Image model"
ENDPOINTS = {
    "GET /health": "Health check",
    "GET /api/info": "API information",
    "POST /api/bootstrap/initial-key": "Create the first master key (works once)",
    "POST /api/admin/keys": "Create an API key (master key)",
    "GET /api/admin/keys": "List API keys (master key)",
    "DELETE /api/admin/keys/{keyId}": "Revoke an API key (master key)",
    "GET /api/me": "Describe the calling key and its rate-limit state",
    "POST /api/generate": "Generate images from text prompt with optional reference images",
    "POST /api/text-to-image": "Generate images from text prompt only (JSON)",
    "POST /api/enhance": "Enhance and optimize prompts for better image generation",
    "GET /api/jobs": "List your jobs, newest first (filters, keyset pagination)",
    "GET /api/jobs/{jobId}": "Status and result of a job",
    "POST /api/jobs/{jobId}/cancel": "Cancel a queued or running job",
    "GET /api/jobs/{jobId}/events": "Live status of a job (server-sent events)",
    "POST /api/webhooks": "Register a webhook endpoint for job events (its signing secret shown once)",
    "GET /api/webhooks": "List your webhook endpoints",
    "DELETE /api/webhooks/{webhookId}": "Delete a webhook endpoint and its delivery log",
    "POST /api/webhooks/{webhookId}/rotate-secret": "Replace a webhook's signing secret (both sign for 24 h)",
    "GET /api/webhooks/{webhookId}/deliveries": "A webhook's delivery log, newest first",
    "POST /api/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver": "Send a delivery again",
    "GET /api/images/{path}": "Serve a generated image",
    "GET /api/schema/": "OpenAPI 3 schema (JSON)",
    "GET /api/docs/": "Interactive API docs (Swagger UI)",
}


class PublicView(APIView):
    authentication_classes: list = []
    permission_classes: list = []


_CHECKS = serializers.DictField(child=serializers.DictField(), help_text="database, redis, worker, provider")
HEALTH = inline_serializer("Health", {
    "status": serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"]),
    "timestamp": serializers.DateTimeField(), "uptime": serializers.FloatField(),
    "environment": serializers.CharField(), "version": serializers.CharField(),
    "provider": serializers.ChoiceField(choices=["gemini", "offline"]), "checks": _CHECKS,
})
INFO = inline_serializer("Info", {
    "name": serializers.CharField(), "version": serializers.CharField(), "description": serializers.CharField(),
    "provider": serializers.CharField(), "endpoints": serializers.DictField(child=serializers.CharField()),
    "limits": serializers.DictField(), "schema": serializers.CharField(), "docs": serializers.CharField(),
})


class HealthView(PublicView):
    @extend_schema(operation_id="health", tags=["service"], auth=[], summary="Health of the service and its parts",
                   responses={200: HEALTH, 503: HEALTH})
    def get(self, request: Request) -> Response:
        checks = {"database": check_database(), "redis": check_redis()}
        checks["worker"] = check_worker() if checks["redis"]["status"] == "up" else {"status": "unknown"}
        checks["provider"] = {"status": "up", "name": active_provider_name()}
        checks.update(registered_checks())  # e.g. the provider's own check (workers.providers)
        if checks["database"]["status"] != "up" or checks["redis"]["status"] != "up":
            overall, code = "unhealthy", 503
        elif any(check["status"] != "up" for name, check in checks.items() if name not in ("database", "redis")):
            # Requests are accepted (they wait in the queue, or fail with a clear upstream error).
            overall, code = "degraded", 200
        else:
            overall, code = "healthy", 200
        return Response(
            {
                "status": overall,
                "timestamp": iso(timezone.now()),
                "uptime": round(time.monotonic() - STARTED_AT, 2),
                "environment": settings.ENVIRONMENT,
                "version": settings.VERSION,
                "provider": active_provider_name(),
                "checks": checks,
            },
            status=code,
        )


class InfoView(PublicView):
    @extend_schema(operation_id="info", tags=["service"], auth=[], summary="API information and limits",
                   responses={200: INFO})
    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": NAME,
                "version": settings.VERSION,
                "description": DESCRIPTION,
                "provider": active_provider_name(),
                "endpoints": ENDPOINTS,
                "limits": {
                    "maxFileSize": f"{settings.MAX_UPLOAD_FILE_BYTES // (1024 * 1024)}MB",
                    "maxFiles": settings.MAX_UPLOAD_FILES,
                    "supportedFormats": ["PNG", "JPEG", "JPG", "WebP"],
                    "rateLimit": settings.BANATIE_RATE_LIMIT,
                },
                "schema": "/api/schema/",
                "docs": "/api/docs/",
            }
        )


def _route_paths() -> list[str]:
    return sorted({endpoint.split(" ", 1)[1] for endpoint in ENDPOINTS})


class NotFoundView(PublicView):
    """Every unmatched path, any method: a JSON 404, with the closest route for /api/..."""

    def _not_found(self, request: Request, *args: object, **kwargs: object) -> Response:
        path = "/" + request.path.strip("/")
        suggestion = closest(path, _route_paths()) if path.startswith("/api") else None
        raise RouteNotFound(
            f"No route matches {request.method} {request.path}."
            + (f" Did you mean {suggestion}?" if suggestion else ""),
            hint="GET /api/info lists every route.",
            details={"suggestion": suggestion} if suggestion else None,
        )

    get = post = put = patch = delete = head = options = _not_found


def error_catalogue(request: HttpRequest) -> HttpResponse:
    """docs/errors.md as the server has it, so the OpenAPI description (and Swagger UI) can
    link to the catalogue of error codes instead of naming a file the reader cannot open."""
    return HttpResponse((settings.BASE_DIR / "docs" / "errors.md").read_bytes(),
                        content_type="text/markdown; charset=utf-8")


_not_found = NotFoundView.as_view()


@csrf_exempt  # a refused POST must get the unknown path's 404, not CSRF's 403
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format: every process's families (PROMETHEUS_MULTIPROC_DIR) plus the
    gauges computed now (banatie.metrics.register_collector). Open to loopback callers (the
    host's own Prometheus or agent) that came through no proxy; anyone else needs
    ``Authorization: Bearer $METRICS_TOKEN``, and without a token configured the route does
    not exist for them: the unknown path's 404, so a scan learns nothing."""
    if request.method not in ("GET", "HEAD") or not _metrics_allowed(request):
        return _not_found(request)
    registry = CollectorRegistry()  # no auto_describe: each collector runs once per scrape
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(REGISTRY)  # this process only (tests, manage.py shell)
    for collector in scrape_collectors():
        registry.register(collector)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _metrics_allowed(request: HttpRequest) -> bool:
    # REMOTE_ADDR is the socket's peer: a proxy on this host makes every caller look local,
    # so a request carrying forwarding headers is not taken as local whatever its peer (and
    # a proxy that sets none must keep /metrics off: docs/operations.md).
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        peer = None
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
        peer = peer.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    forwarded = "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META
    if peer is not None and peer.is_loopback and not forwarded:
        return True
    token = settings.METRICS_TOKEN
    if not token:
        return False
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
