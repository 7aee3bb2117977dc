"""Where images live: Django's default storage, under unguessable keys."""
from __future__ import annotations

import re
import secrets

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from apps.generation.images import EXTENSIONS

UPLOADS_PREFIX = "_uploads/"  # reference images: never served by /api/images
# What a servable key looks like: path segments of safe characters ending in an image name.
# No segment may start with a dot, so ".." can never appear.
SERVABLE_KEY = re.compile(r"^(?!_uploads/)[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\.(?:png|jpg|webp)$")
CONTENT_TYPES = {ext: mime for mime, ext in EXTENSIONS.items()}


def _random_part() -> str:
    return secrets.token_hex(16)  # 128 bits: public URLs cannot be guessed


def image_key(*, project: str, filename: str, mime_type: str) -> str:
    now = timezone.now()
    return f"{project}/{now:%Y}/{now:%m}/{_random_part()}-{filename}.{EXTENSIONS[mime_type]}"


def image_save(*, project: str, filename: str, mime_type: str, data: bytes) -> str:
    """Store a generated image; returns its key. Never overwrites (random key part)."""
    return default_storage.save(image_key(project=project, filename=filename, mime_type=mime_type), ContentFile(data))


def reference_save(*, project: str, mime_type: str, data: bytes) -> str:
    now = timezone.now()
    key = f"{UPLOADS_PREFIX}{project}/{now:%Y}/{now:%m}/{_random_part()}.{EXTENSIONS[mime_type]}"
    return default_storage.save(key, ContentFile(data))


def storage_read(key: str) -> bytes:
    with default_storage.open(key, "rb") as handle:
        return handle.read()


def storage_delete(key: str) -> None:
    default_storage.delete(key)


def content_type_for(key: str) -> str:
    return CONTENT_TYPES[key.rsplit(".", 1)[1]]
