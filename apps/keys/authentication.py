from __future__ import annotations

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apps.keys.errors import ApiKeyMalformed
from apps.keys.models import ApiKey
from apps.keys.services import key_authenticate
from banatie.request_context import log_fields_add


class ApiKeyAuthentication(BaseAuthentication):
    """X-API-Key: bnt_… (documented) or Authorization: Bearer bnt_… (what many HTTP
    clients send by default). Returns (key, key): the key is both user and auth. The key's
    public prefix (never the key) and project go on the request's log lines."""

    def authenticate(self, request: Request) -> tuple[ApiKey, ApiKey] | None:
        x_api_key = request.META.get("HTTP_X_API_KEY")
        if x_api_key is not None:
            key = key_authenticate(x_api_key, header="X-API-Key")
            return _logged(key)
        authorization = request.META.get("HTTP_AUTHORIZATION")
        if authorization is None:
            return None  # HasApiKey answers api_key_missing
        # Any whitespace separates scheme and key (a tab is a common copy-paste slip).
        scheme, token = (authorization.split(None, 1) + [""])[:2]
        if scheme.lower() != "bearer":
            # Never echo the header: it may be the key itself in another wrapping.
            if "bnt_" in authorization:
                raise ApiKeyMalformed(
                    "The Authorization header holds a Banatie key without the 'Bearer ' scheme.",
                    hint="Send Authorization: Bearer bnt_... or X-API-Key: bnt_...",
                )
            raise ApiKeyMalformed(
                "The Authorization header does not use the Bearer scheme, the only one accepted.",
                hint="Send Authorization: Bearer bnt_... or X-API-Key: bnt_...",
            )
        key = key_authenticate(token, header="Authorization")
        return _logged(key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="banatie"'


def _logged(key: ApiKey) -> tuple[ApiKey, ApiKey]:
    log_fields_add(key_prefix=key.prefix, project_id=key.project_scope)
    return key, key
