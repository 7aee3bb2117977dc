"""Errors about keys and limits. `error` strings are the reference's verbatim wording."""
from __future__ import annotations

from banatie.errors import ApiError

_AUTH_HEADER = {"WWW-Authenticate": 'Bearer realm="banatie", charset="UTF-8"'}


class AuthError(ApiError):
    status_code = 401
    error = "Invalid API key"

    def __init__(self, message: str | None = None, **kwargs) -> None:
        kwargs.setdefault("headers", dict(_AUTH_HEADER))
        super().__init__(message, **kwargs)


class ApiKeyMissing(AuthError):
    code = "api_key_missing"
    error = "Missing API key"
    default_message = "No API key was sent."
    hint = "Send your key in the X-API-Key header: X-API-Key: bnt_... (Authorization: Bearer bnt_... works too)."


class ApiKeyMalformed(AuthError):
    code = "api_key_malformed"
    default_message = "The API key is not in the expected format."
    hint = "Send the key exactly as it was shown at creation: X-API-Key: bnt_... with no quotes, prefix or spaces."


class ApiKeyInvalid(AuthError):
    code = "api_key_invalid"
    default_message = "This API key is not recognised."
    hint = "Check for a typo or a key from another server; ask your admin for a new key if it was lost."


class ApiKeyExpired(AuthError):
    code = "api_key_expired"
    default_message = "This API key has expired."
    hint = "Ask an admin holding a master key to create a new key (POST /api/admin/keys)."


class ApiKeyRevoked(AuthError):
    code = "api_key_revoked"
    default_message = "This API key has been revoked."
    hint = "Ask an admin holding a master key to create a new key (POST /api/admin/keys)."


class MasterKeyRequired(ApiError):
    status_code = 403
    code = "master_key_required"
    error = "Master key required"
    hint = "Admin routes need a master key; project keys can generate images and read their own jobs."


class ProjectKeyRequired(ApiError):
    status_code = 403
    code = "project_key_required"
    error = "Forbidden"
    hint = ("Create a project key (POST /api/admin/keys with type project) and give the app that key; "
            "a master key is an admin credential and stays out of third-party apps.")


class BootstrapNotAllowed(ApiError):
    status_code = 403
    code = "bootstrap_not_allowed"
    error = "Bootstrap not allowed"
    default_message = "API keys already exist. Use /api/admin/keys to create new keys."
    hint = "Use an existing master key with POST /api/admin/keys; operators can run `python manage.py create_master_key`."


class KeyNotFound(ApiError):
    status_code = 404
    code = "key_not_found"
    error = "Not found"
    default_message = "No API key with this id."


class LastMasterKey(ApiError):
    status_code = 409
    code = "last_master_key"
    error = "Conflict"
    default_message = "This is the last active master key; revoking it would lock every admin out."
    hint = "Create another master key first (POST /api/admin/keys with type master), then revoke this one."


class RateLimitExceeded(ApiError):
    status_code = 429
    code = "rate_limit_exceeded"
    error = "Rate limit exceeded"
    hint = "Wait for the number of seconds in Retry-After, then retry."


class RateLimiterUnavailable(ApiError):
    status_code = 503
    code = "rate_limiter_unavailable"
    error = "Service unavailable"
    default_message = "The rate-limit counter store (Redis) is unreachable, so the request was not accepted."
    hint = "Retry in a few seconds; operators: check REDIS_URL and /health."
