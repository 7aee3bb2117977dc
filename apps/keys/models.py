from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """An API key. Only its public prefix and the SHA-256 of the whole key are stored."""

    class Type(models.TextChoices):
        MASTER = "master", "Master"
        PROJECT = "project", "Project"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key_type = models.CharField(max_length=16, choices=Type.choices)
    organization_id = models.CharField(max_length=100, blank=True, null=True)
    project_id = models.CharField(max_length=100, blank=True, null=True, db_index=True)
    name = models.CharField(max_length=200, blank=True, default="")
    prefix = models.CharField(max_length=8, unique=True, editable=False)
    hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(key_type="master") | models.Q(project_id__isnull=False),
                name="project_key_has_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key_type} key bnt_{self.prefix}… ({self.name or 'unnamed'})"

    # DRF reads request.user.is_authenticated; the key is the principal.
    is_authenticated = True

    @property
    def is_master(self) -> bool:
        return self.key_type == self.Type.MASTER

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_expired

    @property
    def scopes(self) -> list[str]:
        return ["*"] if self.is_master else ["generate", "read"]

    @property
    def project_scope(self) -> str:
        """The namespace jobs and images of this key live in."""
        return self.project_id or "_master"


# The key types as the API's serializers offer them (values only), for the schema's TypeEnum.
KEY_TYPES = ApiKey.Type.values


class BootstrapState(models.Model):
    """One row, written by the first successful bootstrap. Its primary key makes two
    concurrent bootstraps collide in the database, so exactly one wins, and it stays even
    if every key is later revoked or deleted."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    completed_at = models.DateTimeField(default=timezone.now)
