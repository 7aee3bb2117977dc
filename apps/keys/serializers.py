from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from rest_framework import serializers

from apps.keys.models import ApiKey
from apps.keys.services import MintedKey
from apps.keys.throttling import RateState, rate_limited_routes
from banatie.serializers import (
    IsoDateTimeField, OutputSerializer, StrictCharField, StrictChoiceField, StrictIntegerField, StrictSerializer,
)

MAX_EXPIRY_DAYS = 3650

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
ID_RULE = "Use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."


class _WholeStringRegexValidator(RegexValidator):
    """ID_PATTERN over the whole string: Python's `$` also matches before a final newline,
    which a path parameter can carry (`%0A`). The schema keeps ID_PATTERN (ECMA's `$` does not)."""

    def __call__(self, value: object) -> None:
        if isinstance(value, str) and value.endswith("\n"):
            raise ValidationError(self.message, code=self.code)
        super().__call__(value)


ID_VALIDATOR = _WholeStringRegexValidator(ID_PATTERN, message=ID_RULE)


class KeyCreateInputSerializer(StrictSerializer):
    read_only_names = ("id", "apiKey", "scopes", "createdAt", "expiresAt", "isActive", "lastUsedAt", "createdBy")

    type = StrictChoiceField(choices=ApiKey.Type.values, source="key_type")
    projectId = StrictCharField(required=False, allow_null=True, max_length=100, source="project_id",
                                validators=[ID_VALIDATOR])
    organizationId = StrictCharField(required=False, allow_null=True, max_length=100, source="organization_id",
                                     validators=[ID_VALIDATOR])
    name = StrictCharField(required=False, allow_blank=True, max_length=200, default="")
    expiresInDays = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_EXPIRY_DAYS, source="expires_in_days",
        help_text="Days until expiry (1-3650). Project keys default to 90; master keys never expire unless set.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        project_id = attrs.get("project_id")
        if attrs["key_type"] == ApiKey.Type.PROJECT:
            if not project_id:
                raise serializers.ValidationError({"projectId": ["projectId is required for project keys."]})
            if "expires_in_days" in attrs and attrs["expires_in_days"] is None:
                raise serializers.ValidationError(
                    {"expiresInDays": ["Project keys must expire: give 1-3650 days or leave it out for 90."]}
                )
        elif project_id:
            raise serializers.ValidationError({"projectId": ["Master keys are not tied to a project; leave projectId out."]})
        return attrs


# --- output ----------------------------------------------------------------------------

SAVE_MESSAGE = "IMPORTANT: Save this key securely. You will not see it again!"


# The public view of a key: everything but the secret, which is never stored.
class KeyMetadataOutputSerializer(OutputSerializer):

    id = serializers.UUIDField()
    type = serializers.ChoiceField(source="key_type", choices=ApiKey.Type.values)
    projectId = serializers.CharField(source="project_id", allow_null=True)
    organizationId = serializers.CharField(source="organization_id", allow_null=True)
    name = serializers.CharField(allow_blank=True)
    prefix = serializers.SerializerMethodField(help_text="Public part of the key, safe to show.")
    scopes = serializers.ListField(child=serializers.CharField())
    isActive = serializers.BooleanField(source="is_active")
    createdAt = IsoDateTimeField(source="created_at")
    expiresAt = IsoDateTimeField(source="expires_at", allow_null=True)
    revokedAt = IsoDateTimeField(source="revoked_at", allow_null=True)
    lastUsedAt = IsoDateTimeField(source="last_used_at", allow_null=True)
    createdBy = serializers.UUIDField(source="created_by_id", allow_null=True)

    def get_prefix(self, key: ApiKey) -> str:
        return f"bnt_{key.prefix}"


# Rendered from a MintedKey: the only time the plaintext is ever sent.
class KeyCreateOutputSerializer(OutputSerializer):

    apiKey = serializers.CharField(source="plaintext", help_text="The key itself. Shown once; store it now.")
    metadata = KeyMetadataOutputSerializer(source="key")
    message = serializers.SerializerMethodField()

    def get_message(self, minted: MintedKey) -> str:
        return SAVE_MESSAGE


class BootstrapOutputSerializer(KeyCreateOutputSerializer):
    type = serializers.CharField(source="key.key_type")
    name = serializers.CharField(source="key.name")
    expiresAt = IsoDateTimeField(source="key.expires_at", allow_null=True)


# Rendered from the list of keys.
class KeyListOutputSerializer(OutputSerializer):

    keys = KeyMetadataOutputSerializer(many=True, source="*")
    total = serializers.SerializerMethodField()

    def get_total(self, keys: list[ApiKey]) -> int:
        return len(keys)


# Rendered from the revoked key.
class KeyRevokeOutputSerializer(OutputSerializer):

    message = serializers.SerializerMethodField()
    keyId = serializers.UUIDField(source="id")
    metadata = KeyMetadataOutputSerializer(source="*")

    def get_message(self, key: ApiKey) -> str:
        return "API key revoked successfully"


# Rendered from the key's RateState.
class RateLimitOutputSerializer(OutputSerializer):

    rate = serializers.SerializerMethodField()
    limit = serializers.IntegerField()
    used = serializers.SerializerMethodField()
    remaining = serializers.IntegerField()
    resetAt = IsoDateTimeField(source="reset_at", timespec="seconds")
    appliesTo = serializers.SerializerMethodField()

    def get_rate(self, state: RateState) -> str:
        return settings.BANATIE_RATE_LIMIT

    def get_used(self, state: RateState) -> int:
        return min(state.used, state.limit)

    def get_appliesTo(self, state: RateState) -> list[str]:  # noqa: N802 - the wire name
        return list(rate_limited_routes())


@dataclass(frozen=True)
class Me:
    key: ApiKey
    rate_limit: RateState | None
    rate_limit_error: str | None = None


class MeOutputSerializer(OutputSerializer):
    omit_when_none = ("rateLimitError",)

    success = serializers.SerializerMethodField()
    key = KeyMetadataOutputSerializer()
    rateLimit = RateLimitOutputSerializer(source="rate_limit", allow_null=True,
                                          help_text="null when the counter store is unreachable.")
    rateLimitError = serializers.CharField(source="rate_limit_error", required=False)

    def get_success(self, me: Me) -> bool:
        return True
