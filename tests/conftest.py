"""Shared fixtures. Tests speak HTTP (DRF's APIClient or a live server) and use three
tenants: a master key and two project keys in different projects."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from apps.keys.models import ApiKey
from apps.keys.services import key_create


@dataclass
class Tenants:
    master: str
    a: str
    b: str
    master_key: ApiKey
    a_key: ApiKey
    b_key: ApiKey


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def tenants(db) -> Tenants:  # type: ignore[no-untyped-def]
    master = key_create(key_type=ApiKey.Type.MASTER, name="test master")
    a = key_create(key_type=ApiKey.Type.PROJECT, project_id="project-a", name="A")
    b = key_create(key_type=ApiKey.Type.PROJECT, project_id="project-b", name="B")
    return Tenants(master.plaintext, a.plaintext, b.plaintext, master.key, a.key, b.key)


def auth(key: str) -> dict[str, str]:
    return {"HTTP_X_API_KEY": key}
