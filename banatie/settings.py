"""Banatie settings: every value comes from the environment (see .env.example).

A bad value raises ImproperlyConfigured naming the variable, so start-up stops loudly.
"""
from __future__ import annotations

import ssl
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from banatie.env import (
    env_bool, env_choice, env_float, env_int, env_list, env_prices, env_rate, env_seconds_list, env_str, env_url, shutdown_grace_seconds, var_dir,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = var_dir()
VERSION = "1.0.0"

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Environment variable SECRET_KEY is required when DEBUG is off "
            "(`make run` creates one under var/ for local use)."
        )
    SECRET_KEY = "insecure-debug-only-key"
ENVIRONMENT = env_str("ENVIRONMENT", "development" if DEBUG else "production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# Addresses of reverse proxies whose X-Forwarded-Proto/-For the web server believes
# (gunicorn's forwarded_allow_ips). Empty: believe no client, even one on loopback.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "apps.keys",
    "apps.jobs",
    "apps.generation",
    "apps.prompts",
    "apps.webhooks",
    "apps.usage",
    "apps.openai_compat",
]

MIDDLEWARE = [
    # django-prometheus' HTTP families: first and last, so they time the whole stack.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "banatie.middleware.RequestIdMiddleware",
    # Outside everything that may answer an error (the body guard, the views, Django's 404):
    # on /v1/* it re-shapes our error body into OpenAI's.
    "apps.openai_compat.middleware.OpenAIErrorShapeMiddleware",
    # Before the body guard, so a browser can read even a 413.
    "corsheaders.middleware.CorsMiddleware",
    "banatie.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves Swagger UI's files and the admin's from the app itself: nothing from the internet.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "banatie.urls"
WSGI_APPLICATION = "banatie.wsgi.application"
# Routes accept an optional trailing slash themselves; never redirect (a POST would be lost).
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        _db = dj_database_url.parse(DATABASE_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(f"Environment variable DATABASE_URL is invalid: {exc}") from None
else:
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "banatie.sqlite3")}
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend plus a per-process pool of open connections (banatie/sqlite_pool).
    _db["ENGINE"] = "banatie.sqlite_pool"
    # WAL + IMMEDIATE: many web requests and worker tasks write jobs concurrently.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        # A small page cache: every pooled connection keeps its own.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-512;",
    }
    # Closed at the end of each request and task: that hands the connection to the pool.
    _db["CONN_MAX_AGE"] = 0
    # A file, not :memory:, so the test database is shared by every thread and process.
    _db.setdefault("TEST", {"NAME": str(VAR_DIR / "test.sqlite3")})
elif _db["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with django-prometheus' query counters and timings (banatie/postgresql).
    _db["ENGINE"] = "banatie.postgresql"
    # A bounded pool per process: 100+ web threads must not open 100+ connections.
    _db["CONN_MAX_AGE"] = 0
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_SIZE", 20, minimum=1, maximum=500),
        "timeout": 10,
    }
