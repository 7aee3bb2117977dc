"""Serializer building blocks shared by every endpoint: strict JSON types and a clear
answer for unknown or read-only fields (with a "did you mean" suggestion)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from rest_framework import ISO_8601, serializers

from banatie.errors import closest
from banatie.timefmt import iso

_JSON_TYPE_NAMES = {
    str: "string", bool: "boolean", int: "integer", float: "number",
    list: "array", dict: "object", type(None): "null",
}


def json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


# Rejects unknown and read-only fields by name instead of silently ignoring them. (A
# comment: a docstring would become every request schema's description.)
class StrictSerializer(serializers.Serializer):

    # Fields a client may see in responses but must not send.
    read_only_names: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) or hasattr(data, "keys"):
            errors: dict[str, Any] = {}
            known = [name for name, field in self.fields.items() if not field.read_only]
            for name in data.keys():
                if name in known:
                    continue
                if name in self.read_only_names:
                    errors[name] = [f"'{name}' is read-only and cannot be set."]
                    continue
                suggestion = closest(name, known) or _camel_match(name, known)
                errors[name] = [
                    f"Unknown field '{name}'."
                    + (f" Did you mean '{suggestion}'?" if suggestion else f" Known fields: {', '.join(known)}.")
                ]
            if errors:
                # One answer lists every problem: unknown fields and the known fields' own errors.
                try:
                    super().to_internal_value(data)
                except serializers.ValidationError as exc:
                    if isinstance(exc.detail, dict):
                        for name, messages in exc.detail.items():
                            errors.setdefault(name, messages)  # names never collide: unknown vs known
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def _camel_match(name: str, known: list[str]) -> str | None:
    flat = name.replace("_", "").replace("-", "").lower()
    for candidate in known:
        if candidate.lower() == flat:
            return candidate
    return None


def _is_json(field: serializers.Field) -> bool:
    request = field.context.get("request")
    return request is None or (request.content_type or "").startswith("application/json")


class StrictCharField(serializers.CharField):
    """A string that must be a JSON string (DRF would quietly turn 42 into "42")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid_type", received=json_type(data))
        return super().to_internal_value(data)

    default_error_messages = {"invalid_type": "Expected a string, received {received}."}


class StrictBooleanField(serializers.BooleanField):
    """JSON: true/false only. Forms (multipart): "true"/"false"/"1"/"0", since form
    fields are always strings."""

    default_error_messages = {
        "invalid_type": "Expected a boolean (true or false), received {received}.",
        "invalid_form": "Expected true, false, 1 or 0, received {value!r}.",
    }

    def to_internal_value(self, data: Any) -> bool:
        if _is_json(self):
            if not isinstance(data, bool):
                self.fail("invalid_type", received=json_type(data))
            return data
        value = str(data).strip().lower()
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        self.fail("invalid_form", value=str(data)[:20])


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid_type": "Expected an integer, received {received}."}

    def to_internal_value(self, data: Any) -> int:
        if _is_json(self) and (isinstance(data, bool) or not isinstance(data, int)):
            self.fail("invalid_type", received=json_type(data))
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """Enum errors list the allowed values."""

    default_error_messages = {
        "invalid_choice": "{input!r} is not allowed; use one of: {allowed}.",
        "invalid_type": "Expected a string, received {received}.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_type", received=json_type(data))
        if data not in self.choice_strings_to_values:
            self.fail("invalid_choice", input=data, allowed=", ".join(self.choice_strings_to_values))
        return self.choice_strings_to_values[data]


class ChoiceListField(serializers.Field):
    """A query parameter holding several of ``choices``, comma-separated (status=queued,running;
    repeating the parameter works too); each value is checked and the message lists the
    allowed ones. Validated into a list without duplicates, in the order sent."""

    default_error_messages = {
        "invalid_choice": "{input!r} is not allowed; use one or more of: {allowed} (comma-separated).",
        "invalid_type": "Expected a comma-separated string, received {received}.",
    }

    def __init__(self, *, choices: list[str], **kwargs: Any) -> None:
        self.choices = list(choices)
        super().__init__(**kwargs)

    def get_value(self, dictionary: Any) -> Any:
        if hasattr(dictionary, "getlist") and len(dictionary.getlist(self.field_name)) > 1:
            return ",".join(dictionary.getlist(self.field_name))
        return super().get_value(dictionary)  # an empty value counts as not sent, as for every field

    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, str):
            self.fail("invalid_type", received=json_type(data))
        values: list[str] = []
        for value in (part.strip() for part in data.split(",")):
            if value not in self.choices:
                self.fail("invalid_choice", input=value, allowed=", ".join(self.choices))
            if value not in values:
                values.append(value)
        return values

    def to_representation(self, value: Any) -> Any:
        return value


