"""Image generation through the queue: /api/text-to-image, /api/generate, /api/images."""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
import os
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.jobs.models import Job
from workers.providers.templates import IMAGE_ASPECT_RATIOS
from tests.conftest import GEMINI_TEST_KEY, auth, poll_job
from tests.gemini_emulator import Reply, decode_inline_parts


@pytest.fixture(autouse=True)
def media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def stored_files(media) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()) if media.exists() else []


def png(size=(64, 48), fmt="PNG", color=(200, 30, 30)) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def t2i(api, key, **body):  # type: ignore[no-untyped-def]
    headers = body.pop("headers", {})
    payload = {"prompt": "A beautiful sunset over mountains", "filename": "test_sunset", **body}
    return api.post("/api/text-to-image", payload, format="json", **auth(key), **headers)


def generate(api, key, files=(), **fields):  # type: ignore[no-untyped-def]
    headers = fields.pop("headers", {})
    data = {"prompt": "A majestic mountain landscape at sunset", "filename": "mountain-sunset", **fields}
    if files:
        data["files"] = list(files)
    return api.post("/api/generate", data, format="multipart", **auth(key), **headers)


def fetch_image(api, data):  # type: ignore[no-untyped-def]
    path = data["url"].split("://", 1)[1].split("/", 1)[1]
    r = api.get("/" + path)
    assert r.status_code == 200
    return r, b"".join(r.streaming_content)


# --- success ---------------------------------------------------------------------------

