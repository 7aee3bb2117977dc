"""tests/stack.py builds its commands from the Procfile; these check that without
starting anything (the fault tests in test_reliability.py start the real processes)."""
from __future__ import annotations

from tests.stack import Stack, procfile, with_option


def test_with_option_replaces_either_spelling_or_appends():
    assert with_option("celery worker --pool threads -l info", "--pool", "solo") == "celery worker --pool solo -l info"
    assert with_option("celery worker --pool=threads", "--pool", "solo") == "celery worker --pool solo"
    assert with_option("celery worker --pool-size 3", "--pool", "solo") == "celery worker --pool-size 3 --pool solo"
    assert with_option("celery beat", "--schedule", "/tmp/s") == "celery beat --schedule /tmp/s"


def test_worker_command_is_the_procfile_line_with_the_callers_pool_and_concurrency(tmp_path):
    line = procfile()["worker"]
    assert Stack(workdir=tmp_path / "plain").worker_command() == line
    command = Stack(workdir=tmp_path / "tuned", worker_concurrency=4, worker_pool="solo").worker_command()
    assert "--concurrency 4" in command and "--pool solo" in command
    assert command.count("--concurrency") == line.count("--concurrency") == 1
    assert with_option(with_option(line, "--pool", "solo"), "--concurrency", "4") == command


def test_stack_environment_is_private_and_on_loopback(tmp_path):
    stack = Stack(workdir=tmp_path, env={"WEB_CONNECTIONS": "7"})
    env = stack.env
    assert env["HOST"] == "127.0.0.1" and env["PORT"] == str(stack.port) and stack.url.startswith("http://127.0.0.1:")
    assert env["REDIS_URL"] == stack.redis.url and ":6379/" not in env["REDIS_URL"]
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert env["MEDIA_ROOT"] == str(tmp_path / "media") and env["BANATIE_VAR_DIR"] == str(tmp_path)
    assert env["WEB_CONNECTIONS"] == "7" and stack.procs == {}