class QueryParamsSerializer(StrictSerializer):
    """Query parameters: each sent once (a repeated one is a 400 naming it), except the
    ChoiceListFields, which take several values."""

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "lists"):
            lists = {name for name, field in self.fields.items() if isinstance(field, ChoiceListField)}
            repeated = {name: [f"Send {name} once."] for name, values in data.lists()
                        if len(values) > 1 and name in self.fields and name not in lists}
            if repeated:
                raise serializers.ValidationError(repeated)
        return super().to_internal_value(data)


class InstantField(serializers.DateTimeField):
    """An ISO 8601 instant in a query string, as UTC. A naive one is UTC. A value whose UTC
    form falls outside what a datetime holds (0001-01-01T00:00+05:00) is clamped to the
    smallest or largest instant instead of refused: as a bound it still means "no bound"."""

    default_error_messages = {"invalid": (
        "Expected an ISO 8601 date-time such as 2026-01-31T12:00:00Z; a + in an offset must be sent as %2B.")}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(input_formats=[ISO_8601], default_timezone=timezone.utc, **kwargs)

    def enforce_timezone(self, value: datetime) -> datetime:
        if value.utcoffset() is None:
            return value.replace(tzinfo=timezone.utc)
        try:
            return value.astimezone(timezone.utc)
        except OverflowError:
            return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=timezone.utc)


PAGE_LIMIT_MAX = 100


def page_limit_field(what: str) -> serializers.IntegerField:
    """``limit`` of a keyset-paginated listing (banatie.cursors): 1 to PAGE_LIMIT_MAX, default 20."""
    message = f"Expected a whole number from 1 to {PAGE_LIMIT_MAX}."
    return serializers.IntegerField(
        required=False, default=20, min_value=1, max_value=PAGE_LIMIT_MAX,
        help_text=f"{what} per page, 1 to {PAGE_LIMIT_MAX}.",
        error_messages={"invalid": message, "min_value": message, "max_value": message, "max_string_length": message})


def page_cursor_field() -> StrictCharField:
    """``cursor`` of a keyset-paginated listing: the previous page's nextCursor."""
    return StrictCharField(required=False, max_length=1000, help_text=(
        "The previous page's `nextCursor`, exactly as returned; leave it out for the first page."))


class JsonObjectField(serializers.Field):
    """A multipart form field holding a JSON object, validated by ``serializer`` (in the
    schema: that serializer's object, which OpenAPI sends as JSON in a multipart part)."""

    default_error_messages = {"invalid": "Expected a JSON object in this form field, e.g. {{\"template\": \"photorealistic\"}}: {error}."}

    def __init__(self, serializer: type[serializers.Serializer], **kwargs: Any) -> None:
        self.inner = serializer
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError as exc:
                self.fail("invalid", error=str(exc))
        if not isinstance(data, dict):
            self.fail("invalid", error="not an object")
        inner = self.inner(data=data)
        inner.is_valid(raise_exception=True)
        return dict(inner.validated_data)

    def to_representation(self, value: Any) -> Any:
        return value



# --- output ----------------------------------------------------------------------------

class IsoDateTimeField(serializers.DateTimeField):
    """Renders the one wire format for instants (banatie.timefmt.iso)."""

    def __init__(self, *, timespec: str = "milliseconds", **kwargs: Any) -> None:
        self.timespec = timespec
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str | None:
        return iso(value, timespec=self.timespec)


class WholeObjectField(serializers.Field):
    """An output part computed from the whole object (source="*"); optional in the schema,
    and left out of the body (with OutputSerializer.omit_when_none) when it returns None."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", required=False, **kwargs)


# Renders a response body. Optional parts of the documented bodies are left out rather
# than sent as null: ``omit_when_empty`` (falsy values) and ``omit_when_none``. (Comments,
# not docstrings, on output serializers: a docstring becomes the schema's description.)
class OutputSerializer(serializers.Serializer):

    omit_when_empty: tuple[str, ...] = ()
    omit_when_none: tuple[str, ...] = ()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        for name in self.omit_when_empty:
            if not data.get(name):
                data.pop(name, None)
        for name in self.omit_when_none:
            if data.get(name) is None:
                data.pop(name, None)
        return data
