"""Customer list and customer page at 100,000 customers, on SQLite and PostgreSQL, against a trivial Litestar
endpoint (/health, which passes the same middleware) measured in the same run.

Targets (issue 2): list page p95 ≤ 50 ms, customer page p95 ≤ 30 ms on a 2-core machine.
"""

from __future__ import annotations

import os
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import (
    SEARCH_PROCESS_OPTIONS,
    database,
    free_port,
    kehu,
    logged_in,
    machine,
    measure,
    meilisearch,
    postgres_available,
    server,
    table,
    write_section,
)

CUSTOMERS = int(os.environ.get("KEHU_BENCH_CUSTOMERS", "100000"))
REQUESTS = int(os.environ.get("KEHU_BENCH_REQUESTS", "300"))


def run_engine(engine: str) -> str:
    with database(engine) as env:
        started = time.perf_counter()
        kehu("migrate", env=env)
        kehu("createuser", "bench_supervisor", "--role", "supervisor", "--name", "基准主管", env=env)
        kehu("demo", "--customers", str(CUSTOMERS), "--seed", "7", env=env)
        seeded = time.perf_counter() - started
        # Filtered lists are answered by Meilisearch: a Meilisearch of the bench's own, indexed before measuring.
        port = free_port()
        env |= {"MEILI_URL": f"http://127.0.0.1:{port}", "KEHU_INDEX_PREFIX": "bench_"}
        with meilisearch(Path(env["KEHU_VAR_DIR"]) / "meilisearch", port, *SEARCH_PROCESS_OPTIONS), server(env) as url:
            kehu("reindex", env=env)
            supervisor = logged_in(url, "bench_supervisor")
            # 王芳, a demo staff member who owns about a quarter of the customers.
            staff = logged_in(url, "wangfang")
            ids = _customer_ids(supervisor)
            rng = random.Random(7)
            pages = [1, 2, 3, 10, 50]
            timings = [
                measure(
                    "list: prospects tab, all customers (supervisor)",
                    lambda i: _ok(supervisor.get("/customers")),
                    REQUESTS,
                ),
                # channel 2 is 搜索引擎, the second source channel seeded into a fresh database.
                measure(
                    "list: members, 云南省 + channel filter, page n",
                    lambda i: _ok(
                        supervisor.get(f"/customers?kind=member&province=云南省&channel=2&page={pages[i % 5]}")
                    ),
                    REQUESTS,
                ),
                measure(
                    "list: htmx fragment, sorted by last contact",
                    lambda i: _ok(
                        supervisor.get(
                            "/customers?sort=last_contact&activity=inactive",
                            headers={"HX-Request": "true", "HX-Target": "customer-results"},
                        )
                    ),
                    REQUESTS,
                ),
                measure("list: staff scope (own + pool)", lambda i: _ok(staff.get("/customers")), REQUESTS),
                measure("customer page", lambda i: _ok(supervisor.get(f"/customers/{rng.choice(ids)}")), REQUESTS),
            ]
            baseline = measure(
                "baseline: GET /health (trivial Litestar endpoint)", lambda i: _ok(supervisor.get("/health")), REQUESTS
            )
    name = "SQLite" if engine == "sqlite" else "PostgreSQL 15"
    return (
        f"### {name}\n\n{CUSTOMERS:,} customers with their demo contacts, projects and follow-ups "
        f"(generated in {seeded:.0f} s). One uvicorn worker; requests one at a time from one client over loopback. "
        "The plain list reads the database; a list with a filter asks Meilisearch (its own process, indexed before "
        "measuring) for the page of ids and the counts, then reads those rows.\n\n" + table(timings, baseline)
    )


def _ok(response: httpx.Response) -> httpx.Response:
    response.raise_for_status()
    return response


def _customer_ids(client: httpx.Client) -> list[int]:
    ids: set[int] = set()
    for page in range(1, 8):
        html = client.get(f"/customers?page={page}").text + client.get(f"/customers?kind=member&page={page}").text
        ids.update(int(found) for found in re.findall(r'href="/customers/(\d+)"', html))
    return sorted(ids)


def main() -> None:
    engines = ["sqlite"] + (["postgres"] if postgres_available() else [])
    sections = [run_engine(engine) for engine in engines]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_section(
        "10-customer-pages",
        f"## Customer list and customer page\n\n{stamp}, {machine()}. Targets: list page p95 ≤ 50 ms, "
        "customer page p95 ≤ 30 ms.\n\n" + "\n\n".join(sections),
    )


if __name__ == "__main__":
    main()
