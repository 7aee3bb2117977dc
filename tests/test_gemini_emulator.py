"""The real google-genai SDK against tests/gemini_emulator.py (no Django, no DB, no network).

These tests double as executable documentation of SDK behaviour we rely on
(see tests/GEMINI_SDK_NOTES.md): error classes, timeout exception, retry
default, request casing.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pydantic
import pytest
from google import genai
from google.genai import errors, types
from PIL import Image, UnidentifiedImageError

try:  # works whether or not tests/ is a package
    from tests.gemini_emulator import BENCH_OPTIONS, GeminiEmulator, Reply, decode_inline_parts
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gemini_emulator import BENCH_OPTIONS, GeminiEmulator, Reply, decode_inline_parts

API_KEY = "test-key-123"
IMAGE_MODEL = "gemini-2.5-flash-image"
TEXT_MODEL = "gemini-2.5-flash"
NO_RETRY = types.HttpRetryOptions(attempts=1)


@pytest.fixture(scope="module")
def emulator():
    with GeminiEmulator() as emu:
        yield emu


@pytest.fixture(autouse=True)
def _clean(emulator):
    emulator.reset()
    emulator.latency = 0.0
    yield
    emulator.reset()


def make_client(emu: GeminiEmulator, **http: object) -> genai.Client:
    # timeout is in MILLISECONDS; a finite one keeps a broken test from hanging.
    opts = {"base_url": emu.base_url, "timeout": 5000, "retry_options": NO_RETRY}
    opts.update(http)
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(**opts))


@pytest.fixture
def client(emulator):
    c = make_client(emulator)
    yield c
    c.close()


def image_config(ratio: str = "1:1") -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"],
        image_config=types.ImageConfig(aspect_ratio=ratio),
    )


def _image_parts(resp: types.GenerateContentResponse, *, thoughts: bool = False):
    return [p for p in resp.parts or [] if p.inline_data and bool(p.thought) == thoughts]


# --------------------------------------------------------------------------- happy paths


def test_image_request_16_9_returns_png_and_records_request(emulator, client):
    resp = client.models.generate_content(
        model=IMAGE_MODEL, contents="a red fox in snow", config=image_config("16:9")
    )
    (img_part,) = _image_parts(resp)
    assert img_part.inline_data.mime_type == "image/png"
    img = Image.open(io.BytesIO(img_part.inline_data.data))  # SDK already base64-decoded
    assert img.format == "PNG" and img.size == (1024, 576)
    assert "a red fox in snow" in resp.text
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.usage_metadata.total_token_count > 0 and resp.model_version == IMAGE_MODEL

    (rec,) = emulator.requests
    assert rec["method"] == "POST"
    assert rec["path"] == f"/v1/models/{IMAGE_MODEL}:generateContent"  # SDK 3.4.0 default: v1
    assert rec["model"] == IMAGE_MODEL and rec["api_version"] == "v1"
    assert rec["headers"]["x-goog-api-key"] == API_KEY
    assert rec["headers"]["x-server-timeout"] == "5"  # derived from HttpOptions.timeout
    gc = rec["json"]["generationConfig"]
    assert gc["responseModalities"] == ["TEXT", "IMAGE"]
    assert gc["imageConfig"] == {"aspectRatio": "16:9"}


def test_image_is_deterministic_per_prompt(client):
    def png(prompt: str) -> bytes:
        r = client.models.generate_content(model=IMAGE_MODEL, contents=prompt, config=image_config())
        return _image_parts(r)[0].inline_data.data

    assert png("cat") == png("cat") != png("dog")
    assert Image.open(io.BytesIO(png("cat"))).size == (1024, 1024)


def test_api_version_override_and_system_instruction(emulator):
    c = make_client(emulator, api_version="v1beta")
    c.models.generate_content(
        model=TEXT_MODEL,
        contents="hi",
        config=types.GenerateContentConfig(system_instruction="You are terse."),
    )
    rec = emulator.last_request
    assert rec["api_version"] == "v1beta"
    assert rec["json"]["systemInstruction"]["parts"] == [{"text": "You are terse."}]


def test_json_schema_request_returns_parsed_json(emulator, client):
    schema = {
        "type": "object",
        "properties": {"enhancedPrompt": {"type": "string"}},
        "required": ["enhancedPrompt"],
    }
    resp = client.models.generate_content(
        model=TEXT_MODEL,
        contents="a castle",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema
        ),
    )
    assert resp.parsed["enhancedPrompt"] == "a castle — enhanced by emulator"
    assert resp.parsed["enhancements"] == ["emulator_enhancement"]
    gc = emulator.last_request["json"]["generationConfig"]
    assert gc["responseMimeType"] == "application/json" and gc["responseJsonSchema"] == schema


def test_pydantic_response_schema_parsed_and_text_reply_override(emulator, client):
    class Enhanced(pydantic.BaseModel):
        enhancedPrompt: str
        detectedLanguage: str

    emulator.text_reply = {"enhancedPrompt": "<<{prompt}>>", "detectedLanguage": "de"}
    resp = client.models.generate_content(
        model=TEXT_MODEL,
        contents="Burg",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=Enhanced
        ),
    )
    assert resp.parsed == Enhanced(enhancedPrompt="<<Burg>>", detectedLanguage="de")
    assert "responseSchema" in emulator.last_request["json"]["generationConfig"]


def test_plain_text_request(client):
    resp = client.models.generate_content(model=TEXT_MODEL, contents="hello")
    assert resp.text == "Emulated answer to: hello"


def test_usage_metadata_has_per_modality_details_as_the_sdk_parses_them(emulator, client):
    from workers.providers.gemini import usage_of

    ref = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(ref, format="PNG")
    resp = client.models.generate_content(
        model="gemini-3-pro-image-preview",
        contents=[types.Part.from_bytes(data=ref.getvalue(), mime_type="image/png"), "a red fox in snow"],
        config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"],
                                           image_config=types.ImageConfig(aspect_ratio="3:2", image_size="2K")),
    )
    meta = resp.usage_metadata
    out = {d.modality: d.token_count for d in meta.candidates_tokens_details}
    assert out[types.MediaModality.IMAGE] == 1290 and sum(out.values()) == meta.candidates_token_count
    inp = {d.modality: d.token_count for d in meta.prompt_tokens_details}
    assert inp == {types.MediaModality.TEXT: 5, types.MediaModality.IMAGE: 258}
    assert meta.total_token_count == meta.prompt_token_count + meta.candidates_token_count
    usage = usage_of(meta, image_call=True)  # what the provider stores per image
    assert (usage.input_tokens, usage.input_text_tokens, usage.input_image_tokens) == (263, 5, 258)
    assert (usage.output_tokens, usage.image_output_tokens) == (meta.candidates_token_count, 1290)
    # What the call asked for, recorded as the tests read it.
    rec = emulator.last_request
    assert (rec["model"], rec["aspect_ratio"], rec["image_size"]) == ("gemini-3-pro-image-preview", "3:2", "2K")
    assert Image.open(io.BytesIO(_image_parts(resp)[0].inline_data.data)).size == (2048, 1365)


def test_image_size_on_gemini_2_5_flash_image_is_400(client):
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(
            model="gemini-2.5-flash-image", contents="a cat",
            config=types.GenerateContentConfig(response_modalities=["IMAGE"],
                                               image_config=types.ImageConfig(image_size="2K")))
    assert caught.value.code == 400


def test_usage_without_details_counts_an_image_calls_output_as_image_tokens():
    from workers.providers.gemini import usage_of

    meta = types.GenerateContentResponseUsageMetadata(prompt_token_count=7, candidates_token_count=1300,
                                                      total_token_count=1307)
    usage = usage_of(meta, image_call=True)
    assert (usage.input_text_tokens, usage.image_output_tokens, usage.total_tokens) == (7, 1300, 1307)
    assert usage_of(None, image_call=True).total_tokens == 0


def test_inline_reference_images_arrive_as_inline_data(emulator, client):
    ref = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(ref, format="JPEG")
    client.models.generate_content(
        model=IMAGE_MODEL,
        contents=[types.Part.from_bytes(data=ref.getvalue(), mime_type="image/jpeg"), "make it blue"],
        config=image_config(),
    )
    parts = emulator.last_request["json"]["contents"][0]["parts"]
    # The SDK serialises Blob as {"data": <urlsafe base64>, "mime_type": ...} (snake_case!).
    assert "inlineData" in parts[0] and parts[0]["inlineData"]["mime_type"] == "image/jpeg"
    assert parts[1] == {"text": "make it blue"}
    (blob,) = decode_inline_parts(emulator.last_request)
    assert blob == {"mime_type": "image/jpeg", "data": ref.getvalue()}


def test_shared_client_across_threads(emulator, client):
    emulator.latency = 0.3
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda i: client.models.generate_content(
                model=IMAGE_MODEL, contents=f"img {i}", config=image_config()),
            range(8)))
    assert time.monotonic() - start < 2.0  # concurrent, not serialised
    assert all(len(_image_parts(r)) == 1 for r in results)
    assert len(emulator.requests) == 8


# --------------------------------------------------------------------------- errors


def test_429_raises_client_error_without_retry(emulator, client):
    emulator.enqueue(Reply.error(429, retry_after=2))
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(model=IMAGE_MODEL, contents="x", config=image_config())
    e = ei.value
    assert e.code == 429 and e.status == "RESOURCE_EXHAUSTED" and "exhausted" in e.message
    assert e.details["error"]["details"][0]["retryDelay"] == "2s"
    assert e.response.headers["retry-after"] == "2"
    assert len(emulator.requests) == 1
    # The key is not in str/repr, but IS reachable via the attached httpx2 response:
    # never log/pickle e.response (pickle.dumps(e) includes it).
    assert API_KEY not in str(e) and API_KEY not in repr(e)
    assert e.response.request.headers["x-goog-api-key"] == API_KEY


def test_500_raises_server_error(emulator, client):
    emulator.enqueue(Reply.error(500))
    with pytest.raises(errors.ServerError) as ei:
        client.models.generate_content(model=IMAGE_MODEL, contents="x", config=image_config())
    assert isinstance(ei.value, errors.APIError)
    assert ei.value.code == 500 and ei.value.status == "INTERNAL"


def test_sdk_does_not_retry_by_default(emulator):
    c = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=emulator.base_url))
    emulator.enqueue(Reply.error(503))
    with pytest.raises(errors.ServerError):
        c.models.generate_content(model=TEXT_MODEL, contents="x")
    assert len(emulator.requests) == 1


def test_sdk_retries_when_retry_options_given(emulator):
    fast = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02, jitter=0)
    c = make_client(emulator, retry_options=fast)
    emulator.enqueue(Reply.error(503), Reply.error(429))
    assert c.models.generate_content(model=TEXT_MODEL, contents="x").text
    assert len(emulator.requests) == 3


def test_delay_longer_than_timeout_raises_httpx2_read_timeout(emulator):
    c = make_client(emulator, timeout=300)  # ms
    emulator.enqueue(Reply.delay(1.5))
    start = time.monotonic()
    with pytest.raises(httpx2.ReadTimeout):
        c.models.generate_content(model=TEXT_MODEL, contents="x")
    assert time.monotonic() - start < 1.2


def test_delay_then_other_reply(emulator, client):
    emulator.enqueue(Reply.delay(0.1, then=Reply.error(503)))
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model=TEXT_MODEL, contents="x")


def test_connection_refused_raises_httpx2_connect_error():
    emu = GeminiEmulator().start()
    url = emu.base_url
    emu.stop()
    c = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=url, timeout=2000))
    with pytest.raises(httpx2.ConnectError):
        c.models.generate_content(model=TEXT_MODEL, contents="x")


def test_dropped_connection_raises_remote_protocol_error(emulator, client):
    emulator.enqueue(Reply.drop_connection())
    with pytest.raises(httpx2.RemoteProtocolError):
        client.models.generate_content(model=TEXT_MODEL, contents="x")


def test_malformed_body_raises_json_decode_error(emulator, client):
    emulator.enqueue(Reply.malformed())
    # models.py does json.loads(response.body) -> plain json.JSONDecodeError (a ValueError).
    with pytest.raises(json.JSONDecodeError):
        client.models.generate_content(model=IMAGE_MODEL, contents="x", config=image_config())


def test_fail_all_until_cleared(emulator, client):
    emulator.fail_all(Reply.error(503))
    for _ in range(2):
        with pytest.raises(errors.ServerError):
            client.models.generate_content(model=TEXT_MODEL, contents="x")
    emulator.clear_fail_all()
    assert client.models.generate_content(model=TEXT_MODEL, contents="x").text


def test_invalid_aspect_ratio_is_400(client):
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(model=IMAGE_MODEL, contents="x", config=image_config("7:3"))
    assert ei.value.code == 400 and ei.value.status == "INVALID_ARGUMENT"


# --------------------------------------------------------------------------- odd answers


def test_safety_block_has_no_parts(emulator, client):
    emulator.enqueue(Reply.blocked("IMAGE_SAFETY"))
    resp = client.models.generate_content(model=IMAGE_MODEL, contents="x", config=image_config())
    assert resp.candidates[0].finish_reason == types.FinishReason.IMAGE_SAFETY
    assert resp.candidates[0].content is None and resp.parts is None and resp.text is None


def test_prompt_blocked(emulator, client):
    emulator.enqueue(Reply.prompt_blocked("PROHIBITED_CONTENT"))
    resp = client.models.generate_content(model=IMAGE_MODEL, contents="x", config=image_config())
    assert resp.candidates is None
    assert resp.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


def test_text_only_answer(emulator, client):
    emulator.enqueue(Reply.text_only("I can't draw that"))
    resp = client.models.generate_content(model=IMAGE_MODEL, contents="x", config=image_config())
    assert resp.text == "I can't draw that" and _image_parts(resp) == []


def test_not_an_image(emulator, client):
    emulator.enqueue(Reply.not_an_image())
    resp = client.models.generate_content(model=IMAGE_MODEL, contents="x", config=image_config())
    (part,) = _image_parts(resp)
    assert part.inline_data.mime_type == "image/png"
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(part.inline_data.data))


def test_thought_image_precedes_real_image(emulator, client):
    emulator.enqueue(Reply.with_thought())
    resp = client.models.generate_content(model=IMAGE_MODEL, contents="x", config=image_config("3:4"))
    (thought,) = _image_parts(resp, thoughts=True)
    (final,) = _image_parts(resp)
    assert resp.parts.index(thought) < resp.parts.index(final)
    assert Image.open(io.BytesIO(final.inline_data.data)).size == (768, 1024)
    assert resp.text == "Here is your image: x"  # .text skips thought parts


def test_arbitrary_json(emulator, client):
    emulator.enqueue(Reply.json({"candidates": [], "modelVersion": "weird"}))
    resp = client.models.generate_content(model=TEXT_MODEL, contents="x")
    assert resp.candidates == [] and resp.model_version == "weird" and resp.text is None


# --------------------------------------------------------------------------- raw HTTP


def _raw(emu: GeminiEmulator, path: str, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(emu.base_url + path, data=b'{"contents": []}',
                                 headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_missing_api_key_is_403_and_unknown_path_404(emulator):
    code, body = _raw(emulator, f"/v1beta/models/{TEXT_MODEL}:generateContent", {})
    assert code == 403 and body["error"]["status"] == "PERMISSION_DENIED"
    code, body = _raw(emulator, "/v1/models", {"x-goog-api-key": "k"})
    assert code == 404 and body["error"]["status"] == "NOT_FOUND"


def test_invalid_key_when_keys_restricted():
    with GeminiEmulator(valid_api_keys={"good"}) as emu:
        c = genai.Client(api_key="bad", http_options=types.HttpOptions(base_url=emu.base_url))
        with pytest.raises(errors.ClientError) as ei:
            c.models.generate_content(model=TEXT_MODEL, contents="x")
        assert ei.value.code == 400 and "API key not valid" in ei.value.message


def test_cli_prints_base_url_and_stops_on_sigterm():
    script = Path(__file__).resolve().parent / "gemini_emulator.py"
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--latency", "0.05"],
                            stdout=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        c = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=base_url))
        assert c.models.generate_content(model=TEXT_MODEL, contents="ping").text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- bench options

def test_bench_options_count_instead_of_recording_and_keep_the_reply_shape():
    with GeminiEmulator(**BENCH_OPTIONS) as emu:
        assert emu._server.request_queue_size == 4096
        assert emu._server.RequestHandlerClass.disable_nagle_algorithm is True
        c = make_client(emu)

        def png(prompt: str, ratio: str = "1:1") -> bytes:
            r = c.models.generate_content(model=IMAGE_MODEL, contents=prompt, config=image_config(ratio))
            return _image_parts(r)[0].inline_data.data

        first = png("cat")
        assert png("cat") == first  # rendered once, reused
        img = Image.open(io.BytesIO(png("a red fox", "16:9")))
        assert img.format == "PNG" and img.size == (1024, 576)
        assert emu.requests == [] and emu.last_request is None and emu.served == 3
        emu.reset()
        assert emu.served == 0


def test_cli_bench_defaults_answer_stdin_commands_and_stop_on_eof():
    script = Path(__file__).resolve().parent / "gemini_emulator.py"
    proc = subprocess.Popen([sys.executable, str(script), "--bench-defaults", "--port", "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")

        def ask(command: str) -> str:
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()

        assert ask("latency 0.05") == "ok latency 0.05"
        c = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=base_url, timeout=5000))
        assert c.models.generate_content(model=TEXT_MODEL, contents="ping").text
        assert ask("count") == "count 1"
        assert ask("launch") == "error unknown command 'launch'"
        proc.stdin.close()
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
