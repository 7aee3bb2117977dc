"""Gemini through the official google-genai SDK.

SDK facts this relies on (google-genai 3.4.0, see tests/GEMINI_SDK_NOTES.md):
- HttpOptions.timeout is in milliseconds, and without one a call can hang forever;
- retries are off by default (we retry, within the job's deadline: call_gemini);
- HTTP errors raise errors.ClientError/ServerError with .code/.status/.message; transport
  failures raise httpx2 exceptions; a malformed 200 body raises a ValueError;
- the exceptions keep the request (and so the x-goog-api-key header): we never log,
  chain or pickle them, only copy code/status/message into one of our JobErrors.
"""
from __future__ import annotations

import functools
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx2
from django.conf import settings
from google import genai
from google.genai import errors, types
from opentelemetry import trace
from pydantic import BaseModel

from workers.providers.templates import build_gemini_instruction, resolve_template, validate_options
from apps.jobs.deadline import time_left
from apps.jobs.metering import CallUsage, usage_record
from apps.jobs.pacing import upstream_call, upstream_pause
from banatie import metrics
from apps.jobs.errors import (
    ContentBlocked, JobTimedOut, NoImageReturned, UpstreamInvalidResponse, UpstreamRejected, UpstreamUnavailable,
)
from workers.providers.base import Enhancement, GeneratedImage, ReferenceImage, Usage
from workers.providers.retries import with_upstream_retries

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
BLOCK_FINISH_REASONS = {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION",
                        "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}
_client_lock = threading.Lock()
# A no-op unless tracing is on (banatie/tracing.py); the SDK's own HTTP client (httpx2) has
# no instrumentation, so each call is a span of ours.
_tracer = trace.get_tracer(__name__)


@functools.lru_cache(maxsize=4)
def _client(api_key: str, base_url: str, api_version: str, timeout_ms: int) -> genai.Client:
    # One client per process and configuration: it is thread-safe and pools connections.
    # Its default pool (100 connections) would cap a worker of more threads than that.
    pool = httpx2.Limits(max_connections=settings.GEMINI_MAX_CONNECTIONS,
                         max_keepalive_connections=settings.GEMINI_MAX_CONNECTIONS)
    options = types.HttpOptions(timeout=timeout_ms, base_url=base_url or None, api_version=api_version,
                                client_args={"limits": pool})
    return genai.Client(api_key=api_key, http_options=options)


def client_from_settings() -> genai.Client:
    with _client_lock:
        return _client(settings.GEMINI_API_KEY, settings.GEMINI_BASE_URL, settings.GEMINI_API_VERSION,
                       int(settings.GEMINI_TIMEOUT_SECONDS * 1000))


def _retry_after(exc: errors.APIError) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def call_gemini(**kwargs: object) -> types.GenerateContentResponse:
    """generate_content, retried while it fails retryably (workers.providers.retries)."""
    return with_upstream_retries(lambda: _call_once(**kwargs))


def _call_once(**kwargs: object) -> types.GenerateContentResponse:
    """One generate_content call, counted and timed (banatie_upstream_*) and, with tracing
    on, a span; every SDK failure mapped to a JobError (raised `from None`, so the SDK
    exception and its request headers go nowhere)."""
    left = time_left()
    if left is not None and left <= 0.05:  # no call is made, so none is counted
        raise JobTimedOut("The job's time limit was reached before Gemini answered.")
    model = str(kwargs.get("model", ""))
    started = time.monotonic()
    outcome = metrics.UPSTREAM_OTHER  # whatever escapes the mapping (an abandoned call's greenlet killed)
    with _tracer.start_as_current_span("gemini generate_content", kind=trace.SpanKind.CLIENT,
                                       attributes={"gen_ai.system": "gemini", "gen_ai.request.model": model},
                                       record_exception=False) as span:  # an SDK exception holds the key
        try:
            response = _call_mapped(left, **kwargs)
            outcome = metrics.UPSTREAM_BLOCKED if _block_reason(response) else metrics.UPSTREAM_OK
            usage = response.usage_metadata
            if usage is not None:
                if usage.prompt_token_count:
                    metrics.upstream_tokens.labels(model=model, direction="input").inc(usage.prompt_token_count)
                if usage.candidates_token_count:
                    metrics.upstream_tokens.labels(model=model, direction="output").inc(usage.candidates_token_count)
            return response
        except _UpstreamFailure as failure:
            outcome = failure.outcome
            raise failure.error from None
        finally:
            span.set_attribute("banatie.upstream.outcome", outcome)
            metrics.upstream_seconds.labels(model=model).observe(time.monotonic() - started)
            metrics.upstream_requests.labels(model=model, outcome=outcome).inc()


class _UpstreamFailure(Exception):
    """A mapped failure and its metrics outcome (never leaves this module)."""

    def __init__(self, error: Exception, outcome: str) -> None:
        super().__init__(outcome)
        self.error, self.outcome = error, outcome


def _call_mapped(left: float | None, **kwargs: object) -> types.GenerateContentResponse:
    """``left``: the job's time left, as _call_once read it (None: no deadline)."""
    timeout = settings.GEMINI_TIMEOUT_SECONDS
    cut_by_deadline = left is not None and left < timeout
    if left is not None:
        timeout = min(timeout, left)
    config = kwargs.get("config")
    if isinstance(config, types.GenerateContentConfig):
        # Per call, so a hanging upstream cannot outlive the job's deadline.
        config.http_options = types.HttpOptions(timeout=max(1, int(timeout * 1000)))
    model = str(kwargs.get("model", ""))
    try:
        with upstream_call(model):  # GEMINI_MAX_CONCURRENCY / GEMINI_MAX_RPM, and a 429's pause
            response = client_from_settings().models.generate_content(**kwargs)
        image_call = isinstance(config, types.GenerateContentConfig) and "IMAGE" in (config.response_modalities or [])
        usage_record(call_usage(response, model=model, image_call=image_call))
        return response
    except errors.APIError as exc:
        code, status, message = exc.code, exc.status, (exc.message or "")[:300]
        retry_after = _retry_after(exc)
    except httpx2.TimeoutException:
        if cut_by_deadline:
            raise _UpstreamFailure(JobTimedOut(
                f"Gemini did not answer within the job's time limit ({settings.JOB_SOFT_TIME_LIMIT} s)."
            ), metrics.UPSTREAM_TIMEOUT) from None
        raise _UpstreamFailure(UpstreamUnavailable("Gemini did not answer in time."), metrics.UPSTREAM_TIMEOUT) from None
    except httpx2.TransportError as exc:
        raise _UpstreamFailure(UpstreamUnavailable(f"Could not reach Gemini ({type(exc).__name__})."),
                               metrics.UPSTREAM_UNREACHABLE) from None
    except ValueError:
        raise _UpstreamFailure(UpstreamInvalidResponse("Gemini's answer was not valid JSON."),
                               metrics.UPSTREAM_INVALID) from None
    if code == 429 and retry_after:
        upstream_pause(model, retry_after)  # every worker holds its calls to this model, not only this job
    if code == 429:
        outcome = metrics.UPSTREAM_RATE_LIMITED
    elif code is not None and code >= 500:
        outcome = metrics.UPSTREAM_SERVER_ERROR
    else:
        outcome = metrics.UPSTREAM_CLIENT_ERROR
    if code in RETRYABLE_STATUS:
        raise _UpstreamFailure(UpstreamUnavailable(
            f"Gemini answered {code} {status}: {message}", retry_after=retry_after, details={"upstreamStatus": code},
        ), outcome)
    if code in (401, 403):
        # Gemini's text ("API key not valid") would read as if the caller's Banatie key were bad.
        raise _UpstreamFailure(UpstreamRejected(
            f"Gemini refused this server's credentials ({code} {status}); "
            "the operator must fix GEMINI_API_KEY. Your Banatie key is fine.", details={"upstreamStatus": code},
        ), outcome)
    raise _UpstreamFailure(
        UpstreamRejected(f"Gemini answered {code} {status}: {message}", details={"upstreamStatus": code}), outcome)


def call_usage(response: types.GenerateContentResponse, *, model: str, image_call: bool) -> CallUsage:
    """One call's usage for the job's meter (apps.jobs.metering), read by usage_of (the one
    reader of usage_metadata; zeros when Gemini sent none)."""
    usage = usage_of(response.usage_metadata, image_call=image_call)
    # Priced by the model asked for (GEMINI_PRICES' names), not the version string answered.
    return CallUsage(model=model, image_call=image_call, input_tokens=usage.input_tokens,
                     output_tokens=usage.output_tokens, image_output_tokens=usage.image_output_tokens,
                     total_tokens=usage.total_tokens)


def _block_reason(response: types.GenerateContentResponse) -> str | None:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        return str(getattr(feedback.block_reason, "value", feedback.block_reason))
    for candidate in response.candidates or []:
        reason = candidate.finish_reason
        name = str(getattr(reason, "value", reason or ""))
        if name in BLOCK_FINISH_REASONS:
            return name
    return None


class _EnhancementAnswer(BaseModel):
    enhancedPrompt: str
    detectedLanguage: str
    appliedTemplate: str
    enhancements: list[str]


@dataclass
class GeminiTextProvider:
    model: str
    name: str = "gemini"

    @classmethod
    def from_settings(cls) -> "GeminiTextProvider":
        return cls(model=settings.GEMINI_TEXT_MODEL)

    def enhance(self, *, prompt: str, template: str | None, options: dict) -> Enhancement:
        options = validate_options(options)
        applied = resolve_template(template, options).name
        response = call_gemini(
            model=self.model,
            contents=prompt,
            config=types.GenerateContentConfig(
                system_instruction=build_gemini_instruction(applied, options),
                response_mime_type="application/json",
                response_schema=_EnhancementAnswer,
            ),
        )
        reason = _block_reason(response)
        if reason:
            raise ContentBlocked(f"Gemini refused the prompt ({reason}).", details={"reason": reason})
        answer = response.parsed
        if not isinstance(answer, _EnhancementAnswer):
            # parsed stays None when the JSON does not match the schema.
            try:
                answer = _EnhancementAnswer.model_validate(json.loads(response.text or ""))
            except ValueError:
                raise UpstreamInvalidResponse(
                    "Gemini's enhancement answer did not match the requested JSON schema."
                ) from None
        if not answer.enhancedPrompt.strip():
            raise UpstreamInvalidResponse("Gemini returned an empty enhanced prompt.")
        return Enhancement(
            enhanced_prompt=answer.enhancedPrompt.strip(),
            detected_language=answer.detectedLanguage,
            applied_template=applied,
            enhancements=list(answer.enhancements),
            model=response.model_version or self.model,
        )


@dataclass
class GeminiImageProvider:
    model: str
    name: str = "gemini"

    @classmethod
    def from_settings(cls) -> "GeminiImageProvider":
        return cls(model=settings.GEMINI_IMAGE_MODEL)

    def generate(
        self, *, prompt: str, reference_images: list[ReferenceImage], aspect_ratio: str,
        model: str | None = None, image_size: str | None = None,
    ) -> GeneratedImage:
        model = model or self.model
        parts: list[types.Part | str] = [
            types.Part.from_bytes(data=ref.data, mime_type=ref.mime_type) for ref in reference_images
        ]
        parts.append(prompt)
        response = call_gemini(
            model=model,
            contents=parts,
            config=types.GenerateContentConfig(
                response_modalities=["IMAGE", "TEXT"],
                # image_size only when asked: a model without sizes (2.5 Flash Image) refuses it,
                # and the web tier already refused such a request (image_size_unsupported).
                image_config=types.ImageConfig(aspect_ratio=aspect_ratio, image_size=image_size),
            ),
        )
        reason = _block_reason(response)
        if reason:
            raise ContentBlocked(f"Gemini refused to generate this image ({reason}).", details={"reason": reason})
        image, texts = None, []
        for part in response.parts or []:
            if part.thought:
                continue  # thinking drafts are not the answer
            if part.inline_data is not None and part.inline_data.data and image is None:
                image = part.inline_data
            elif part.text:
                texts.append(part.text)
        description = " ".join(t.strip() for t in texts).strip()
        if image is None:
            raise NoImageReturned("Gemini answered without an image.", details={"modelText": description[:1000]})
        return GeneratedImage(
            data=bytes(image.data), mime_type=image.mime_type or "application/octet-stream",
            description=description, model=response.model_version or model,
            usage=usage_of(response.usage_metadata, image_call=True),
        )


def _modality_tokens(details: list[types.ModalityTokenCount] | None, modality: types.MediaModality) -> int | None:
    """Tokens of one modality in a *_tokens_details list; None when the list is absent."""
    if not details:
        return None
    return sum(entry.token_count or 0 for entry in details if entry.modality == modality)


def usage_of(metadata: types.GenerateContentResponseUsageMetadata | None, *, image_call: bool) -> Usage:
    """Our Usage from Gemini's usage_metadata (google-genai 3.4.0 field names: prompt_token_count,
    candidates_token_count, total_token_count, prompt_tokens_details and
    candidates_tokens_details, lists of ModalityTokenCount(modality, token_count))."""
    if metadata is None:
        return Usage()
    prompt = metadata.prompt_token_count or 0
    output = metadata.candidates_token_count or 0
    image_in = _modality_tokens(metadata.prompt_tokens_details, types.MediaModality.IMAGE)
    text_in = _modality_tokens(metadata.prompt_tokens_details, types.MediaModality.TEXT)
    image_out = _modality_tokens(metadata.candidates_tokens_details, types.MediaModality.IMAGE)
    if image_out is None:
        image_out = output if image_call else 0  # no breakdown: an image call's output is its image
    return Usage(
        input_tokens=prompt,
        input_text_tokens=text_in if text_in is not None else prompt - (image_in or 0),
        input_image_tokens=image_in or 0,
        output_tokens=output,
        image_output_tokens=image_out,
        total_tokens=metadata.total_token_count or (prompt + output),
    )


def gemini_health() -> dict[str, Any]:
    """A cheap authenticated call (the image model's metadata): does Gemini answer, accept
    this server's key, and know the configured model? Never raises; never shows the key."""
    model = settings.GEMINI_IMAGE_MODEL
    base = {"name": "gemini", "model": model}
    try:
        client_from_settings().models.get(model=model, config=types.GetModelConfig(
            http_options=types.HttpOptions(timeout=int(settings.HEALTH_PROVIDER_TIMEOUT_SECONDS * 1000))))
    except errors.APIError as exc:
        if exc.code in (400, 401, 403):
            reason = (f"Gemini refused this server's API key ({exc.code} {exc.status}); "
                      "the operator must fix GEMINI_API_KEY.")
        elif exc.code == 404:
            reason = f"Gemini does not know the model {model!r} (GEMINI_IMAGE_MODEL)."
        else:
            reason = f"Gemini answered {exc.code} {exc.status}."
        return {**base, "status": "down", "reason": reason}
    except httpx2.TimeoutException:
        return {**base, "status": "down", "reason": "Gemini did not answer the health check in time."}
    except httpx2.TransportError as exc:
        return {**base, "status": "down", "reason": f"Could not reach Gemini ({type(exc).__name__}); "
                                                    "check GEMINI_BASE_URL and the network."}
    return {**base, "status": "up"}
