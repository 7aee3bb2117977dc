"""Every curl example in README.md and docs/*.md runs against a live server.

A ```bash block containing `curl` is executed (in order, per file) with the host replaced
by the live server and $MASTER_KEY / $PROJECT_KEY set. The README's blocks run in one shell
session, as a reader types them (each uses what the previous one exported). Each HTTP status it gets must be
below 400, unless the line before the block says `<!-- expect: 401 401 -->` (the statuses
of its requests, in order; `200|409` where the answer depends on timing). Blocks that set their own curl --write-out are not counted.
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
def test_copied_curl_examples_from_docs_work(worker, live_server, tenants, tmp_path, doc):
    import os

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MASTER_KEY": tenants.master, "PROJECT_KEY": tenants.a}
    check_file(doc, base_url=live_server.url, env=env, cwd=tmp_path)