DATABASES = {"default": _db}
# Idle SQLite connections kept open per process (banatie/sqlite_pool).
SQLITE_POOL_SIZE = env_int("SQLITE_POOL_SIZE", 32, minimum=0, maximum=1000)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis, cache, rate limits -------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix"))
REDIS_TIMEOUT_SECONDS = env_float("REDIS_TIMEOUT_SECONDS", 2.0, minimum=0.1)
CACHES = {
    "default": {
        # Django's RedisCache with django-prometheus' get/hit/miss counters.
        "BACKEND": "django_prometheus.cache.backends.redis.NativeRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "banatie",
        "OPTIONS": {
            # Bounded: thousands of greenlets share REDIS_POOL_SIZE connections. Under a
            # burst a busy process may take a while to hand one back: waiting for it is
            # not Redis being down, so it gets its own, longer timeout.
            "pool_class": "redis.BlockingConnectionPool",
            "max_connections": env_int("REDIS_POOL_SIZE", 200, minimum=1, maximum=10000),
            "timeout": env_float("REDIS_POOL_TIMEOUT_SECONDS", 15.0, minimum=0.1, maximum=300.0),
            "socket_timeout": REDIS_TIMEOUT_SECONDS,
            "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        },
    }
}
BANATIE_RATE_LIMIT = env_rate("BANATIE_RATE_LIMIT", "100/h")
# How long a process trusts its copy of an authenticated key (apps/keys/cache.py): a
# revocation reaches every process within it, hence at most 1 s. 0 = a SELECT per request.
KEY_CACHE_SECONDS = env_float("KEY_CACHE_SECONDS", 1.0, minimum=0.0, maximum=1.0)

# --- server model (docs/running.md) -------------------------------------------------
# gunicorn gevent workers and Celery's gevent pool: waiting costs a greenlet, not a thread.
# Open connections per web process (gunicorn worker_connections).
WEB_CONNECTIONS = env_int("WEB_CONNECTIONS", 2000, minimum=1, maximum=100000)
# Jobs one worker process runs at once (the Procfile's --concurrency reads the same name).
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 1000, minimum=1, maximum=100000)

# --- jobs ----------------------------------------------------------------------------
SYNC_WAIT_SECONDS = env_float("SYNC_WAIT_SECONDS", 60.0, minimum=0.0, maximum=3600.0)
# /v1/images/* cannot answer 202 (the OpenAI SDK does not poll): they wait this long, then 504 job_timeout.
OPENAI_COMPAT_WAIT_SECONDS = env_float("OPENAI_COMPAT_WAIT_SECONDS", 300.0, minimum=1.0, maximum=3600.0)
# The job's own deadline: no upstream call starts after it, and each call's timeout is cut
# to the time left (apps/jobs/deadline.py); Celery's limits below are the backstop.
JOB_SOFT_TIME_LIMIT = env_int("JOB_SOFT_TIME_LIMIT", 120, minimum=1, maximum=3600)
JOB_HARD_TIME_LIMIT = env_int("JOB_HARD_TIME_LIMIT", JOB_SOFT_TIME_LIMIT + 30, minimum=JOB_SOFT_TIME_LIMIT + 1,
                              maximum=7200)
# A running job's claim, renewed by its worker's heartbeat every JOB_HEARTBEAT_SECONDS;
# when a worker dies its leases run out and the sweep hands its jobs to another worker.
JOB_HEARTBEAT_SECONDS = env_float("JOB_HEARTBEAT_SECONDS", 5.0, minimum=0.1, maximum=600.0)
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 20, minimum=int(JOB_HEARTBEAT_SECONDS * 2) + 1, maximum=86400)
# Deliveries of one job before it fails with too_many_attempts.
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3, minimum=1, maximum=20)
# The sweep: every SWEEP_INTERVAL_SECONDS, re-publish jobs queued for longer than
# SWEEP_QUEUED_AFTER_SECONDS (their message was lost) and recover expired leases.
SWEEP_INTERVAL_SECONDS = env_float("SWEEP_INTERVAL_SECONDS", 10.0, minimum=1.0)
SWEEP_QUEUED_AFTER_SECONDS = env_float("SWEEP_QUEUED_AFTER_SECONDS", 60.0, minimum=1.0)
# After SIGTERM every process gets this long to finish what it holds (gunicorn's
# graceful_timeout for waiting sync requests; `make run` kills what is left after it).
SHUTDOWN_GRACE_SECONDS = shutdown_grace_seconds()
# On SIGTERM a worker finishes what it can within this grace, then hands the rest back to
# the queue at once: inside SHUTDOWN_GRACE_SECONDS, after which it would be killed.
WORKER_SHUTDOWN_GRACE_SECONDS = env_float("WORKER_SHUTDOWN_GRACE_SECONDS", SHUTDOWN_GRACE_SECONDS * 2 / 3,
                                          minimum=0.0, maximum=3600.0)
