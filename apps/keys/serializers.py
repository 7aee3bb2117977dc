from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from apps.keys.models import ApiKey
from banatie.serializers import (
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
)
from banatie.timefmt import iso as _iso

MAX_EXPIRY_DAYS = 3650

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class KeyCreateInputSerializer(StrictSerializer):
    read_only_names = ("id", "apiKey", "scopes", "createdAt", "expiresAt", "isActive", "lastUsedAt", "createdBy")

    type = StrictChoiceField(choices=ApiKey.Type.values)
    projectId = StrictCharField(required=False, allow_null=True, max_length=100)
    organizationId = StrictCharField(required=False, allow_null=True, max_length=100)
    name = StrictCharField(required=False, allow_blank=True, max_length=200, default="")
    expiresInDays = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_EXPIRY_DAYS,
        help_text="Days until expiry (1-3650). Project keys default to 90; master keys never expire unless set.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        project_id = attrs.get("projectId")
        if attrs["type"] == ApiKey.Type.PROJECT:
            if not project_id:
                raise serializers.ValidationError({"projectId": ["projectId is required for project keys."]})
            if "expiresInDays" in attrs and attrs["expiresInDays"] is None:
                raise serializers.ValidationError(
                    {"expiresInDays": ["Project keys must expire: give 1-3650 days or leave it out for 90."]}
                )
        elif project_id:
            raise serializers.ValidationError({"projectId": ["Master keys are not tied to a project; leave projectId out."]})
        for name in ("projectId", "organizationId"):
            value = attrs.get(name)
            if value and not re.match(ID_PATTERN, value):
                raise serializers.ValidationError(
                    {name: ["Use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."]}
                )
        return attrs


def key_metadata(key: ApiKey) -> dict[str, Any]:
    """The public view of a key: everything but the secret, which is never stored."""
    return {
        "id": str(key.id),
        "type": key.key_type,
        "projectId": key.project_id,
        "organizationId": key.organization_id,
        "name": key.name,
        "prefix": f"bnt_{key.prefix}",
        "scopes": key.scopes,
        "isActive": key.is_active,
        "createdAt": _iso(key.created_at),
        "expiresAt": _iso(key.expires_at),
        "revokedAt": _iso(key.revoked_at),
        "lastUsedAt": _iso(key.last_used_at),
        "createdBy": str(key.created_by_id) if key.created_by_id else None,
    }


# --- response shapes (documentation: the views return key_metadata() dicts) -------------

class KeyMetadataOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=ApiKey.Type.values)
    projectId = serializers.CharField(allow_null=True)
    organizationId = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_blank=True)
    prefix = serializers.CharField(help_text="Public part of the key, safe to show.")
    scopes = serializers.ListField(child=serializers.CharField())
    isActive = serializers.BooleanField()
    createdAt = serializers.DateTimeField()
    expiresAt = serializers.DateTimeField(allow_null=True)
    revokedAt = serializers.DateTimeField(allow_null=True)
    lastUsedAt = serializers.DateTimeField(allow_null=True)
    createdBy = serializers.UUIDField(allow_null=True)


class KeyCreateOutputSerializer(serializers.Serializer):
    apiKey = serializers.CharField(help_text="The key itself. Shown once; store it now.")
    metadata = KeyMetadataOutputSerializer()
    message = serializers.CharField()


class BootstrapOutputSerializer(KeyCreateOutputSerializer):
    type = serializers.CharField()
    name = serializers.CharField()
    expiresAt = serializers.DateTimeField(allow_null=True)


class KeyListOutputSerializer(serializers.Serializer):
    keys = KeyMetadataOutputSerializer(many=True)
    total = serializers.IntegerField()


class KeyRevokeOutputSerializer(serializers.Serializer):
    message = serializers.CharField()
    keyId = serializers.UUIDField()
    metadata = KeyMetadataOutputSerializer()


class RateLimitOutputSerializer(serializers.Serializer):
    rate = serializers.CharField()
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    remaining = serializers.IntegerField()
    resetAt = serializers.DateTimeField()
    appliesTo = serializers.ListField(child=serializers.CharField())


class MeOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    key = KeyMetadataOutputSerializer()
    rateLimit = RateLimitOutputSerializer(allow_null=True, help_text="null when the counter store is unreachable.")
    rateLimitError = serializers.CharField(required=False)
