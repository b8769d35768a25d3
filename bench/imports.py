"""Spreadsheet import of 100,000 customers, as CSV and as XLSX, with `kehu import` (the same pipeline the worker
runs for the web page): the time until the batch is imported, the time until Meilisearch finds them all (the
`kehu worker` draining the outbox meanwhile, as in production), and the peak memory of the importing process
together with the process reading its file.

The two files hold different customers: the CSV goes into an empty database, the XLSX into one holding the CSV's
100,000, so its duplicate check runs against a full table. About 1% of the rows carry a mistyped mobile number
and 1% repeat an earlier row, as real lists do.

Targets (issue 6): imported ≤ 60 s, searchable ≤ 120 s, peak memory ≤ 1 GiB, on a 2-core machine.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
from openpyxl import Workbook

from bench.common import (
    ROOT,
    SEARCH_PROCESS_OPTIONS,
    database,
    free_port,
    kehu,
    machine,
    meilisearch,
    postgres_available,
    write_section,
)

ROWS = int(os.environ.get("KEHU_BENCH_IMPORT_ROWS", "100000"))
HEADERS = [
    "客户名称",
    "联系人",
    "职务",
    "手机",
    "电话",
    "邮箱",
    "微信",
    "省份",
    "城市",
    "地址",
    "来源",
    "行业",
    "需求",
    "备注",
]
CHANNELS = ["展会", "转介绍", "广告", "搜索引擎", "电话咨询", "老客户", "", ""]


def customer_rows(count: int, seed: int) -> list[list[str]]:
    """Realistic rows of a purchased or exhibition list, made with the demo data's generator."""
    from app import demo

    rng = random.Random(seed)
    none = SimpleNamespace(items=[])
    maker = demo._Generator(rng, SimpleNamespace(channels=none, methods=none), [], time.time(), count)
    rows: list[list[str]] = []
    for _ in range(count):
        province, city = maker.place()
        segment = demo.SEGMENTS.pick(rng)
        person, pinyin = maker.person()
        mobile = maker.mobile()
        if rng.random() < 0.1:
            name, title, industry = person, "", ""
        else:
            name, title, industry = (
                maker.organisation(segment, province, city),
                rng.choice(segment.titles),
                segment.industry,
            )
        if rng.random() < 0.01:
            mobile = mobile[:7]  # a number someone mistyped
        shown = f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}" if rng.random() < 0.3 else mobile
        rows.append(
            [
                name,
                person if name != person else "",
                title,
                shown,
                maker.landline(city) if rng.random() < 0.2 else "",
                maker.personal_email(pinyin) if rng.random() < 0.4 else "",
                maker.wechat(pinyin, mobile) if rng.random() < 0.5 else "",
                province if rng.random() < 0.7 else province.removesuffix("省"),
                city,
                maker.address(city) if rng.random() < 0.6 else "",
                rng.choice(CHANNELS),
                industry,
                rng.choice(segment.needs) if rng.random() < 0.5 else "",
                rng.choice(demo.CHARACTERISTICS) if rng.random() < 0.3 else "",
            ]
        )
        if rng.random() < 0.01 and rows:
            rows.append(list(rng.choice(rows)))
    return rows[:count]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as output:
        writer = csv.writer(output, lineterminator="\r\n")
        writer.writerow(HEADERS)
        writer.writerows(rows)


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    workbook.save(path)


def _documents(meili_url: str) -> int:
    try:
        response = httpx.get(f"{meili_url}/indexes/bench_customers/stats", timeout=5)
    except httpx.HTTPError:
        return -1
    return response.json().get("numberOfDocuments", -1) if response.status_code == 200 else -1


