"""`.env` is read by every process and command of `make run` and `make manage` (and
manage.py), never by `make test`; /health says so when migrations were not applied."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    return {**env, "BANATIE_VAR_DIR": str(tmp_path / "var"), **extra}


def _write_env_file(tmp_path: Path, **values: str) -> Path:
    path = tmp_path / "dot.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


@pytest.mark.slow
def test_migrate_under_the_runner_uses_the_database_named_in_the_env_file(tmp_path):
    database = tmp_path / "from-dotenv.sqlite3"
    env_file = _write_env_file(tmp_path, DATABASE_URL=f"sqlite:///{database}")
    env = _env(tmp_path, BANATIE_ENV_FILE=str(env_file))
    proc = subprocess.run([sys.executable, "-m", "banatie.runner", "--", sys.executable, "manage.py", "migrate",
                           "--noinput", "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"generation_job", "keys_apikey", "django_migrations"} <= tables
    # manage.py on its own reads the same file.
    shown = subprocess.run([sys.executable, "manage.py", "shell", "-c",
                            "from django.conf import settings; print(settings.DATABASES['default']['NAME'])"],
                           cwd=ROOT, env={**env, "SECRET_KEY": "x"}, capture_output=True, text=True, timeout=60)
    assert shown.stdout.strip().splitlines()[-1] == str(database), shown.stderr


def test_make_test_does_not_read_the_env_file_and_set_variables_win(tmp_path):
    env_file = _write_env_file(tmp_path, FROM_DOTENV="dotenv", ALREADY_SET="dotenv")
    env = _env(tmp_path, BANATIE_ENV_FILE=str(env_file), ALREADY_SET="shell", REDIS_URL="redis://127.0.0.1:1/0")
    probe = [sys.executable, "-c", "import os; print(os.environ.get('FROM_DOTENV'), os.environ['ALREADY_SET'])"]
    run = subprocess.run([sys.executable, "-m", "banatie.runner", "--", *probe], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    test = subprocess.run([sys.executable, "-m", "banatie.runner", "--no-dotenv", "--", *probe], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert run.stdout.split() == ["dotenv", "shell"] and test.stdout.split() == ["None", "shell"]


@pytest.mark.slow
def test_make_manage_runs_django_commands_with_the_local_settings(tmp_path):
    database = tmp_path / "manage.sqlite3"
    env = _env(tmp_path, DATABASE_URL=f"sqlite:///{database}", REDIS_URL="redis://127.0.0.1:1/0",
               BANATIE_ENV_FILE=str(tmp_path / "no.env"))
    for args in ("migrate --noinput -v 0", "create_master_key"):
        proc = subprocess.run(["make", "-s", "manage", f"ARGS={args}"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("bnt_")
    assert (tmp_path / "var" / "secret_key").is_file()  # the same generated SECRET_KEY as make run


@pytest.mark.django_db(transaction=True)
def test_health_is_unhealthy_while_migrations_are_unapplied(api):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("jobs", None), ("generation", "0002_job_enqueued_at")])
    try:
        # Every migration since (the jobs app's, and what depends on them), however many there are now.
        unapplied = len(MigrationExecutor(connection).migration_plan(executor.loader.graph.leaf_nodes()))
        assert unapplied >= 2
        r = api.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unhealthy"
        database = r.json()["checks"]["database"]
        assert database["status"] == "down" and database["unappliedMigrations"] == unapplied
        assert "make manage ARGS=migrate" in database["reason"]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert api.get("/health").json()["checks"]["database"]["status"] == "up"