def test_text_to_image_offline_returns_documented_data_and_a_real_image(api, worker, tenants, media):
    r = t2i(api, tenants.a, aspectRatio="16:9", autoEnhance=False)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["success"] is True and body["message"] == "Image generated successfully"
    data = body["data"]
    assert data["filename"] == "test_sunset.png" and data["provider"] == "offline"
    assert re.fullmatch(r"project-a/\d{4}/\d{2}/[0-9a-f]{32}-test_sunset\.png", data["filepath"])
    assert data["url"] == f"http://testserver/api/images/{data['filepath']}"
    assert (data["width"], data["height"], data["contentType"]) == (1024, 576, "image/png")
    assert data["generatedAt"].endswith("Z") and data["model"] and "description" in data
    assert "promptEnhancement" not in data
    image_response, content = fetch_image(api, data)
    assert image_response["Content-Type"] == "image/png"
    assert image_response["Content-Length"] == str(len(content))
    assert image_response["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in image_response["Cache-Control"] and image_response["ETag"]
    assert Image.open(io.BytesIO(content)).size == (1024, 576)
    assert stored_files(media) == [data["filepath"]]


def test_text_to_image_enhances_by_default(api, worker, tenants, gemini):
    r = t2i(api, tenants.a, enhancementOptions={"template": "illustration", "mood": "peaceful"})
    assert r.status_code == 200, r.json()
    enhancement = r.json()["data"]["promptEnhancement"]
    assert enhancement["originalPrompt"] == "A beautiful sunset over mountains"
    assert {"enhancedPrompt", "detectedLanguage", "appliedTemplate", "enhancements"} <= set(enhancement)
    text_call, image_call = gemini.requests
    assert text_call["model"] == "gemini-2.5-flash" and image_call["model"] == "gemini-2.5-flash-image"
    assert "peaceful" in text_call["json"]["systemInstruction"]["parts"][0]["text"]
    assert gemini.prompt_of(image_call) == enhancement["enhancedPrompt"]


@pytest.mark.parametrize("ratio", IMAGE_ASPECT_RATIOS)
def test_every_aspect_ratio_reaches_gemini_and_comes_back(api, worker, tenants, gemini, ratio):
    r = t2i(api, tenants.a, aspectRatio=ratio, autoEnhance=False)
    assert r.status_code == 200, r.json()
    (sent,) = gemini.requests
    assert sent["model"] == "gemini-2.5-flash-image" and sent["api_version"] == "v1beta"
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert sent["headers"]["x-goog-api-key"] == GEMINI_TEST_KEY
    config = sent["json"]["generationConfig"]
    assert config["imageConfig"]["aspectRatio"] == ratio
    assert {m.upper() for m in config["responseModalities"]} == {"IMAGE", "TEXT"}
    data = r.json()["data"]
    _, content = fetch_image(api, data)
    w, h = Image.open(io.BytesIO(content)).size
    rw, rh = (int(n) for n in ratio.split(":"))
    assert abs(w / h - rw / rh) < 0.01 and (w, h) == (data["width"], data["height"])
    assert data["provider"] == "gemini" and data["description"].startswith("Here is your image")


def test_thought_parts_are_skipped(api, worker, tenants, gemini):
    gemini.enqueue(Reply.with_thought())
    r = t2i(api, tenants.a, autoEnhance=False, aspectRatio="1:1")
    assert r.status_code == 200
    assert (r.json()["data"]["width"], r.json()["data"]["height"]) == (1024, 1024)


def test_generate_sends_reference_images_by_detected_type(api, worker, tenants, gemini, media):
    files = [
        SimpleUploadedFile("ref1.jpg", png(fmt="JPEG"), content_type="image/jpeg"),
        SimpleUploadedFile("ref2.png", png(fmt="WEBP"), content_type="image/png"),  # really WebP
    ]
    r = generate(api, tenants.a, files, autoEnhance="false", aspectRatio="4:3")
    assert r.status_code == 200, r.json()
    (sent,) = gemini.requests
    parts = decode_inline_parts(sent)
    assert [p["mime_type"] for p in parts] == ["image/jpeg", "image/webp"]
    assert parts[0]["data"] == files[0].file.getvalue() if hasattr(files[0], "file") else True
    assert r.json()["data"]["filename"] == "mountain-sunset.png"
    assert stored_files(media) == [r.json()["data"]["filepath"]]  # references cleaned up


@pytest.mark.parametrize("value,enhanced", [("true", True), ("1", True), ("false", False), ("0", False)])
def test_generate_accepts_form_booleans(api, worker, tenants, value, enhanced):
    r = generate(api, tenants.a, autoEnhance=value)
    assert r.status_code == 200, r.json()
    assert ("promptEnhancement" in r.json()["data"]) is enhanced


def test_generate_takes_enhancement_options_as_json_string(api, worker, tenants):
    r = generate(api, tenants.a, autoEnhance="true", enhancementOptions='{"template": "comic", "lighting": "neon"}')
    assert r.status_code == 200, r.json()
    enhancement = r.json()["data"]["promptEnhancement"]
    assert enhancement["appliedTemplate"] == "comic" and "neon" in enhancement["enhancedPrompt"]


def test_same_filename_never_overwrites(api, worker, tenants, media):
    one = t2i(api, tenants.a, autoEnhance=False).json()["data"]
    two = t2i(api, tenants.a, autoEnhance=False).json()["data"]
    assert one["filepath"] != two["filepath"] and len(stored_files(media)) == 2


def test_async_generation_polls_to_the_same_data(api, worker, tenants):
    r = t2i(api, tenants.a, autoEnhance=False, headers={"HTTP_PREFER": "respond-async"})
    assert r.status_code == 202
    done = poll_job(api, tenants.a, r.json()["jobId"])
    assert done["status"] == "succeeded" and done["data"]["filename"] == "test_sunset.png"
    assert done["data"]["jobId"] == r.json()["jobId"]
    assert api.get(f"/api/jobs/{r.json()['jobId']}", **auth(tenants.b)).status_code == 404


# --- typed failures --------------------------------------------------------------------

@pytest.mark.parametrize(
    "reply,status,code",
    [
        (Reply.blocked("IMAGE_SAFETY"), 422, "content_blocked"),
        (Reply.blocked("PROHIBITED_CONTENT"), 422, "content_blocked"),
        (Reply.prompt_blocked("SAFETY"), 422, "content_blocked"),
        (Reply.text_only("I can't draw that."), 422, "no_image_returned"),
        (Reply.not_an_image(), 502, "upstream_invalid_response"),
        (Reply.malformed(), 502, "upstream_invalid_response"),
        (Reply.error(400, "bad model"), 502, "upstream_rejected"),
    ],
)
def test_final_upstream_outcomes_are_typed_and_store_nothing(api, worker, tenants, gemini, media, reply, status, code):
    gemini.enqueue(reply)
    r = t2i(api, tenants.a, autoEnhance=False)
    assert r.status_code == status, r.json()
    assert r.json()["code"] == code and r.json()["success"] is False
    assert len(gemini.requests) == 1
    assert stored_files(media) == []
    if code == "no_image_returned":
        assert r.json()["details"]["modelText"] == "I can't draw that."
    if code == "content_blocked":
        assert r.json()["details"]["reason"] in ("IMAGE_SAFETY", "PROHIBITED_CONTENT", "SAFETY")


@pytest.mark.parametrize("reply", [Reply.error(429), Reply.error(500), Reply.error(503), Reply.drop_connection()])
def test_passing_upstream_faults_are_retried_then_503(api, worker, tenants, gemini, media, settings, reply):
    settings.UPSTREAM_MAX_ATTEMPTS = 3
    gemini.fail_all(reply)
    r = t2i(api, tenants.a, autoEnhance=False)
    gemini.clear_fail_all()
    assert r.status_code == 503 and r.json()["code"] == "upstream_unavailable"
    assert int(r["Retry-After"]) >= 1
    assert len(gemini.requests) == 3 and stored_files(media) == []


def test_connection_refused_is_503(api, worker, tenants, settings, media):
    settings.GEMINI_API_KEY = "k"
    settings.GEMINI_BASE_URL = "http://127.0.0.1:1"
    settings.UPSTREAM_MAX_ATTEMPTS = 2
    r = t2i(api, tenants.a, autoEnhance=False)
    assert r.status_code == 503 and r.json()["code"] == "upstream_unavailable"
    assert stored_files(media) == []


# --- validation ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "body,field",
    [
        ({"prompt": "ab"}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"filename": "../x"}, "filename"),
        ({"filename": "a/b"}, "filename"),
        ({"filename": "a\x00b"}, "filename"),
        ({"filename": "x" * 101}, "filename"),
        ({"filename": "photo.png"}, "filename"),
        ({"filename": ""}, "filename"),
        ({"aspectRatio": "16:10"}, "aspectRatio"),
        ({"autoEnhance": "true"}, "autoEnhance"),
        ({"enhancementOptions": {"template": "anime"}}, "enhancementOptions.template"),
        ({"meta": {"tags": "demo"}}, "meta.tags"),
        ({"meta": {"tags": ["x" * 51]}}, "meta.tags[0]"),
        ({"aspect_ratio": "16:9"}, "aspect_ratio"),
    ],
)
def test_text_to_image_validation_boundaries(api, tenants, db, body, field):
    r = t2i(api, tenants.a, **body)
    assert r.status_code == 400, r.json()
    assert field in r.json()["details"], r.json()
    assert Job.objects.count() == 0


