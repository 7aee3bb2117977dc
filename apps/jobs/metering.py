"""What a job's upstream calls consumed, and what that cost.

Every upstream call the job makes (the image call(s), the enhancement call of autoEnhance,
a retry) reports its usage with ``usage_record``, from inside the job's context (the
providers do it from Gemini's usage_metadata); job_run meters the attempt
(``job_metered``) and stores ``usage_summary`` on the job when it ends, succeeded, failed
or canceled while running. The cost is computed then, from GEMINI_PRICES as they are at
that moment, and stored: a later price change does not rewrite history."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

_MILLION = 1_000_000


@dataclass(frozen=True)
class CallUsage:
    """One upstream call's usage."""

    model: str
    image_call: bool  # it asked for an image (its output tokens are image tokens unless told apart)
    input_tokens: int = 0
    output_tokens: int = 0
    image_output_tokens: int = 0
    total_tokens: int = 0


class Meter:
    """The calls of one attempt of one job (shared by its greenlets or threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[CallUsage] = []

    def add(self, call: CallUsage) -> None:
        with self._lock:
            self._calls.append(call)

    @property
    def calls(self) -> list[CallUsage]:
        with self._lock:
            return list(self._calls)


_meter: ContextVar[Meter | None] = ContextVar("job_meter", default=None)


@contextmanager
def job_metered() -> Iterator[Meter]:
    """Collect the usage of every upstream call made inside the block (and in greenlets or
    threads started from it with a copy of its context)."""
    meter = Meter()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def usage_record(call: CallUsage) -> None:
    """Count one upstream call against the running job (a no-op outside a job)."""
    meter = _meter.get()
    if meter is not None:
        meter.add(call)


def price_of(model: str) -> Mapping[str, float] | None:
    return settings.GEMINI_PRICES.get(model)


def _call_cost(call: CallUsage) -> float | None:
    price = price_of(call.model)
    if price is None:
        return None
    if call.image_call and "image" in price:  # a per-image price replaces the output tokens' price
        return call.input_tokens * price["input"] / _MILLION + price["image"]
    return (call.input_tokens * price["input"] + call.output_tokens * price["output"]) / _MILLION


def usage_summary(calls: list[CallUsage], *, images: int, model: str | None) -> dict[str, Any]:
    """The job's `usage`: its calls summed. ``model``: the image model (the first image call's,
    else ``model``, what the job asked for or its result names). costUsd is null when a call's
    model has no price (GEMINI_PRICES), 0 with no call at all (the offline provider)."""
    image_models = [call.model for call in calls if call.image_call]
    costs = [_call_cost(call) for call in calls]
    return {
        "model": image_models[0] if image_models else (model or (calls[0].model if calls else None)),
        "images": images,
        "inputTokens": sum(call.input_tokens for call in calls),
        "outputTokens": sum(call.output_tokens for call in calls),
        "imageOutputTokens": sum(call.image_output_tokens for call in calls),
        "totalTokens": sum(call.total_tokens for call in calls),
        "costUsd": None if any(cost is None for cost in costs) else round(sum(c for c in costs if c), 6),
    }


def unpriced_models(models: list[str]) -> list[str]:
    """The configured models GEMINI_PRICES has no price for (warned about at start-up)."""
    return [model for model in dict.fromkeys(models) if model and price_of(model) is None]