if WORKER_SHUTDOWN_GRACE_SECONDS >= SHUTDOWN_GRACE_SECONDS:
    raise ImproperlyConfigured(
        f"Environment variable WORKER_SHUTDOWN_GRACE_SECONDS={WORKER_SHUTDOWN_GRACE_SECONDS:g} is invalid: expected "
        f"less than SHUTDOWN_GRACE_SECONDS ({SHUTDOWN_GRACE_SECONDS}), or the worker is killed before it hands "
        "its jobs back."
    )
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24, minimum=1, maximum=24 * 30)
# Retention (apps/jobs/retention.py), run by beat every RETENTION_INTERVAL_SECONDS: finished
# jobs are deleted JOB_RETENTION_DAYS after they finished; their stored images only when
# IMAGE_RETENTION_DAYS is set (unset or empty: images are kept forever).
JOB_RETENTION_DAYS = env_int("JOB_RETENTION_DAYS", 30, minimum=1, maximum=36500)
# The 0 default is never validated (env_int returns defaults as given): it stands for unset.
IMAGE_RETENTION_DAYS = env_int("IMAGE_RETENTION_DAYS", 0, minimum=1, maximum=36500) or None
RETENTION_INTERVAL_SECONDS = env_float("RETENTION_INTERVAL_SECONDS", 3600.0, minimum=1.0)

# GET /api/jobs/{id}/events: a comment line after this many seconds of silence (proxies and
# load balancers drop idle connections; it is also how a gone client is noticed), and the
# longest one stream lasts (the client reconnects with Last-Event-ID and misses nothing).
SSE_KEEPALIVE_SECONDS = env_float("SSE_KEEPALIVE_SECONDS", 15.0, minimum=0.1, maximum=3600.0)
SSE_MAX_SECONDS = env_float("SSE_MAX_SECONDS", 3600.0, minimum=1.0, maximum=86400.0)

# Where clients reach this server: the host of absolute URLs rendered outside a request
# (image URLs in webhook deliveries). Default: `make run`'s address.
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://localhost:3000").rstrip("/")

# --- webhooks (docs/webhooks.md) -------------------------------------------------------
# Off: deliveries go only to https URLs whose host resolves to public addresses (checked at
# registration and at every attempt). On (local development, tests): http and any address.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Seconds to wait before each attempt (the first included): Standard Webhooks' schedule,
# immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; each wait ±10 % jitter.
WEBHOOK_RETRY_SCHEDULE = env_seconds_list("WEBHOOK_RETRY_SCHEDULE", "0,5,300,1800,7200,18000,36000,50400,72000,86400",
                                          maximum=7 * 86400)
# One attempt, connection and answer together.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.5, maximum=120.0)
# How often beat publishes due retries and what was recorded but never sent (the outbox).
WEBHOOK_SWEEP_SECONDS = env_float("WEBHOOK_SWEEP_SECONDS", 5.0, minimum=0.5, maximum=3600.0)

# --- celery --------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport with a fix for broker restarts (see the module's docstring).
CELERY_BROKER_TRANSPORT = "banatie.redis_transport:Transport"
if REDIS_URL.startswith("rediss://"):
    # Naming the transport skips kombu's own rediss:// handling; verify the server's
    # certificate (kombu's fallback would not).
    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
