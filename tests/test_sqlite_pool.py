"""banatie/sqlite_pool under gevent: a greenlet waiting for SQLite's write lock lets the
greenlet holding it run, instead of freezing the process until the busy timeout."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent('''
    from gevent import monkey; monkey.patch_all()
    import os, sys, time
    import django, gevent
    os.environ["DJANGO_SETTINGS_MODULE"] = "banatie.settings"
    django.setup()
    from django.db import connection, transaction
    from django.db.backends.signals import connection_created

    def writer_holding_the_lock():
        with transaction.atomic():  # BEGIN IMMEDIATE: the write lock
            with connection.cursor() as c:
                c.execute("INSERT INTO t VALUES (1)")
            gevent.sleep(0.3)  # e.g. a Redis call inside the transaction
        connection.close()

    def second_writer():
        gevent.sleep(0.05)
        started = time.monotonic()
        with connection.cursor() as c:
            c.execute("INSERT INTO t VALUES (2)")
        connection.close()
        return time.monotonic() - started

    with connection.cursor() as c:
        c.execute("CREATE TABLE t (x INTEGER)")
    connection.close()
    started = time.monotonic()
    a, b = gevent.spawn(writer_holding_the_lock), gevent.spawn(second_writer)
    gevent.joinall([a, b], raise_error=True)
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM t")
        print(c.fetchone()[0], round(b.value, 2), round(time.monotonic() - started, 2))
''')


@pytest.mark.slow
def test_a_writer_waiting_for_the_lock_lets_the_lock_holder_finish(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "x" * 50, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "BANATIE_ENV_FILE": str(tmp_path / "none.env"), "BANATIE_VAR_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    rows, waited, total = out.stdout.split()
    # Both rows written; the second writer waited about as long as the lock was held,
    # not SQLite's 30 s busy timeout (it used to: the holder could not run to commit).
    assert int(rows) == 2 and float(waited) < 5 and float(total) < 5, out.stdout
