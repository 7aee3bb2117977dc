"""Every curl example in README.md and docs/*.md runs against a live server.

A ```bash block containing `curl` is executed (in order, per file) with the host replaced
by the live server and $MASTER_KEY / $PROJECT_KEY set. The README's blocks run in one shell
session, as a reader types them (each uses what the previous one exported). Each HTTP status it gets must be
below 400, unless the line before the block says `<!-- expect: 401 401 -->` (the statuses
of its requests, in order; `200|409` where the answer depends on timing). Blocks that set their own curl --write-out are not counted.

A ```python block after `<!-- run: receiver -->` (docs/webhooks.md) is a webhook receiver:
it runs as a process with WEBHOOK_SECRET and PORT set, and must print the event type and job
id of a real delivery it verified.

A ```python block after `<!-- run: openai -->` (docs/openai-compatibility.md) is run as a
process with the host replaced and $PROJECT_KEY set, through the real `openai` SDK; it must
exit 0.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:<!-- expect: ([\d |]+) -->\n)?```bash\n(.*?)```", re.S)
RECEIVER = re.compile(r"<!-- run: receiver -->\n```python\n(.*?)```", re.S)
OPENAI_EXAMPLE = re.compile(r"<!-- run: openai -->\n```python\n(.*?)```", re.S)
# curl wrapper: record each request's status on stderr without touching stdout.
PRELUDE = """curl() { command curl --write-out '%{stderr}HTTPSTATUS:%{http_code}\\n' "$@"; }\n"""

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def blocks(path: Path) -> list[tuple[list[set[int]] | None, str]]:
    found = []
    for expect, body in BLOCK.findall(path.read_text()):
        if "curl " in body:
            found.append(([{int(x) for x in item.split("|")} for item in expect.split()] if expect else None, body))
    return found


def matches(statuses: list[int], expected: list[set[int]]) -> bool:
    return len(statuses) == len(expected) and all(s in allowed for s, allowed in zip(statuses, expected))


def run_block(body: str, *, base_url: str, env: dict[str, str], cwd: Path) -> tuple[str, list[int]]:
    script = PRELUDE + body.replace("http://localhost:3000", base_url)
    proc = subprocess.run(["bash", "-e", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    statuses = [int(s) for s in re.findall(r"HTTPSTATUS:(\d{3})", proc.stderr)]
    assert proc.returncode == 0, f"block failed ({proc.returncode}):\n{body}\n{proc.stderr}"
    return proc.stdout, statuses


def capture_keys(stdout: str, env: dict[str, str]) -> None:
    """The README's flow: keys printed by one block are used by the next."""
    for line in stdout.splitlines():
        try:
            body = json.loads(line)
        except ValueError:
            continue
        if isinstance(body, dict) and "apiKey" in body:
            kind = body.get("type") or body.get("metadata", {}).get("type")
            env["MASTER_KEY" if kind == "master" else "PROJECT_KEY"] = body["apiKey"]


def check_file(path: Path, *, base_url: str, env: dict[str, str], cwd: Path) -> None:
    examples = blocks(path)
    assert examples, f"{path.name} has no curl example"
    for expected, body in examples:
        stdout, statuses = run_block(body, base_url=base_url, env=env, cwd=cwd)
        capture_keys(stdout, env)
        if expected is not None:
            assert matches(statuses, expected), f"{path.name}: expected {expected}, got {statuses} for:\n{body}"
        else:
            assert statuses and all(s < 400 for s in statuses), f"{path.name}: got {statuses} for:\n{body}\n{stdout}"


