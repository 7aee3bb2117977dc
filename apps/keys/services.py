"""Key use cases: mint, bootstrap, revoke, authenticate (through this process's key cache,
apps/keys/cache.py). Plaintext keys exist only in the return value of
key_create/key_bootstrap and are never stored or logged."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.keys.cache import key_cache
from apps.keys.errors import (
    ApiKeyExpired, ApiKeyInvalid, ApiKeyMalformed, ApiKeyRevoked, BootstrapNotAllowed, LastMasterKey,
)
from apps.keys.models import ApiKey, BootstrapState

KEY_PREFIX = "bnt_"
PREFIX_LENGTH = 8
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
SECRET_BYTES = 32  # 256 bits; token_urlsafe(32) is 43 characters
KEY_PATTERN = re.compile(r"^bnt_([a-z0-9]{8})([A-Za-z0-9_-]{43})$")
KEY_LENGTH = len(KEY_PREFIX) + PREFIX_LENGTH + 43
PROJECT_KEY_DAYS = 90
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class MintedKey:
    key: ApiKey
    plaintext: str  # shown once to the caller, then forgotten


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _mint(**fields: object) -> MintedKey:
    for _ in range(5):
        prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
        plaintext = KEY_PREFIX + prefix + secrets.token_urlsafe(SECRET_BYTES)
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(prefix=prefix, hash=hash_key(plaintext), **fields)
            return MintedKey(key=key, plaintext=plaintext)
        except IntegrityError:
            continue  # prefix collision (36^8 space): draw again
    raise RuntimeError("could not draw a unique key prefix")


def key_create(
    *,
    key_type: str,
    project_id: str | None = None,
    organization_id: str | None = None,
    name: str = "",
    expires_in_days: int | None = None,
    created_by: ApiKey | None = None,
) -> MintedKey:
    """Mint a key. Project keys expire in 90 days unless told otherwise; master keys never
    expire unless ``expires_in_days`` is given."""
    now = timezone.now()
    if expires_in_days is not None:
        expires_at = now + timedelta(days=expires_in_days)
    elif key_type == ApiKey.Type.PROJECT:
        expires_at = now + timedelta(days=PROJECT_KEY_DAYS)
    else:
        expires_at = None
    return _mint(
        key_type=key_type,
        project_id=project_id if key_type == ApiKey.Type.PROJECT else None,
        organization_id=organization_id,
        name=name,
        expires_at=expires_at,
        created_by=created_by,
        created_at=now,
    )


def key_bootstrap() -> MintedKey:
    """Create the first master key. Works once per installation: atomic, and two
    concurrent calls collide on BootstrapState's primary key so exactly one succeeds."""
    try:
        with transaction.atomic():
            if BootstrapState.objects.exists() or ApiKey.objects.exists():
                raise BootstrapNotAllowed()
            BootstrapState.objects.create(id=1)
            return key_create(key_type=ApiKey.Type.MASTER, name="Initial Master Key")
    except IntegrityError:
        raise BootstrapNotAllowed() from None


def key_revoke(*, key: ApiKey) -> ApiKey:
    """Idempotent: revoking a revoked key keeps its first revocation time. Refuses to revoke
    the last active master key (nobody could administer keys afterwards)."""
    with transaction.atomic():
        if key.is_master and key.is_active:
            now = timezone.now()
            others = (ApiKey.objects.select_for_update()
                      .filter(key_type=ApiKey.Type.MASTER, revoked_at__isnull=True)
                      .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).exclude(pk=key.pk))
            if not others.exists():
                raise LastMasterKey()
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    # Here at once; other processes within KEY_CACHE_SECONDS, when their copies expire.
    key_cache.forget(key.pk)
    key.refresh_from_db()
    return key


def key_parse(raw: str, *, header: str) -> tuple[str, str]:
    """Check a presented key's shape; return (prefix, full key). Raises ApiKeyMalformed
    naming the exact mistake, without echoing the key back."""
    value = raw
    if not value.strip():
        raise ApiKeyMalformed(f"The {header} header is empty.", hint="Put your bnt_... key in it.")
    if header == "X-API-Key" and value.strip().lower().startswith("bearer "):
        raise ApiKeyMalformed(
            "The X-API-Key header starts with 'Bearer '; that prefix belongs to the Authorization header.",
            hint="Send X-API-Key: bnt_... (no 'Bearer '), or Authorization: Bearer bnt_...",
        )
    stripped = value.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"`":
        raise ApiKeyMalformed(
            f"The key in {header} is wrapped in quotes.",
            hint="Remove the quotes: the header value must be the bare key, bnt_...",
        )
    if value != stripped or any(c.isspace() for c in value):
        raise ApiKeyMalformed(
            f"The key in {header} contains whitespace or a line break.",
            hint="Trim spaces and newlines around and inside the key (check how you read it from a file or env var).",
        )
    if re.fullmatch(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", value):
        raise ApiKeyMalformed(
            f"The {header} header holds the text {value!r}, not a key: the shell did not expand that variable.",
            hint=f"Set it first (export {value.strip('${}')}=bnt_...) or use double quotes around the header; "
                 "single quotes stop the shell from expanding it.",
        )
    if not value.startswith(KEY_PREFIX):
        raise ApiKeyMalformed(
            f"The key in {header} does not start with 'bnt_'.",
            hint="Banatie keys look like bnt_ followed by 51 letters, digits, '-' or '_'. Is this a key for another service?",
        )
    match = KEY_PATTERN.match(value)
    if not match:
        raise ApiKeyMalformed(
            f"The key in {header} has {len(value)} characters or unexpected characters; "
            f"a Banatie key has exactly {KEY_LENGTH}.",
            hint="Copy the whole key again; it may have been cut off.",
        )
    return match.group(1), value


def key_authenticate(raw: str, *, header: str) -> ApiKey:
    """Resolve a presented key, from this process's cache when it holds a copy read less
    than KEY_CACHE_SECONDS ago (apps/keys/cache.py), else from the database. Expired and
    revoked are only reported once the secret matched, so nobody can probe whether a
    prefix exists."""
    prefix, plaintext = key_parse(raw, header=header)
    presented = hash_key(plaintext)
    key = _key_with_hash(prefix=prefix, digest=presented)
    if key is None:
        raise ApiKeyInvalid()
    if key.is_revoked:
        raise ApiKeyRevoked()
    if key.is_expired:
        raise ApiKeyExpired()
    key_touch(key=key)
    return key


def _key_with_hash(*, prefix: str, digest: str) -> ApiKey | None:
    def load() -> ApiKey | None:
        key = ApiKey.objects.filter(prefix=prefix).first()
        stored = key.hash if key else "0" * 64
        return key if hmac.compare_digest(digest, stored) and key is not None else None

    return key_cache.get_or_load(digest, max_age=settings.KEY_CACHE_SECONDS, load=load)


def key_touch(*, key: ApiKey) -> None:
    """Record use, at most once a minute per key (not a write on every request). A cached
    copy keeps the time it wrote and rereads the database's with each refresh, so the
    processes together write about once a minute too."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