def test_aspect_ratio_error_lists_allowed_values(api, tenants, db):
    r = t2i(api, tenants.a, aspectRatio="16:10")
    assert "21:9" in r.json()["details"]["aspectRatio"][0]


def test_snake_case_field_suggests_camel_case(api, tenants, db):
    r = t2i(api, tenants.a, aspect_ratio="16:9")
    assert "Did you mean 'aspectRatio'?" in r.json()["details"]["aspect_ratio"][0]


@pytest.mark.parametrize("prompt,filename", [("abc", "x" * 100), ("x" * 2000, "a_b-C9")])
def test_text_to_image_accepts_the_boundaries(api, worker, tenants, prompt, filename):
    r = t2i(api, tenants.a, prompt=prompt, filename=filename, autoEnhance=False,
            headers={"HTTP_PREFER": "respond-async"})
    assert r.status_code == 202, r.json()


def test_text_to_image_needs_json(api, tenants, db):
    r = api.post("/api/text-to-image", {"prompt": "abc", "filename": "x"}, format="multipart", **auth(tenants.a))
    assert r.status_code == 415
    assert r.json()["code"] == "unsupported_media_type" and "application/json" in r.json()["message"]


def test_generate_needs_multipart(api, tenants, db):
    r = api.post("/api/generate", {"prompt": "abc", "filename": "x"}, format="json", **auth(tenants.a))
    assert r.status_code == 415 and "multipart/form-data" in r.json()["message"]