def test_readme_quick_start_works_on_a_fresh_installation(worker, live_server, tmp_path):
    import os

    examples = blocks(ROOT / "README.md")
    marker = "__BLOCK_DONE__"
    session = "".join(f"{body}\necho {marker} >&2\n" for _, body in examples)
    session += 'echo "MASTER_KEY=$MASTER_KEY PROJECT_KEY=$PROJECT_KEY"\n'
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    script = PRELUDE + session.replace("http://localhost:3000", live_server.url)
    proc = subprocess.run(["bash", "-e", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"the quick start failed:\n{proc.stderr}"
    per_block = [[int(s) for s in re.findall(r"HTTPSTATUS:(\d{3})", chunk)] for chunk in proc.stderr.split(marker)]
    for (expected, body), statuses in zip(examples, per_block):
        if expected is not None:
            assert matches(statuses, expected), f"expected {expected}, got {statuses} for:\n{body}"
        else:
            assert statuses and all(s < 400 for s in statuses), f"got {statuses} for:\n{body}"
    keys = dict(item.split("=", 1) for item in proc.stdout.strip().splitlines()[-1].split())
    assert keys["MASTER_KEY"].startswith("bnt_") and keys["PROJECT_KEY"].startswith("bnt_")
    assert proc.stdout.strip().splitlines()[-2].endswith("True")  # the downloaded file is a PNG
    assert (tmp_path / "sunset.png").stat().st_size > 1000


@pytest.mark.parametrize("doc", [p for p in DOCS if p.parent.name == "docs" and blocks(p)], ids=lambda p: p.name)
def test_copied_curl_examples_from_docs_work(worker, live_server, tenants, tmp_path, settings, doc):
    import os

    # The webhook examples register https://example.com/..., which this machine cannot
    # resolve; the address rules are tested in tests/test_webhooks.py.
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MASTER_KEY": tenants.master, "PROJECT_KEY": tenants.a}
    check_file(doc, base_url=live_server.url, env=env, cwd=tmp_path)


def test_the_webhook_receiver_example_verifies_a_real_delivery(worker, live_server, tenants, tmp_path, settings):
    import os
    import select
    import sys

    import requests

    from banatie.runner import free_port
    from tests.conftest import wait_for

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver listens on 127.0.0.1
    settings.GEMINI_API_KEY = ""
    code = RECEIVER.search((ROOT / "docs" / "webhooks.md").read_text())
    assert code, "docs/webhooks.md has no receiver example"
    (tmp_path / "receiver.py").write_text(code.group(1))
    port = free_port()
    headers = {"X-API-Key": tenants.a}
    created = requests.post(f"{live_server.url}/api/webhooks", json={"url": f"http://127.0.0.1:{port}/webhooks"},
                            headers=headers, timeout=10).json()
    proc = subprocess.Popen([sys.executable, str(tmp_path / "receiver.py")], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "WEBHOOK_SECRET": created["secret"], "PORT": str(port)})
    try:
        def listening() -> bool:
            try:
                return requests.post(f"http://127.0.0.1:{port}/", data=b"{}", timeout=1).status_code == 400
            except requests.ConnectionError:
                return False

        wait_for(listening, 15, "the receiver to listen")  # an unsigned request: refused, 400
        job = requests.post(f"{live_server.url}/api/text-to-image", headers={**headers, "Prefer": "respond-async"},
                            json={"prompt": "A lighthouse", "filename": "lighthouse", "autoEnhance": False},
                            timeout=10).json()
        assert select.select([proc.stdout], [], [], 30)[0], "the receiver printed nothing within 30 s"
        line = proc.stdout.readline().split()
        assert line[:3] == ["job.succeeded", job["jobId"], "succeeded"], line
        assert line[3].startswith('"http://localhost:3000/api/images/')  # absolute, on PUBLIC_BASE_URL
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_openai_sdk_example_runs_against_the_server(worker, live_server, tenants, tmp_path):
    import os
    import sys

    code = OPENAI_EXAMPLE.search((ROOT / "docs" / "openai-compatibility.md").read_text())
    assert code, "docs/openai-compatibility.md has no openai SDK example"
    (tmp_path / "example.py").write_text(code.group(1).replace("http://localhost:3000", live_server.url))
    proc = subprocess.run([sys.executable, str(tmp_path / "example.py")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PROJECT_KEY": tenants.a})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith(f"{live_server.url}/api/images/project-a/") for line in lines) == 3  # 2 + the edit
    assert lines[2].startswith("1024x683 ")
    assert "gemini-2.5-flash-image" in lines[-1]
    assert (tmp_path / "fox.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG, as output_format asked