def _tree_rss(pid: int) -> int:
    """Resident memory in bytes of a process and its children (the import and the process reading its file)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the name: state, parent pid, …; resident pages are the 22nd field after it.
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return total


def _sample_peak(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.1):
        peak[0] = max(peak[0], _tree_rss(pid))


def import_one(path: Path, env: dict[str, str], meili_url: str, expected_documents: int) -> dict[str, float]:
    """`kehu import` in a process of its own: seconds to imported, to searchable, and its peak memory (MiB).

    The memory is the most the import and the process reading its file held together (sampled every 0.1 s), or
    the largest either reached on its own (what the kernel recorded), whichever is more."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "import", str(path), "--channel", "展会", "--as", "bench_supervisor"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_sample_peak, args=(process.pid, stop, peak), daemon=True)
    sampler.start()
    output = process.stdout.read().decode(errors="replace")
    stop.set()
    sampler.join()
    _, status, usage = os.wait4(process.pid, 0)
    imported = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"kehu import failed:\n{output}")
    summary = next((line for line in output.splitlines() if line.startswith("import ")), "")
    created = int(summary.split(":")[1].split("created")[0].replace(",", "").strip())
    deadline = time.perf_counter() + 600
    while _documents(meili_url) < expected_documents + created and time.perf_counter() < deadline:
        time.sleep(0.5)
    searchable = time.perf_counter() - started
    return {
        "imported": imported,
        "searchable": searchable,
        "memory": max(usage.ru_maxrss * 1024, peak[0]) / 1024 / 1024,
        "created": created,
        "summary": summary,
    }


def run_engine(engine: str, files: dict[str, Path]) -> str:
    lines = [
        "| file | rows | imported in | searchable in | peak memory of `kehu import` (with its reading process) "
        "| result |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    with database(engine) as env:
        kehu("migrate", env=env)
        kehu("createuser", "bench_supervisor", "--role", "supervisor", "--name", "基准主管", env=env)
        port = free_port()
        meili_url = f"http://127.0.0.1:{port}"
        env |= {"MEILI_URL": meili_url, "KEHU_INDEX_PREFIX": "bench_"}
        with meilisearch(Path(env["KEHU_VAR_DIR"]) / "meilisearch", port, *SEARCH_PROCESS_OPTIONS):
            worker = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                while _documents(meili_url) < 0:
                    time.sleep(0.2)
                documents = 0
                for kind, path in files.items():
                    result = import_one(path, env, meili_url, documents)
                    documents += int(result["created"])
                    lines.append(
                        f"| {kind} ({path.stat().st_size / 1024 / 1024:.1f} MB) | {ROWS:,} | "
                        f"{result['imported']:.1f} s | {result['searchable']:.1f} s | {result['memory']:.0f} MiB | "
                        f"{result['summary'].split(': ', 1)[1]} |"
                    )
            finally:
                worker.terminate()
                worker.wait(timeout=30)
    name = "SQLite" if engine == "sqlite" else "PostgreSQL 15"
    return f"### {name}\n\n" + "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kehu-bench-import-") as folder:
        files = {"CSV": Path(folder) / "客户名单.csv", "XLSX": Path(folder) / "展会客户.xlsx"}
        write_csv(files["CSV"], customer_rows(ROWS, seed=11))
        write_xlsx(files["XLSX"], customer_rows(ROWS, seed=12))
        engines = ["sqlite"] + (
            ["postgres"] if postgres_available() and not os.environ.get("KEHU_BENCH_SQLITE_ONLY") else []
        )
        sections = [run_engine(engine, files) for engine in engines]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_section(
        "60-import",
        f"## Spreadsheet import\n\n{stamp}, {machine()}. Targets: imported ≤ 60 s, searchable ≤ 120 s, peak memory "
        "≤ 1 GiB.\n\n"
        f"{ROWS:,} rows of realistic customers (organisations and people across China, a third in Kunming; mobile "
        "numbers written with and without dashes, provinces with and without 省, about 1% mistyped mobiles and 1% "
        "repeated rows) imported with `kehu import FILE --channel 展会`, which runs the web page's pipeline in its "
        "own process: read (a file of 1 MB or more in a process of its own, while the rows read so far are checked), "
        "check every row, write 500 rows per transaction with their audit and outbox rows. "
        "*Imported*: the command's wall time, start-up included. *Searchable*: from the same start until the "
        "customers index holds every imported customer, the `kehu worker` draining the outbox into its own "
        "Meilisearch (started as `scripts/run-meilisearch` starts it) meanwhile. "
        "The CSV goes into an empty database, the XLSX (other customers) into one holding "
        "the CSV's, so its duplicate check runs against a full table. *Peak memory*: the most the import and its "
        "reading process held together, sampled every 0.1 s.\n\n" + "\n\n".join(sections),
    )


if __name__ == "__main__":
    main()