def test_generate_prompt_bounds(api, tenants, db):
    assert generate(api, tenants.a, prompt="x" * 5001).status_code == 400
    assert generate(api, tenants.a, prompt="").json()["error"] == "Validation failed: Prompt is required"


def test_generate_refuses_more_than_three_files(api, tenants, db, media):
    files = [SimpleUploadedFile(f"r{i}.png", png(), content_type="image/png") for i in range(4)]
    r = generate(api, tenants.a, files)
    assert r.status_code == 400 and "At most 3" in r.json()["details"]["files"][0]
    assert stored_files(media) == []


def test_generate_refuses_file_over_5mb_naming_it(api, tenants, db, media):
    big = png() + b"\0" * (5 * 1024 * 1024)
    r = generate(api, tenants.a, [SimpleUploadedFile("huge.png", big, content_type="image/png")])
    assert r.status_code == 413
    body = r.json()
    assert body["code"] == "payload_too_large" and body["details"]["file"] == "huge.png"
    assert body["details"]["limit"] == 5 * 1024 * 1024 and stored_files(media) == []


@pytest.mark.parametrize(
    "name,content,detected",
    [
        ("anim.png", png(fmt="GIF"), "image/gif"),
        ("doc.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3 fake pdf", "application/pdf"),
        ("page.jpg", b"<html><script>alert(1)</script></html>", "text/html"),
        ("cut.png", png()[:40], "image/png"),
        ("head.png", png()[:20], "image/png"),
    ],
)
def test_generate_refuses_non_images_naming_detected_type(api, tenants, db, media, name, content, detected):
    r = generate(api, tenants.a, [SimpleUploadedFile(name, content, content_type="image/png")])
    assert r.status_code == 400, r.json()
    body = r.json()
    assert body["code"] == "reference_image_invalid" and body["error"] == "Reference image validation failed"
    assert body["details"]["file"] == name and body["details"]["detectedType"] == detected
    assert "PNG, JPEG, WebP" in body["message"]
    assert stored_files(media) == [] and Job.objects.count() == 0


def test_generate_refuses_decompression_bomb(api, tenants, db, media):
    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, "PNG")  # 64 Mpx in a few KB
    r = generate(api, tenants.a, [SimpleUploadedFile("bomb.png", buf.getvalue(), content_type="image/png")])
    assert r.status_code == 400 and r.json()["code"] == "reference_image_invalid"
    assert "pixels" in r.json()["message"]


def test_whole_body_over_limit_is_413_json(api, tenants, db, settings):
    settings.MAX_REQUEST_BYTES = 1024
    r = generate(api, tenants.a, [SimpleUploadedFile("a.png", png((300, 300)) + b"\0" * 4096)])
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


# --- serving images --------------------------------------------------------------------

@pytest.mark.parametrize(
    "path",
    ["/api/images/../banatie/settings.py", "/api/images/%2e%2e/%2e%2e/etc/passwd.png",
     "/api/images/project-a/2026/11/missing.png", "/api/images/project-a", "/api/images/project-a/",
     "/api/images/", "/api/images/a%00b.png", "/api/images/project-a/../../x.png"],
)
def test_images_route_never_leaks_files(api, path, db):
    r = api.get(path)
    assert r.status_code == 404
    assert r["Content-Type"] == "application/json"


