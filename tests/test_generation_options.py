"""model, imageSize and n on the native generation endpoints: what the client gets, what
Gemini (the emulator, through the real SDK) received, and what is stored."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.jobs.models import Job
from tests.conftest import auth
from tests.gemini_emulator import Reply


def t2i(api, key: str, **body):  # type: ignore[no-untyped-def]
    return api.post("/api/text-to-image", {"prompt": "A lighthouse at dusk", "filename": "lighthouse",
                                           "autoEnhance": False, **body}, format="json", **auth(key))


def stored_images(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file() and "_uploads" not in p.parts] if root.exists() else []


def test_text_to_image_model_and_image_size_reach_gemini(worker, api, tenants, gemini):
    response = t2i(api, tenants.a, model="gemini-3-pro-image-preview", imageSize="2K", aspectRatio="4:3")
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["model"] == "gemini-3-pro-image-preview" and (data["width"], data["height"]) == (2048, 1536)
    call = gemini.last_request
    assert (call["model"], call["aspect_ratio"], call["image_size"]) == ("gemini-3-pro-image-preview", "4:3", "2K")


def test_text_to_image_default_model_sends_no_image_size(worker, api, tenants, gemini):
    assert t2i(api, tenants.a).status_code == 200
    assert (gemini.last_request["model"], gemini.last_request["image_size"]) == ("gemini-2.5-flash-image", None)


def test_openai_model_names_mean_the_default_model(worker, api, tenants, gemini):
    assert t2i(api, tenants.a, model="gpt-image-1").status_code == 200
    assert gemini.last_request["model"] == "gemini-2.5-flash-image"


def test_a_model_off_the_list_is_refused_listing_the_allowed_ones(db, api, tenants, settings):
    settings.GEMINI_IMAGE_MODELS = ["gemini-2.5-flash-image", "gemini-3-pro-image-preview"]
    body = t2i(api, tenants.a, model="gemini-3.1-flash-image-preview").json()
    assert (body["code"], body["field"]) == ("model_not_allowed", "model")
    assert body["details"]["allowed"] == ["gemini-2.5-flash-image", "gemini-3-pro-image-preview"]
    assert not Job.objects.exists()


def test_image_size_on_a_model_with_a_fixed_size_is_refused_naming_it(db, api, tenants):
    response = t2i(api, tenants.a, imageSize="2K")
    body = response.json()
    assert response.status_code == 400 and body["code"] == "image_size_unsupported"
    assert "gemini-2.5-flash-image" in body["message"] and "gemini-3-pro-image-preview" in body["details"]["modelsWithSizes"]
    assert not Job.objects.exists()


def test_n_images_are_n_parallel_calls_in_one_job(worker, api, tenants, gemini, settings):
    response = t2i(api, tenants.a, n=3)
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert len(gemini.requests) == 3 and Job.objects.count() == 1
    assert [image["filename"] for image in data["images"]] == ["lighthouse-1.png", "lighthouse-2.png", "lighthouse-3.png"]
    assert data["filepath"] == data["images"][0]["filepath"]
    for image in data["images"]:
        served = api.get(f"/api/images/{image['filepath']}")
        assert served.status_code == 200 and b"".join(served.streaming_content).startswith(b"\x89PNG")
    assert len(stored_images(settings)) == 3


def test_a_failed_image_fails_the_job_reports_each_image_and_stores_none(worker, api, tenants, gemini, settings):
    gemini.enqueue(Reply.default(), Reply.blocked("IMAGE_SAFETY"))
    response = t2i(api, tenants.a, n=2)
    body = response.json()
    assert response.status_code == 422 and body["code"] == "content_blocked"
    outcomes = sorted(image["status"] for image in body["details"]["images"])
    assert outcomes == ["failed", "succeeded"] and "1 of 2 images failed" in body["message"]
    assert stored_images(settings) == []  # the image that did succeed was not kept


def test_generate_multipart_takes_model_image_size_and_n(worker, api, tenants, gemini):
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (9, 90, 200)).save(buffer, "PNG")
    response = api.post("/api/generate", {
        "prompt": "Make it a poster", "filename": "poster", "model": "gemini-3.1-flash-image-preview",
        "imageSize": "1K", "n": "2", "files": [SimpleUploadedFile("ref.png", buffer.getvalue(), "image/png")],
    }, format="multipart", **auth(tenants.a))
    assert response.status_code == 200, response.json()
    assert len(response.json()["data"]["images"]) == 2
    assert {(c["model"], c["image_size"]) for c in gemini.requests} == {("gemini-3.1-flash-image-preview", "1K")}


def test_offline_images_have_the_size_class_asked_for_and_zero_usage(worker, api, tenants, settings):
    settings.GEMINI_API_KEY = ""
    response = t2i(api, tenants.a, model="gemini-3-pro-image-preview", imageSize="2K", aspectRatio="16:9", n=2)
    data = response.json()["data"]
    assert data["provider"] == "offline" and (data["width"], data["height"]) == (2048, 1152)
    usage = Job.objects.get().result["usage"]
    assert usage["images"] == 2
    assert {usage[name] for name in ("inputTokens", "outputTokens", "imageOutputTokens", "totalTokens")} == {0}


def test_n_is_bounded(db, api, tenants):
    body = t2i(api, tenants.a, n=5).json()
    assert body["code"] == "validation_failed" and body["field"] == "n"


def test_another_projects_key_cannot_read_the_images_job(worker, api, tenants, gemini):
    job_id = t2i(api, tenants.a, n=2).json()["data"]["jobId"]
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.b)).status_code == 404
    assert len(api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()["data"]["images"]) == 2


def test_the_n_upstream_calls_of_a_job_run_at_once(worker, api, tenants, gemini):
    gemini.latency = 0.5  # long enough for three calls to overlap, however slow the machine
    assert t2i(api, tenants.a, n=3).status_code == 200
    assert gemini.max_in_flight == 3


@pytest.mark.slow
def test_the_gevent_worker_runs_the_n_calls_of_a_job_at_once(stack_factory, tenants, emulator):
    """The Procfile's worker (Celery's gevent pool): the n calls are greenlets, all in flight together."""
    stack = stack_factory()
    emulator.latency = 0.5
    status, body = stack.http("POST", "/api/text-to-image", {
        "prompt": "A lighthouse at dusk", "filename": "lighthouse", "autoEnhance": False, "n": 3,
        "model": "gemini-3-pro-image-preview", "imageSize": "1K"}, headers={"X-API-Key": tenants.a}, timeout=60)
    assert status == 200, body
    assert len(body["data"]["images"]) == 3 and emulator.max_in_flight == 3
    assert {(c["model"], c["image_size"]) for c in emulator.requests} == {("gemini-3-pro-image-preview", "1K")}


def _image_model_settings(**env: str) -> tuple[int, str, str]:
    import os
    import subprocess
    import sys

    probe = ("import django; django.setup(); from django.conf import settings; "
             "print(settings.GEMINI_IMAGE_MODEL, ','.join(settings.GEMINI_IMAGE_MODELS))")
    base = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_IMAGE_MODEL")}
    proc = subprocess.run([sys.executable, "-c", probe], env={**base, "SECRET_KEY": "x", **env},
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout.strip(), proc.stderr


def test_image_model_settings_default_first_and_fail_loudly_when_they_disagree():
    assert _image_model_settings()[1] == ("gemini-2.5-flash-image gemini-2.5-flash-image,gemini-3-pro-image-preview,"
                                          "gemini-3.1-flash-image-preview")
    assert _image_model_settings(GEMINI_IMAGE_MODELS="m-1, m-2")[1] == "m-1 m-1,m-2"
    assert _image_model_settings(GEMINI_IMAGE_MODELS="m-1,m-2", GEMINI_IMAGE_MODEL="m-2")[1] == "m-2 m-2,m-1"
    # Set alone (an older deployment): the model is put first.
    assert _image_model_settings(GEMINI_IMAGE_MODEL="m-9")[1].startswith("m-9 m-9,gemini-2.5-flash-image,")
    code, _, stderr = _image_model_settings(GEMINI_IMAGE_MODELS="m-1,m-2", GEMINI_IMAGE_MODEL="m-9")
    assert code != 0 and "Environment variable GEMINI_IMAGE_MODEL='m-9' is not one of GEMINI_IMAGE_MODELS" in stderr
