"""What every benchmark needs: a database filled with demo data, a Kehu server, timing and the report."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench-password-2026"
MEILISEARCH = ROOT / ".venv" / "bin" / "meilisearch"


@dataclass
class Timing:
    name: str
    samples: list[float]  # seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def p99(self) -> float:
        return self.percentile(99)


def measure(name: str, call: Callable[[int], object], count: int, warmup: int = 20) -> Timing:
    for index in range(warmup):
        call(index)
    samples = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        samples.append(time.perf_counter() - started)
    return Timing(name, samples)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def kehu(*args: str, env: dict[str, str], quiet: bool = True) -> None:
    subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, check=True, capture_output=quiet)


@contextmanager
def database(engine: str) -> Iterator[dict[str, str]]:
    """The environment of a fresh database: a SQLite file, or a throwaway PostgreSQL cluster."""
    var = Path(tempfile.mkdtemp(prefix=f"kehu-bench-{engine}-"))
    env = {**os.environ, "KEHU_VAR_DIR": str(var), "KEHU_PASSWORD": PASSWORD, "KEHU_DEMO_PASSWORD": PASSWORD}
    env.pop("DATABASE_URL", None)
    cluster = None
    try:
        if engine == "postgres":
            cluster = tempfile.mkdtemp(prefix="kehu-bench-pg-", dir="/tmp")
            url = subprocess.run(
                [str(ROOT / "scripts" / "pg-throwaway"), "start", cluster], check=True, capture_output=True, text=True
            ).stdout.strip()
            env["DATABASE_URL"] = url
        yield env
    finally:
        if cluster:
            subprocess.run([str(ROOT / "scripts" / "pg-throwaway"), "stop", cluster], check=False)
        shutil.rmtree(var, ignore_errors=True)


def postgres_available() -> bool:
    return any(Path(p, "initdb").exists() for p in ("/usr/lib/postgresql/15/bin",)) or bool(shutil.which("initdb"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, what: str) -> None:
    """Until GET {url}/health answers 200, for at most 20 s."""
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


@contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    with serving(env) as (url, _):
        yield url


@contextmanager
def serving(env: dict[str, str], log: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Kehu server as `make run` starts it (KEHU_WORKERS in env sets its uvicorn workers): its URL and its
    process, whose CPU time a benchmark can read; its output goes to the log if one is given."""
    port = free_port()
    with open(log or os.devnull, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env={**env, "KEHU_LOGIN_ATTEMPTS_PER_MINUTE": "1000"},
            stdout=output,
            stderr=output,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, "Kehu")
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=20)


# What scripts/run-meilisearch (the `search` process of `make run`) passes: left to its defaults, Meilisearch
# took seconds for each one-document update here and kept a core busy under the chat benchmark's writes.
SEARCH_PROCESS_OPTIONS = ("--max-indexing-memory", "2GiB", "--max-indexing-threads", str(os.cpu_count() or 1))


@contextmanager
def meilisearch(data: Path, port: int, *options: str) -> Iterator[None]:
    """A Meilisearch of the bench's own, its data under the bench's var directory; started again on the same
    port and data, it serves the same indexes."""
    process = subprocess.Popen(
        [
            str(MEILISEARCH),
            "--db-path",
            str(data / "data.ms"),
            "--dump-dir",
            str(data / "dumps"),
            "--snapshot-dir",
            str(data / "snapshots"),
            "--http-addr",
            f"127.0.0.1:{port}",
            "--no-analytics",
            "--env",
            "development",
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", "Meilisearch")
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def logged_in(url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=True)
    client.get("/login")
    token = client.cookies.get("csrftoken") or ""
    response = client.post("/login", data={"username": username, "password": PASSWORD, "_csrf_token": token})
    response.raise_for_status()
    if "/login" in str(response.url):
        raise RuntimeError(f"could not log in as {username}")
    client.headers["x-csrftoken"] = client.cookies.get("csrftoken") or ""
    return client


def table(timings: list[Timing], baseline: Timing) -> str:
    lines = [
        "| what | requests | p50 ms | p95 ms | p99 ms | p95 vs baseline |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for timing in [baseline, *timings]:
        ratio = timing.p95 / baseline.p95 if baseline.p95 else float("nan")
        lines.append(
            f"| {timing.name} | {len(timing.samples)} | {timing.p50:.1f} | {timing.p95:.1f} | {timing.p99:.1f} "
            f"| {ratio:.1f}× |"
        )
    return "\n".join(lines)


def write_section(name: str, text: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text.strip() + "\n")


def write_report() -> Path:
    sections = sorted(RESULTS.glob("*.md"))
    body = "\n\n".join(path.read_text().strip() for path in sections)
    report = ROOT / "BENCHMARKS.md"
    report.write_text(
        "# Kehu benchmarks\n\n"
        "Written by `make bench` (`python -m bench`); each section says its data size and setup. Every figure is "
        "a latency measured in the same run as its baseline, over real HTTP against a real server process.\n\n"
        + body
        + "\n"
    )
    return report