def test_reference_uploads_are_not_servable(api, tenants, db, media):
    from apps.generation.storage import reference_save

    key = reference_save(project="project-a", mime_type="image/png", data=png())
    assert (media / key).exists()
    inner = key.removeprefix("_uploads/")
    for path in (key, f"project-a/../{key}", f"project-a/%2e%2e/{key}", f"x/..%2f{key}", f"./{key}"):
        r = api.get(f"/api/images/{path}")
        assert r.status_code == 404 and r["Content-Type"] == "application/json", path
    assert api.get(f"/api/images/{inner}").status_code == 404


def test_image_etag_gives_304(api, worker, tenants):
    data = t2i(api, tenants.a, autoEnhance=False).json()["data"]
    first, _ = fetch_image(api, data)
    again = api.get(f"/api/images/{data['filepath']}", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_storage_keys_are_unguessable(api, worker, tenants):
    keys = [t2i(api, tenants.b, autoEnhance=False).json()["data"]["filepath"] for _ in range(3)]
    randoms = [os.path.basename(k).split("-", 1)[0] for k in keys]
    assert len(set(randoms)) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", x) for x in randoms)
    assert all(k.startswith("project-b/") for k in keys)


def test_filename_must_be_a_json_string(api, tenants, db):
    r = t2i(api, tenants.a, filename=12345)
    assert r.status_code == 400 and "received integer" in r.json()["details"]["filename"][0]


def test_offline_language_detection_is_thread_safe():
    from workers.providers.offline import detect_language

    with ThreadPoolExecutor(16) as pool:
        results = set(pool.map(lambda _: detect_language("A mountain landscape with a river and tall pine trees"),
                               range(64)))
    assert results == {"en"}


def test_generate_refuses_a_reference_over_the_pixel_limit_from_its_header(api, tenants, db, media, settings):
    buf = io.BytesIO()
    Image.new("RGB", (6000, 6000), (10, 20, 30)).save(buf, "PNG")  # ~100 KB, 36 Mpx
    assert len(buf.getvalue()) < 500_000
    r = generate(api, tenants.a, [SimpleUploadedFile("huge.png", buf.getvalue(), content_type="image/png")])
    assert r.status_code == 400 and r.json()["code"] == "reference_image_invalid"
    assert "6000x6000" in r.json()["message"] and str(settings.MAX_REFERENCE_PIXELS) in r.json()["message"]
    assert stored_files(media) == [] and Job.objects.count() == 0


def test_a_reference_that_only_a_full_decode_finds_broken_fails_its_job(api, worker, tenants, gemini, media):
    whole = png((256, 192), fmt="JPEG")
    cut = whole[: len(whole) // 2]  # a cut-off download: header fine, pixels missing
    r = generate(api, tenants.a, [SimpleUploadedFile("cut.jpg", cut, content_type="image/jpeg")])
    assert r.status_code == 400, r.json()
    body = r.json()
    assert body["code"] == "reference_image_corrupt" and body["details"]["file"] == "cut.jpg"
    assert body["jobId"] and len(gemini.requests) == 0
    assert stored_files(media) == []  # the upload was released when the job ended


@pytest.mark.parametrize("given,suggested", [("cat.png", "cat"), ("my cat", "my-cat"), ("a/b.jpeg", "a-b")])
def test_a_bad_filename_says_what_is_allowed_and_suggests_one(api, tenants, db, given, suggested):
    r = api.post("/api/text-to-image", {"prompt": "a cat on a mat", "filename": given}, format="json",
                 **auth(tenants.a))
    assert r.status_code == 400 and r.json()["field"] == "filename"
    message = r.json()["message"]
    assert "letters, digits, '_' or '-'" in message and "extension is added for you" in message
    assert f"Try '{suggested}'." in message and "Enter a valid value" not in message