CELERY_RESULT_BACKEND = None  # results live in the Job row; nothing rides the backend
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_POOL = "gevent"
CELERY_TASK_SOFT_TIME_LIMIT = JOB_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = JOB_HARD_TIME_LIMIT
# Redelivery of an unacked task happens after this; it must exceed the hard limit or a
# slow-but-alive job would be handed to a second worker.
BROKER_VISIBILITY_TIMEOUT = env_int(
    "BROKER_VISIBILITY_TIMEOUT", JOB_HARD_TIME_LIMIT * 2 + 60, minimum=max(JOB_LEASE_SECONDS, JOB_HARD_TIME_LIMIT) + 1,
    maximum=86400
)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
    "socket_timeout": REDIS_TIMEOUT_SECONDS,
    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
}
# Publishing must fail fast when the broker is down, not hang the request.
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT_SECONDS
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    # apps.jobs.task_names.JOB_SWEEP (settings import no app; a test keeps the two equal).
    "sweep-jobs": {"task": "jobs.job_sweep", "schedule": SWEEP_INTERVAL_SECONDS, "options": {"expires": SWEEP_INTERVAL_SECONDS}},
    # apps.jobs.task_names.JOBS_RETENTION.
    "jobs-retention": {"task": "jobs.jobs_retention", "schedule": RETENTION_INTERVAL_SECONDS,
                       "options": {"expires": RETENTION_INTERVAL_SECONDS}},
    # apps.webhooks.task_names.WEBHOOK_SWEEP: due retries and the outbox (what was never sent).
    "sweep-webhooks": {"task": "webhooks.webhook_sweep", "schedule": WEBHOOK_SWEEP_SECONDS,
                       "options": {"expires": WEBHOOK_SWEEP_SECONDS}},
}
# A running job keeps going if the broker connection drops: its outcome goes to the
# database, and a duplicate delivery later finds the job claimed or finished.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

# --- gemini --------------------------------------------------------------------------
GEMINI_API_KEY = env_str("GEMINI_API_KEY")
GEMINI_BASE_URL = env_url("GEMINI_BASE_URL")
# v1beta: where Google documents image generation (imageConfig); the SDK's own default is v1.
GEMINI_API_VERSION = env_choice("GEMINI_API_VERSION", "v1beta", ("v1beta", "v1", "v1alpha"))
# The image models a request may choose (`model`); the first is the default. GEMINI_IMAGE_MODEL
# names the default explicitly; set alone to a model the default list lacks, it is put first
# (so a deployment that only set GEMINI_IMAGE_MODEL keeps working), but both set and
# disagreeing is a configuration error.
_DEFAULT_IMAGE_MODELS = "gemini-2.5-flash-image,gemini-3-pro-image-preview,gemini-3.1-flash-image-preview"
GEMINI_IMAGE_MODEL = env_str("GEMINI_IMAGE_MODEL")
GEMINI_IMAGE_MODELS = env_list("GEMINI_IMAGE_MODELS", _DEFAULT_IMAGE_MODELS)
if not GEMINI_IMAGE_MODELS:
    raise ImproperlyConfigured("Environment variable GEMINI_IMAGE_MODELS must name at least one model.")
if not GEMINI_IMAGE_MODEL:
    GEMINI_IMAGE_MODEL = GEMINI_IMAGE_MODELS[0]
elif GEMINI_IMAGE_MODEL not in GEMINI_IMAGE_MODELS:
    if env_str("GEMINI_IMAGE_MODELS"):
        raise ImproperlyConfigured(
            f"Environment variable GEMINI_IMAGE_MODEL={GEMINI_IMAGE_MODEL!r} is not one of GEMINI_IMAGE_MODELS "
            f"({', '.join(GEMINI_IMAGE_MODELS)}); add it there or leave GEMINI_IMAGE_MODEL unset.")
    GEMINI_IMAGE_MODELS = [GEMINI_IMAGE_MODEL, *GEMINI_IMAGE_MODELS]
else:
    # The default model comes first (GET /v1/models lists it first).
    GEMINI_IMAGE_MODELS = [GEMINI_IMAGE_MODEL, *(m for m in GEMINI_IMAGE_MODELS if m != GEMINI_IMAGE_MODEL)]
