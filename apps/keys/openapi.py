"""The key-creation request in the OpenAPI schema, split by `type`: what is valid depends
on it (project keys need a projectId and an expiry; master keys take no projectId), and a
schema that says so lets a client (and schemathesis) know a valid request from an invalid
one. Built from the serializer's own generated schema (one source): a post-processing hook."""
from __future__ import annotations

import copy
from typing import Any

BASE = "KeyCreateInputRequest"


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    schema.pop("nullable", None)
    return schema


def split_key_create_by_type(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.get("components", {}).get("schemas", {})
    base = schemas.get(BASE)
    if not base or "properties" not in base:
        return result
    props = base["properties"]
    shared = {name: copy.deepcopy(props[name]) for name in ("organizationId", "name") if name in props}
    schemas["MasterKeyCreateInputRequest"] = {
        "type": "object", "additionalProperties": False, "required": ["type"],
        "description": "A master key: administers every key; never tied to a project.",
        "properties": {"type": {"type": "string", "enum": ["master"]}, **shared,
                       "expiresInDays": copy.deepcopy(props["expiresInDays"])},
    }
    schemas["ProjectKeyCreateInputRequest"] = {
        "type": "object", "additionalProperties": False, "required": ["type", "projectId"],
        "description": "A project key: generates images and reads its project's jobs; always expires.",
        "properties": {"type": {"type": "string", "enum": ["project"]}, "projectId": _not_null(props["projectId"]),
                       **shared, "expiresInDays": _not_null(props["expiresInDays"])},
    }
    refs = {kind: f"#/components/schemas/{kind.capitalize()}KeyCreateInputRequest" for kind in ("master", "project")}
    schemas[BASE] = {"oneOf": [{"$ref": ref} for ref in refs.values()],
                     "discriminator": {"propertyName": "type", "mapping": refs}}
    return result
