"""A client generated from the live OpenAPI schema with openapi-python-client works end to
end, with typed results: bootstrap → project key → text-to-image (async) → poll the job,
whose `data` comes back as the generation result model, not an untyped dict."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests


@pytest.mark.slow
def test_a_client_generated_from_the_schema_runs_the_first_steps_with_typed_results(worker, live_server, tmp_path,
                                                                                  monkeypatch):
    (tmp_path / "schema.json").write_bytes(requests.get(f"{live_server.url}/api/schema/", timeout=10).content)
    bin_dir = Path(sys.executable).parent
    generated = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", "schema.json", "--output-path", "banatie_client",
         "--meta", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert generated.returncode == 0 and (tmp_path / "banatie_client" / "client.py").exists(), generated.stdout
    # Only the image download (binary content types) may be left out; nothing else.
    output = generated.stdout + generated.stderr
    warnings = [line for line in output.splitlines() if line.startswith("WARNING parsing")]
    assert warnings == ["WARNING parsing GET /api/images/{path} within images."], output
    monkeypatch.syspath_prepend(str(tmp_path))

    def load(name: str):  # type: ignore[no-untyped-def]
        return importlib.import_module(f"banatie_client{name}")

    client_mod, models = load(""), load(".models")
    bootstrap = load(".api.keys.bootstrap_initial_key").sync(client=client_mod.Client(base_url=live_server.url))
    assert isinstance(bootstrap, models.BootstrapOutput) and bootstrap.api_key.startswith("bnt_")
    master = client_mod.AuthenticatedClient(base_url=live_server.url, token=bootstrap.api_key)
    created = load(".api.keys.keys_create").sync(client=master, body=models.ProjectKeyCreateInputRequest(
        type_=models.ProjectKeyCreateInputRequestType.PROJECT, project_id="typed-client", expires_in_days=30))
    assert isinstance(created, models.KeyCreateOutput)
    project = client_mod.AuthenticatedClient(base_url=live_server.url, token=created.api_key)

    accepted = load(".api.generation.text_to_image_create").sync(
        client=project, body=models.TextToImageInputRequest(prompt="a lighthouse at dusk", filename="lighthouse"),
        prefer="respond-async")
    assert isinstance(accepted, models.JobAcceptedOutput), accepted
    retrieve = load(".api.jobs.job_retrieve")
    deadline = time.monotonic() + 30
    job = retrieve.sync(str(accepted.job_id), client=project)
    while job.status.value not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = retrieve.sync(str(accepted.job_id), client=project)
    # The discriminator picked the generation variant, and its data is the typed result.
    assert isinstance(job, models.GenerationJobDetailOutput), job
    assert job.status.value == "succeeded" and isinstance(job.data, models.GenerationDataOutput)
    assert job.data.filename == "lighthouse.png" and job.data.url.startswith(live_server.url)
    assert job.data.width > 0 and job.data.job_id == accepted.job_id