GEMINI_TEXT_MODEL = env_str("GEMINI_TEXT_MODEL", "gemini-2.5-flash")
GEMINI_TIMEOUT_SECONDS = env_float("GEMINI_TIMEOUT_SECONDS", 90.0, minimum=1.0)
# /health asks Gemini (the image model's metadata) at most once per TTL per process.
HEALTH_PROVIDER_TTL_SECONDS = env_float("HEALTH_PROVIDER_TTL_SECONDS", 60.0, minimum=0.0, maximum=86400.0)
HEALTH_PROVIDER_TIMEOUT_SECONDS = env_float("HEALTH_PROVIDER_TIMEOUT_SECONDS", 3.0, minimum=0.1, maximum=60.0)
# HTTP connections to Gemini per process: by default one per job a worker runs at once.
GEMINI_MAX_CONNECTIONS = env_int("GEMINI_MAX_CONNECTIONS", WORKER_CONCURRENCY, minimum=1, maximum=100000)
# USD per 1M tokens (input, output), from Google's price list for these models; GEMINI_PRICES
# adds or replaces models. A model without a price gets costUsd null (warned at start-up).
GEMINI_PRICES = env_prices("GEMINI_PRICES", {
    "gemini-2.5-flash-image": {"input": 0.30, "output": 30.0},
    "gemini-2.5-flash": {"input": 0.30, "output": 2.50},
})
# Upstream pacing across every worker of the installation (apps.jobs.pacing); 0 = no limit.
GEMINI_MAX_CONCURRENCY = env_int("GEMINI_MAX_CONCURRENCY", 0, minimum=0, maximum=100000)
GEMINI_MAX_RPM = env_int("GEMINI_MAX_RPM", 0, minimum=0, maximum=1000000)

# --- storage -------------------------------------------------------------------------
MEDIA_ROOT = env_str("MEDIA_ROOT", str(VAR_DIR / "media"))
STORAGE_BACKEND = env_choice("STORAGE_BACKEND", "filesystem", ("filesystem", "s3"))
if STORAGE_BACKEND == "s3":
    if not env_str("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured("Environment variable AWS_STORAGE_BUCKET_NAME is required when STORAGE_BACKEND=s3.")
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_url("AWS_S3_ENDPOINT_URL") or None,  # S3-compatible services
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            # Keys are random and never reused; objects stay private and are served by /api/images.
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": False,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_URL = "static/"
STATIC_ROOT = env_str("STATIC_ROOT") or None  # only for an optional collectstatic
WHITENOISE_USE_FINDERS = True  # no collectstatic step needed
WHITENOISE_AUTOREFRESH = False
MAX_UPLOAD_FILE_BYTES = 5 * 1024 * 1024
# Pixels of one reference image, read from its header before anything is decoded (a small
# file can hold a huge, highly compressed image). Default 4096x4096.
MAX_REFERENCE_PIXELS = env_int("MAX_REFERENCE_PIXELS", 4096 * 4096, minimum=1, maximum=40_000_000)
MAX_UPLOAD_FILES = 3
# Whole request body limit: three 5 MB files plus form fields.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 16 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_FILE_BYTES + 1

# --- http ----------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = [
    "http://localhost:3001",
    "http://localhost:3002",
    "http://localhost:3003",
    *env_list("CORS_ORIGIN"),
]
CORS_ALLOW_HEADERS = [
    "accept", "authorization", "content-type", "x-api-key", "x-request-id",
    "idempotency-key", "prefer", "cancel-after",
    # A browser's fetch() resuming a job's event stream (EventSource sets it itself).
    "last-event-id",
]
CORS_EXPOSE_HEADERS = [
    "x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
    "retry-after", "location", "preference-applied", "idempotent-replayed",
]
SECURE_CONTENT_TYPE_NOSNIFF = True
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.keys.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.keys.permissions.HasApiKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["banatie.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "banatie.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}

# --- metrics and logs (docs/operations.md) ----------------------------------------------
# Where every web and worker process of this host writes its metric values, summed by
# /metrics (prometheus-client's multiprocess mode, which reads the same variable itself).
# `make run` and the test stack create and empty it before starting the processes; unset,
# /metrics shows only the process that answers it.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(
        f"Environment variable PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR} is invalid: expected an "
        "existing directory (create it, empty, before the processes start)."
    )
