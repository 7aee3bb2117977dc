"""The OpenAI-compatible /v1 routes, driven by the real `openai` SDK against the live test
server (a real Celery worker, real Redis, the Gemini emulator through the real google-genai
SDK): what an unmodified OpenAI app sees, and what Gemini received."""
from __future__ import annotations

import base64
import io

import openai
import pytest
import requests
from PIL import Image

from apps.jobs.models import Job
from tests.conftest import auth, poll_job
from tests.gemini_emulator import IMAGE_OUTPUT_TOKENS, REFERENCE_IMAGE_TOKENS, Reply, decode_inline_parts


@pytest.fixture
def sdk(live_server):  # type: ignore[no-untyped-def]
    """An OpenAI client for a key, pointed at the live server's /v1. No SDK retries: a test
    sees each answer as the server gave it (the SDK would retry 429s and 5xx itself)."""
    clients: list[openai.OpenAI] = []

    def make(key: str) -> openai.OpenAI:
        client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0, timeout=60)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def png(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def fetched(url: str) -> tuple[str, bytes]:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    return response.headers["Content-Type"], response.content


def caption_tokens(prompt: str) -> int:
    return len(f"Here is your image: {prompt[:60]}".split())  # the emulator's text part


# --- images.generate ----------------------------------------------------------------------

def test_images_generate_two_urls_in_one_job_with_the_size_gemini_was_asked_for(worker, tenants, gemini, sdk):
    prompt = "A lighthouse on a cliff at dusk"
    result = sdk(tenants.a).images.generate(prompt=prompt, n=2, size="1536x1024", model="dall-e-3")

    assert len(result.data) == 2 and result.output_format == "png" and result.size == "1024x683"
    urls = [item.url for item in result.data]
    assert len(set(urls)) == 2 and all(url.startswith("http://") and "/api/images/project-a/" in url for url in urls)
    for url in urls:
        content_type, data = fetched(url)
        assert content_type == "image/png" and Image.open(io.BytesIO(data)).size == (1024, 683)
    # Two upstream calls (Gemini refuses candidate_count > 1), each as the request asked.
    calls = gemini.requests
    assert len(calls) == 2
    assert {(c["model"], c["aspect_ratio"], c["image_size"]) for c in calls} == {("gemini-2.5-flash-image", "3:2", None)}
    # usage: summed from the emulator's usageMetadata of both calls.
    prompt_tokens = len(prompt.split())
    image_out = IMAGE_OUTPUT_TOKENS
    output = image_out + caption_tokens(prompt)
    assert result.usage.input_tokens == 2 * prompt_tokens
    assert result.usage.input_tokens_details.text_tokens == 2 * prompt_tokens
    assert result.usage.input_tokens_details.image_tokens == 0
    assert result.usage.output_tokens == 2 * output
    assert result.usage.output_tokens_details.image_tokens == 2 * image_out
    assert result.usage.total_tokens == 2 * (prompt_tokens + output)
    # One job, with both images and the per-image usage stored in its result.
    job = Job.objects.get()
    assert [image["usage"]["imageOutputTokens"] for image in job.result["images"]] == [image_out, image_out]
    assert job.result["usage"]["images"] == 2


def test_images_generate_b64_json_jpeg_and_hd_is_2k_on_a_model_with_sizes(worker, tenants, gemini, sdk):
    result = sdk(tenants.a).images.generate(
        prompt="A red fox in snow", model="gemini-3-pro-image-preview", size="16:9", quality="hd",
        response_format="b64_json", output_format="jpeg", style="vivid", user="user-42")

    assert result.data[0].url is None and result.output_format == "jpeg"
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.format == "JPEG" and image.size == (2048, 1152)
    assert (gemini.last_request["model"], gemini.last_request["aspect_ratio"], gemini.last_request["image_size"]) == \
        ("gemini-3-pro-image-preview", "16:9", "2K")
    # The stored image is the converted one: what the URL would serve.
    job = Job.objects.get()
    assert job.result["contentType"] == "image/jpeg" and job.result["filename"] == "image.jpg"


def test_images_generate_quality_hd_is_ignored_by_a_model_with_a_fixed_size(worker, tenants, gemini, sdk):
    sdk(tenants.a).images.generate(prompt="A quiet harbour", quality="hd")
    assert gemini.last_request["image_size"] is None


def test_images_generate_offline_webp_reports_zero_tokens(worker, tenants, settings, sdk):
    settings.GEMINI_API_KEY = ""
    result = sdk(tenants.a).images.generate(prompt="A paper boat", response_format="b64_json",
                                            output_format="webp", size="1024x1536")
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.format == "WEBP" and image.size == (683, 1024)
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (0, 0, 0)
    assert usage.input_tokens_details.image_tokens == 0 and usage.output_tokens_details.image_tokens == 0


# --- images.edit --------------------------------------------------------------------------

def test_images_edit_with_one_image_sends_it_to_gemini(worker, tenants, gemini, sdk):
    source = png()
    result = sdk(tenants.a).images.edit(image=("cat.png", source, "image/png"), prompt="Give the cat a hat")

    assert len(result.data) == 1
    assert fetched(result.data[0].url)[0] == "image/png"
    sent = decode_inline_parts(gemini.last_request)
    assert [part["data"] for part in sent] == [source]
    assert result.usage.input_tokens_details.image_tokens == REFERENCE_IMAGE_TOKENS


def test_images_edit_with_two_images_sends_both(worker, tenants, gemini, sdk):
    first, second = png(colour=(200, 0, 0)), png((32, 32), (0, 200, 0))
    result = sdk(tenants.a).images.edit(
        image=[("a.png", first, "image/png"), ("b.png", second, "image/png")], prompt="Combine them", n=2,
        response_format="b64_json")

    assert len(result.data) == 2 and all(item.b64_json for item in result.data)
    assert len(gemini.requests) == 2
    for call in gemini.requests:
        assert [part["data"] for part in decode_inline_parts(call)] == [first, second]
    assert result.usage.input_tokens_details.image_tokens == 2 * 2 * REFERENCE_IMAGE_TOKENS


def test_images_edit_refuses_a_mask(worker, tenants, gemini, sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(tenants.a).images.edit(image=("cat.png", png(), "image/png"), mask=("m.png", png(), "image/png"),
                                   prompt="Give the cat a hat")
    error = caught.value.response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == ("unsupported_parameter", "mask", "invalid_request_error")
    assert "mask" in error["message"] and gemini.requests == []


def test_images_edit_refuses_a_file_that_is_not_an_image(worker, tenants, gemini, sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(tenants.a).images.edit(image=("doc.png", b"%PDF-1.7 not an image", "image/png"), prompt="Edit it")
    assert caught.value.response.json()["error"]["code"] == "reference_image_invalid"


# --- models.list --------------------------------------------------------------------------

def test_models_list_names_the_allowed_image_models_default_first(db, tenants, settings, sdk):
    settings.GEMINI_IMAGE_MODELS = ["gemini-3-pro-image-preview", "gemini-2.5-flash-image"]
    models = sdk(tenants.a).models.list()
    assert [model.id for model in models.data] == ["gemini-3-pro-image-preview", "gemini-2.5-flash-image"]
    assert {model.object for model in models.data} == {"model"}


# --- errors as the SDK's typed exceptions -------------------------------------------------

def test_a_wrong_key_is_authentication_error(db, tenants, sdk):
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk("bnt_" + "x" * 40).images.generate(prompt="A cat")
    error = caught.value.response.json()["error"]
    assert error["type"] == "authentication_error" and error["code"].startswith("api_key_")
    assert caught.value.code == error["code"]


def test_a_master_key_is_permission_denied(db, tenants, sdk):
    for call in (lambda c: c.images.generate(prompt="A cat"), lambda c: c.models.list()):
        with pytest.raises(openai.PermissionDeniedError) as caught:
            call(sdk(tenants.master))
        error = caught.value.response.json()["error"]
        assert (error["type"], error["code"]) == ("permission_error", "project_key_required")
        assert "project key" in error["message"]
    assert not Job.objects.exists()


def test_a_bad_size_is_bad_request_naming_the_parameter_and_what_is_accepted(db, tenants, sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(tenants.a).images.generate(prompt="A cat", size="640x480")
    error = caught.value.response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == ("size", "validation_failed", "invalid_request_error")
    assert "1536x1024" in error["message"] and "16:9" in error["message"]


def test_unknown_fields_are_bad_request_naming_them(db, tenants, sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(tenants.a).images.generate(prompt="A cat", extra_body={"colour": "red"})
    assert "colour" in caught.value.response.json()["error"]["message"]


def test_a_model_off_the_list_is_bad_request_listing_the_allowed(db, tenants, sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(tenants.a).images.generate(prompt="A cat", model="imagen-4")
    error = caught.value.response.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_allowed", "model")
    assert "gemini-2.5-flash-image" in error["message"]


def test_a_blocked_prompt_is_bad_request_content_blocked(worker, tenants, gemini, sdk):
    gemini.enqueue(Reply.blocked("IMAGE_SAFETY"))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(tenants.a).images.generate(prompt="Something not allowed")
    error = caught.value.response.json()["error"]
    assert (error["code"], error["type"]) == ("content_blocked", "invalid_request_error")
    assert caught.value.status_code == 400


def test_over_budget_is_rate_limit_error_with_retry_after(worker, tenants, settings, sdk):
    settings.GEMINI_API_KEY = ""
    settings.BANATIE_RATE_LIMIT = "1/h"
    client = sdk(tenants.a)
    client.images.generate(prompt="A first cat")
    with pytest.raises(openai.RateLimitError) as caught:
        client.images.generate(prompt="A second cat")
    response = caught.value.response
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_a_job_still_running_after_the_wait_is_504_naming_it_and_keeps_running(worker, api, tenants, gemini,
                                                                                settings, sdk):
    settings.OPENAI_COMPAT_WAIT_SECONDS = 1
    gemini.latency = 2.5
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(tenants.a).images.generate(prompt="A slow painting")
    error = caught.value.response.json()["error"]
    assert caught.value.status_code == 504 and error["code"] == "job_timeout"
    job = Job.objects.get()
    assert str(job.id) in error["message"]
    assert poll_job(api, tenants.a, str(job.id))["status"] == "succeeded"  # it kept running


def test_unknown_v1_paths_answer_in_openai_shape(db, tenants, live_server):
    response = requests.get(f"{live_server.url}/v1/nothing-here", headers={"Authorization": f"Bearer {tenants.a}"},
                            timeout=10)
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_native_api_errors_keep_their_own_shape(db, tenants, api):
    body = api.post("/api/text-to-image", {"prompt": "A cat", "filename": "cat", "model": "imagen-4"},
                    format="json", **auth(tenants.a)).json()
    assert body["success"] is False and body["code"] == "model_not_allowed" and "error" in body


def test_idempotency_key_replays_the_same_images(worker, tenants, gemini, sdk):
    client = sdk(tenants.a)
    headers = {"Idempotency-Key": "order-77"}
    first = client.images.generate(prompt="A teapot", extra_headers=headers)
    again = client.images.with_raw_response.generate(prompt="A teapot", extra_headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parse().data[0].url == first.data[0].url
    assert len(gemini.requests) == 1


def test_images_belong_to_the_callers_project_and_idempotency_keys_are_per_key(worker, api, tenants, gemini, sdk):
    headers = {"Idempotency-Key": "same-key"}
    a = sdk(tenants.a).images.generate(prompt="A teapot", extra_headers=headers)
    b = sdk(tenants.b).images.generate(prompt="A teapot", extra_headers=headers)
    assert "/api/images/project-a/" in a.data[0].url and "/api/images/project-b/" in b.data[0].url
    assert len(gemini.requests) == 2  # b's key did not replay a's job
    job_a = Job.objects.get(project_id="project-a")
    assert api.get(f"/api/jobs/{job_a.id}", **auth(tenants.b)).status_code == 404
    served = api.get(f"/api/jobs/{job_a.id}", **auth(tenants.a)).json()["data"]["filepath"]
    assert a.data[0].url.endswith(f"/api/images/{served}")
