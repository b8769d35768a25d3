"""Customer analysis at 100,000 customers and 1,000,000 follow-ups, on SQLite and PostgreSQL: every view over real
HTTP, each against the raw SQL of its own heaviest query, run straight on the database driver in the same run.

Targets (issue 5): each view p95 ≤ 300 ms on PostgreSQL and ≤ 1 s on SQLite on a 2-core machine.

Which query is a view's heaviest is measured, not chosen: a probe process builds each view once with every SQL
statement timed, and takes the slowest. The probe imports the Kehu modules, so it runs in a process of its own
with the bench database's environment (they read it once, at import).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import httpx

from bench.common import (
    ROOT,
    Timing,
    database,
    kehu,
    logged_in,
    machine,
    measure,
    postgres_available,
    server,
    write_section,
)

CUSTOMERS = int(os.environ.get("KEHU_BENCH_CUSTOMERS", "100000"))
FOLLOW_UPS_PER_CUSTOMER = float(os.environ.get("KEHU_BENCH_FOLLOWUPS_PER_CUSTOMER", "10"))
REQUESTS = int(os.environ.get("KEHU_BENCH_ANALYSIS_REQUESTS", "40"))
RAW_RUNS = 20
# A filtered variant: one province, the own data, the last two years of customers.
FILTERED = "province=广东省&origin=own&start={start}&end={end}"


def _ok(response: httpx.Response) -> httpx.Response:
    response.raise_for_status()
    return response


def run_engine(engine: str) -> str:
    with database(engine) as env:
        started = time.perf_counter()
        kehu("migrate", env=env)
        kehu("createuser", "bench_supervisor", "--role", "supervisor", "--name", "基准主管", env=env)
        kehu(
            "demo",
            "--customers",
            str(CUSTOMERS),
            "--followups-per-customer",
            str(FOLLOW_UPS_PER_CUSTOMER),
            "--seed",
            "7",
            env=env,
        )
        seeded = time.perf_counter() - started
        probe = json.loads(
            subprocess.run(
                [sys.executable, "-m", "bench.analysis", "probe"],
                cwd=ROOT,
                env=env,
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout
        )
        today = datetime.now(UTC).date()
        filtered = FILTERED.format(start=today.replace(year=today.year - 2).isoformat(), end=today.isoformat())
        rows = []
        with server(env) as url:
            supervisor = logged_in(url, "bench_supervisor")
            for key in probe["views"]:
                path = "/analysis" if key == "overview" else f"/analysis/{key}"
                plain = measure(f"{key}", lambda i, path=path: _ok(supervisor.get(path)), REQUESTS, warmup=3)
                narrowed = measure(
                    f"{key}, filtered",
                    lambda i, path=path: _ok(supervisor.get(f"{path}?{filtered}")),
                    REQUESTS,
                    warmup=3,
                )
                raw = Timing(f"{key}: raw SQL", probe["raw"][key]["samples"])
                rows.append((key, plain, narrowed, raw, probe["raw"][key]["sql"]))
    name = "SQLite" if engine == "sqlite" else "PostgreSQL 15"
    target = "1 s" if engine == "sqlite" else "300 ms"
    lines = [
        f"### {name}",
        "",
        f"{probe['customers']:,} customers, {probe['follow_ups']:,} follow-ups, {probe['projects']:,} projects "
        f"(generated in {seeded:.0f} s). One uvicorn worker; requests one at a time from one client over loopback, "
        f"{REQUESTS} per line. Filtered: `{filtered}`. Baseline: the view's heaviest SQL statement (found by timing "
        f"each of its statements once), run {RAW_RUNS} times straight on the driver. Target: p95 ≤ {target}.",
        "",
        "| view | p50 ms | p95 ms | p99 ms | filtered p50 ms | filtered p95 ms | heaviest SQL p50 ms | p95 vs SQL |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, plain, narrowed, raw, _sql in rows:
        ratio = plain.p95 / raw.p95 if raw.p95 else float("nan")
        lines.append(
            f"| {key} | {plain.p50:.0f} | {plain.p95:.0f} | {plain.p99:.0f} | {narrowed.p50:.0f} | "
            f"{narrowed.p95:.0f} | {raw.p50:.1f} | {ratio:.1f}× |"
        )
    lines += ["", "<details><summary>The heaviest statement of each view</summary>", ""]
    for key, *_, sql in rows:
        lines.append(f"- **{key}**: `{' '.join(sql.split())[:400]}`")
    lines += ["", "</details>"]
    return "\n".join(lines)


async def _probe() -> dict[str, Any]:
    """Build every view once with each statement timed; time the slowest one raw."""
    from piccolo.engine.sqlite import SQLiteEngine

    from app.analysis import service
    from app.analysis.report import AnalysisFilters
    from app.customers.tables import Customer, Project
    from app.db import close, engine, prepare
    from app.followups.tables import FollowUp

    await prepare()
    db = engine()
    statements: list[tuple[float, str, tuple[Any, ...]]] = []
    engine_class = type(db)
    original = engine_class.run_querystring

    # On the class: PostgreSQL's engine has __slots__, so an instance attribute cannot stand in.
    async def timed(self: Any, querystring: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = await original(self, querystring, *args, **kwargs)
        sql, values = querystring.compile_string(engine_type=self.engine_type)
        statements.append((time.perf_counter() - started, sql, tuple(values)))
        return result

    heaviest: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for key in service.VIEWS:
        # Warm: the first statements of a process also pay for its connections and the database's cold pages.
        await service.build_view(key, AnalysisFilters())
    with mock.patch.object(engine_class, "run_querystring", timed):
        for key in service.VIEWS:
            statements.clear()
            await service.build_view(key, AnalysisFilters())
            _, sql, values = max(statements, key=lambda statement: statement[0])
            heaviest[key] = (sql, values)

    counts = {
        "customers": await Customer.count().where(Customer.deleted_at.is_null()),
        "follow_ups": await FollowUp.count(),
        "projects": await Project.count(),
    }
    raw: dict[str, dict[str, Any]] = {}
    for key, (sql, values) in heaviest.items():
        samples = []
        if isinstance(db, SQLiteEngine):
            import sqlite3

            connection = sqlite3.connect(db.path)
            for _ in range(RAW_RUNS):
                started = time.perf_counter()
                connection.execute(sql, values).fetchall()
                samples.append(time.perf_counter() - started)
            connection.close()
        else:
            connection = await db.get_new_connection()
            for _ in range(RAW_RUNS):
                started = time.perf_counter()
                await connection.fetch(sql, *values)
                samples.append(time.perf_counter() - started)
            await connection.close()
        raw[key] = {"sql": sql, "samples": samples}
    await close()
    return {"views": list(service.VIEWS), "raw": raw, **counts}


def main() -> None:
    engines = ["sqlite"] + (["postgres"] if postgres_available() else [])
    sections = [run_engine(engine) for engine in engines]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_section(
        "50-analysis",
        f"## Customer analysis\n\n{stamp}, {machine()}. Targets: each view p95 ≤ 300 ms on PostgreSQL, ≤ 1 s on "
        "SQLite.\n\n" + "\n\n".join(sections),
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["probe"]:
        print(json.dumps(asyncio.run(_probe())))
    else:
        main()