# /metrics from a non-loopback address needs `Authorization: Bearer <METRICS_TOKEN>`;
# unset, such callers get a 404.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Tracing (banatie/tracing.py) is on when this is set; the OTLP exporter reads it and the
# other OTEL_EXPORTER_OTLP_* variables itself.
OTEL_EXPORTER_OTLP_ENDPOINT = env_url("OTEL_EXPORTER_OTLP_ENDPOINT")
# django-prometheus: no migration gauges (one process's view, meaningless when summed).
PROMETHEUS_EXPORT_MIGRATIONS = False

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("debug", "info", "warning", "error")).upper()
# text: one readable line (make run); json: one JSON object per line, for log shippers.
LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json"))
LOGGING_CONFIG = "banatie.logs.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "banatie.middleware.RequestIdLogFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
        "json": {"()": "banatie.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The SDK logs request details at DEBUG; keep it quiet so nothing secret leaks.
        "google_genai": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        # Our access line and our error handler log every request with its id; Django's
        # own 5xx line comes after the request's context ends (it showed "[-]").
        "django.request": {"level": "CRITICAL"},
    },
}

# --- upstream retries (inside one job) -------------------------------------------------
# 8 calls with backoff 1, 2, 4, 8, 15, 15, 15 s: about a minute of a 120 s job is spent
# riding out an upstream outage (a 429 burst, a 503 blip) before the job gives up.
UPSTREAM_MAX_ATTEMPTS = env_int("UPSTREAM_MAX_ATTEMPTS", 8, minimum=1, maximum=30)
UPSTREAM_RETRY_BASE_SECONDS = env_float("UPSTREAM_RETRY_BASE_SECONDS", 1.0, minimum=0.0)
UPSTREAM_RETRY_MAX_SECONDS = env_float("UPSTREAM_RETRY_MAX_SECONDS", 15.0, minimum=0.0)

# --- OpenAPI ---------------------------------------------------------------------------
SPECTACULAR_SETTINGS = {
    "TITLE": "Banatie API",
    "DESCRIPTION": (
        "Image generation with Gemini behind project-scoped API keys. Every error body carries a "
        "stable `code`; what each one means and how to fix it: [the error catalogue](/api/docs/errors.md)."
    ),
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "banatie.openapi.add_metrics_route",
        "banatie.openapi.add_common_headers",
        # An app's own refinement of its request schema (named by string: settings import no app).
        "apps.keys.openapi.split_key_create_by_type",
        "banatie.openapi.state_input_constraints",
        "banatie.openapi.comma_separated_query_lists",
    ],
    "PREPROCESSING_HOOKS": ["banatie.openapi.only_api_routes"],
    "ENUM_NAME_OVERRIDES": {
        "ImageAspectRatioEnum": "workers.providers.templates.IMAGE_ASPECT_RATIOS",
        "EnhanceAspectRatioEnum": "workers.providers.templates.ENHANCE_ASPECT_RATIOS",
        "TemplateEnum": "workers.providers.templates.TEMPLATES",
        "JobStatusEnum": "apps.jobs.models.Job.Status",
        # Named explicitly since a delivery's `type` (an event) is another choice set of that name.
        "TypeEnum": "apps.keys.models.KEY_TYPES",
        "WebhookEventEnum": "apps.webhooks.events.ALLOWED_EVENTS",
        "DeliveryStatusEnum": "apps.webhooks.models.WebhookDelivery.Status",
        # /v1's output_format (png/jpeg/webp), not the enhancement options' outputFormat.
        "ImageOutputFormatEnum": "apps.openai_compat.serializers.OUTPUT_FORMATS",
        "ImageSizeEnum": "workers.providers.image_models.IMAGE_SIZES",
    },
}
