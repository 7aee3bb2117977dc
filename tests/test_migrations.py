"""A database made before the jobs core existed (Job in apps.generation, table
generation_job) migrates to today's layout with its keys and jobs intact."""
from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.jobs.models import Job
from apps.keys.models import ApiKey

# What main had applied before apps.jobs: generation's last migration of that layout.
LAST_BEFORE = ("generation", "0002_job_enqueued_at")
BEFORE = [("jobs", None), LAST_BEFORE]


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_jobs_core_keeps_its_keys_and_jobs():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state([LAST_BEFORE, ("keys", "0001_initial")]).apps
    OldKey, OldJob = old.get_model("keys", "ApiKey"), old.get_model("generation", "Job")
    key = OldKey.objects.create(key_type="project", project_id="legacy", name="legacy", prefix="abcd1234",
                                hash="0" * 64, created_at=timezone.now())
    job_id = uuid.uuid4()
    OldJob.objects.create(
        id=job_id, api_key_id=key.id, project_id="legacy", kind="enhancement", status="succeeded",
        request={"prompt": "a cat", "options": {}}, attempts=1, idempotency_key="legacy-1", request_hash="h",
        result={"originalPrompt": "a cat", "enhancedPrompt": "a cat, photo", "detectedLanguage": "en",
                "appliedTemplate": "photorealistic",
                "metadata": {"style": "photorealistic", "aspectRatio": None, "enhancements": [],
                             "provider": "offline", "model": "offline-template-rules"}},
        created_at=timezone.now(), finished_at=timezone.now(),
    )

    executor = MigrationExecutor(connection)  # a fresh loader sees what is applied now
    executor.migrate(executor.loader.graph.leaf_nodes())

    migrated = Job.objects.get(pk=job_id)
    assert migrated.api_key == ApiKey.objects.get(prefix="abcd1234")
    assert (migrated.kind, migrated.status, migrated.idempotency_key) == ("enhancement", "succeeded", "legacy-1")
    assert migrated.result["enhancedPrompt"] == "a cat, photo"
    # The unique (api key, Idempotency-Key) constraint still holds on the moved table.
    with pytest.raises(Exception):  # noqa: B017 - IntegrityError, wrapped differently per database
        Job.objects.create(api_key=migrated.api_key, project_id="legacy", kind="enhancement",
                           idempotency_key="legacy-1")
