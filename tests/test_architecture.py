"""The dependency rules of docs/architecture.md, enforced: import-linter's contracts in
.importlinter (imports inside functions count), and the task names both sides agree on."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_tasks_register_the_names_services_publish_by():
    from apps.jobs.task_names import JOB_RUN, JOB_SWEEP, JOBS_RETENTION
    from apps.webhooks.task_names import WEBHOOK_DELIVERY_ATTEMPT, WEBHOOK_SWEEP
    from banatie.celery import app

    app.loader.import_default_modules()
    assert {JOB_RUN, JOB_SWEEP, JOBS_RETENTION, WEBHOOK_DELIVERY_ATTEMPT, WEBHOOK_SWEEP} <= set(app.tasks)
    assert app.tasks[JOB_RUN].__module__ == "workers.tasks"
    assert app.tasks[WEBHOOK_DELIVERY_ATTEMPT].__module__ == "workers.tasks"
    # The beat schedule (in settings, which import no app) names the periodic tasks by the same constants.
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} == {JOB_SWEEP, JOBS_RETENTION,
                                                                                   WEBHOOK_SWEEP}


def test_every_job_kind_is_registered_by_its_app():
    from apps.jobs.kinds import kind_names

    assert kind_names() == ["enhancement", "generation"]
