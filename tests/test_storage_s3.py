"""STORAGE_BACKEND=s3: images go to an S3-compatible bucket (moto's server on 127.0.0.1,
spoken to over HTTP by boto3 exactly as a real service would be) and /api/images streams
them back."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import auth

BUCKET = "banatie-test"


@pytest.fixture(scope="module")
def s3_server():  # type: ignore[no-untyped-def]
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_storage(s3_server, settings):  # type: ignore[no-untyped-def]
    import boto3

    creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=s3_server, **creds)
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": BUCKET, "endpoint_url": s3_server, "access_key": "test", "secret_key": "test",
            "region_name": "us-east-1", "file_overwrite": False, "default_acl": None, "querystring_auth": False,
        }},
    }
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def test_generated_image_is_stored_in_s3_and_served_back(api, worker, tenants, s3_storage):
    r = api.post("/api/text-to-image", {"prompt": "a red kite over the sea", "filename": "kite", "aspectRatio": "3:2",
                                        "autoEnhance": False}, format="json", **auth(tenants.a))
    assert r.status_code == 200, r.json()
    key = r.json()["data"]["filepath"]
    stored = s3_storage.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert Image.open(io.BytesIO(stored)).size == (1024, 683)
    served = api.get(f"/api/images/{key}")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == stored
    assert served["Content-Length"] == str(len(stored))
    assert api.get(f"/api/images/{key[:-4]}x.png").status_code == 404


def test_reference_images_go_to_s3_and_are_removed_after_the_job(api, worker, tenants, s3_storage):
    from django.core.files.uploadedfile import SimpleUploadedFile

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 128, 255)).save(buf, "PNG")
    r = api.post("/api/generate", {"prompt": "a kite", "filename": "kite", "files": [
        SimpleUploadedFile("ref.png", buf.getvalue(), content_type="image/png")]}, format="multipart",
        **auth(tenants.a))
    assert r.status_code == 200, r.json()
    keys = [o["Key"] for o in s3_storage.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == [r.json()["data"]["filepath"]]  # the reference upload is gone


def test_s3_without_a_bucket_stops_startup_naming_the_variable():
    env = {**os.environ, "STORAGE_BACKEND": "s3", "SECRET_KEY": "x"}
    env.pop("AWS_STORAGE_BUCKET_NAME", None)
    proc = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "AWS_STORAGE_BUCKET_NAME" in proc.stderr
