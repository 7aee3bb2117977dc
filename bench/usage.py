"""`make bench-usage`: GET /api/usage over the figures of 1,000,000 jobs.

Builds a scratch database (SQLite in a temporary directory, or DATABASE_URL when set: use
an empty PostgreSQL database), migrates it, makes 1 master and 200 project keys over 50
projects, then ends 1,000,000 jobs' worth of usage through the same upsert a job's end runs
(apps.usage.services), spread over 90 days and 3 models. Then times GET /api/usage through
Django's test client (the whole request: key check, SQL aggregates, JSON), 30 requests per
shape, and prints p50/p95 per shape and the rollup's row count.

    make bench-usage                 # SQLite
    DATABASE_URL=postgres://... make bench-usage
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

JOBS = int(os.environ.get("BENCH_USAGE_JOBS", "1000000"))
PROJECTS, KEYS_PER_PROJECT, DAYS = 50, 4, 90
MODELS = ("gemini-2.5-flash-image", "gemini-3-pro-image-preview", "gemini-2.5-flash")


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="bench-usage-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch / 'usage.sqlite3'}")
    os.environ.setdefault("SECRET_KEY", "bench-usage")
    os.environ.setdefault("BANATIE_VAR_DIR", str(scratch))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "banatie.settings")
    os.environ["LOG_LEVEL"] = "warning"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client

    from apps.keys.models import ApiKey
    from apps.keys.services import key_create
    from apps.usage.models import UsageDaily
    from apps.usage.services import _UPSERT, _db

    call_command("migrate", verbosity=0)
    master = key_create(key_type=ApiKey.Type.MASTER, name="bench master").plaintext
    keys = [(f"project-{p:02d}", key_create(key_type=ApiKey.Type.PROJECT, project_id=f"project-{p:02d}",
                                             name=f"k{k}"))
            for p in range(PROJECTS) for k in range(KEYS_PER_PROJECT)]
    project_key = keys[0][1].plaintext
    today = date.today()
    rng = random.Random(7)
    started = time.perf_counter()
    batch: list[list[object]] = []
    for n in range(JOBS):
        project, minted = keys[rng.randrange(len(keys))]
        day = today - timedelta(days=rng.randrange(DAYS))
        status = rng.choices(("s", "f", "c"), weights=(90, 7, 3))[0]
        batch.append([_db("day", day), project, _db("key_id", minted.key.id), rng.choice(MODELS),
                      int(status == "s"), int(status == "f"), int(status == "c"), int(status == "s"),
                      300, 1290, _db("cost_usd", Decimal("0.038790")), 0])
        if len(batch) == 10_000 or n == JOBS - 1:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(_UPSERT, batch)
            batch.clear()
    built = time.perf_counter() - started
    rows = UsageDaily.objects.count()
    print(f"bench-usage: {JOBS:,} jobs ended into {rows:,} rollup rows in {built:.1f} s "
          f"({JOBS / built:,.0f} upserts/s) on {connection.vendor}")

    client = Client()
    month = today.replace(day=1).isoformat()
    shapes = [
        ("project key, this month, groupBy=day", project_key, f"/api/usage?from={month}"),
        ("project key, 90 days, groupBy=key", project_key,
         f"/api/usage?from={(today - timedelta(days=DAYS)).isoformat()}&to={today.isoformat()}&groupBy=key"),
        ("project key, 90 days, groupBy=model", project_key,
         f"/api/usage?from={(today - timedelta(days=DAYS)).isoformat()}&to={today.isoformat()}&groupBy=model"),
        ("master key, all projects, 90 days, groupBy=project", master,
         f"/api/usage?from={(today - timedelta(days=DAYS)).isoformat()}&to={today.isoformat()}&groupBy=project"),
        ("master key, all projects, 90 days, groupBy=day", master,
         f"/api/usage?from={(today - timedelta(days=DAYS)).isoformat()}&to={today.isoformat()}"),
    ]
    for name, key, path in shapes:
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            response = client.get(path, HTTP_X_API_KEY=key, HTTP_HOST="localhost")
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.content[:300]
        times.sort()
        print(f"bench-usage: {name}: p50 {statistics.median(times):.1f} ms, p95 {times[int(len(times) * 0.95) - 1]:.1f} ms "
              f"({len(response.json()['groups'])} groups, {response.json()['totals']['jobs']:,} jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
