"""Test harness: a real database (SQLite in a temp dir, or the PostgreSQL named by DATABASE_URL) set up once,
emptied before each test, with four people — two staff, a supervisor and an admin — and logged-in clients."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# Piccolo reads its configuration at import time: the environment must be set before the app is imported.
_VAR = Path(tempfile.mkdtemp(prefix="kehu-test-"))
os.environ["KEHU_VAR_DIR"] = str(_VAR)
os.environ.setdefault("KEHU_SECRET_KEY", "test-secret-key-that-is-long-enough-0123456789")
os.environ["PICCOLO_CONF"] = "piccolo_conf"
os.environ.setdefault("KEHU_LANGUAGE", "zh-CN")
# A Meilisearch of the tests' own (started below) on a free port, with its data in the temp dir.
with socket.socket() as _probe:
    _probe.bind(("127.0.0.1", 0))
    _MEILI_PORT = _probe.getsockname()[1]
os.environ["MEILI_URL"] = f"http://127.0.0.1:{_MEILI_PORT}"
os.environ.pop("MEILI_MASTER_KEY", None)
os.environ["KEHU_INDEX_PREFIX"] = "test_"
# The test client runs the app on an event loop of its own, and an asyncpg pool belongs to the loop it was made on.
os.environ["KEHU_DATABASE_POOL"] = "0"

import pytest  # noqa: E402
from litestar import Litestar  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402
from piccolo.apps.user.tables import BaseUser  # noqa: E402

from app.accounts.service import CurrentUser, load_user  # noqa: E402
from app.accounts.tables import Account, Role  # noqa: E402
from app.cli import migrate  # noqa: E402
from app.db import is_sqlite  # noqa: E402
from app.main import create_app  # noqa: E402
from search import documents as search_documents  # noqa: E402
from search import engine as meili  # noqa: E402
from search import sync  # noqa: E402

PASSWORD = "kehu-test-pass"
KEEP_TABLES = {"migration", "option_item"}

PEOPLE = {
    "wangfang": ("王芳", Role.staff),
    "liqiang": ("李强", Role.staff),
    "zhangwei": ("张伟", Role.supervisor),
    "admin": ("赵敏", Role.admin),
}


def pytest_report_header(config: pytest.Config) -> str:
    return f"kehu database: {'SQLite' if is_sqlite() else 'PostgreSQL'}"


class Meilisearch:
    """The tests' Meilisearch process; it can be stopped and started again on the same port and data."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.url = os.environ["MEILI_URL"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self.binary, "--db-path", str(_VAR / "meilisearch"), "--http-addr", f"127.0.0.1:{_MEILI_PORT}"]
        args += ["--no-analytics", "--env", "development", "--log-level", "WARN", "--max-indexing-memory", "2GiB"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:  # noqa: S310 - our own URL
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Meilisearch did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


def _meilisearch_binary() -> str | None:
    local = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "meilisearch"
    return os.environ.get("MEILI_BIN") or (str(local) if local.exists() else shutil.which("meilisearch"))


@pytest.fixture(scope="session")
def meilisearch_process() -> Iterator[Meilisearch | None]:
    """Started once for the session. Missing binary: an error under CI, else the search tests are skipped."""
    binary = _meilisearch_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("meilisearch is not installed (run scripts/install-meilisearch)")
        yield None
        return
    process = Meilisearch(binary)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[None]:
    await migrate()
    yield


async def _tables() -> list[str]:
    if is_sqlite():
        rows = await Account.raw("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        return [row["name"] for row in rows]
    rows = await Account.raw("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
    return [row["name"] for row in rows]


@pytest.fixture(scope="session")
def password_hash() -> str:
    return BaseUser.hash_password(PASSWORD)


@pytest.fixture(autouse=True)
async def clean_database(database: None, meilisearch_process: Meilisearch | None) -> None:
    """Every test starts with no rows but the option lists (seeded once by the migration), and without search
    indexes: pages then answer from the database, until a test asks for the `search` fixture."""
    await _drop_indexes(meilisearch_process)
    tables = [name for name in await _tables() if name not in KEEP_TABLES]
    if is_sqlite():
        for name in tables:
            await Account.raw(f'DELETE FROM "{name}"')  # noqa: S608 - table names come from the catalog
    else:
        quoted = ", ".join(f'"{name}"' for name in tables)
        await Account.raw(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")


_indexes_made = False


async def _drop_indexes(process: Meilisearch | None) -> None:
    global _indexes_made
    if process is None or not _indexes_made:
        return
    if process.process is None:
        process.start()
    for name in search_documents.INDEXES:
        meili.delete_index(meili.uid(name))
    meili.mark_up()
    _indexes_made = False


class Search:
    """What a search test needs: the indexes, and the worker's work done on demand."""

    def __init__(self, process: Meilisearch) -> None:
        self.process = process

    async def sync(self) -> int:
        """Drain the outbox the way the worker does; returns the rows done."""
        return await sync.drain()


@pytest.fixture
async def search(meilisearch_process: Meilisearch | None) -> Search:
    """Empty search indexes with Kehu's settings in the tests' Meilisearch."""
    global _indexes_made
    if meilisearch_process is None:
        pytest.skip("meilisearch is not installed")
    _indexes_made = True
    meili.ensure_indexes()
    return Search(meilisearch_process)


@pytest.fixture
async def people(clean_database: None, password_hash: str) -> dict[str, CurrentUser]:
    """王芳 and 李强 (staff), 张伟 (supervisor), 赵敏 (admin); each logs in with PASSWORD."""
    result = {}
    for username, (name, role) in PEOPLE.items():
        user = BaseUser(username=username, password=password_hash, active=True, email=f"{username}@kehu.test")
        await user.save()
        await Account.insert(Account(user=user.id, name=name, role=role))
        loaded = await load_user(user.id)
        assert loaded is not None
        result[username] = loaded
    return result


@pytest.fixture
def app() -> Litestar:
    """A fresh application per test, so rate-limit counters do not leak between tests."""
    return create_app()


def csrf_token(client: AsyncTestClient) -> str:
    return client.cookies.get("csrftoken") or ""


async def log_in(client: AsyncTestClient, username: str, password: str = PASSWORD) -> None:
    page = await client.get("/login")
    assert page.status_code == 200
    response = await client.post(
        "/login",
        data={"username": username, "password": password, "_csrf_token": csrf_token(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    client.headers["x-csrftoken"] = csrf_token(client)


@pytest.fixture
async def anonymous(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=app) as client:
        yield client


async def _client_for(app: Litestar, username: str) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=app) as client:
        await log_in(client, username)
        yield client


@pytest.fixture
async def staff(app: Litestar, people: dict[str, CurrentUser]) -> AsyncIterator[AsyncTestClient]:
    """王芳, staff."""
    async for client in _client_for(app, "wangfang"):
        yield client


@pytest.fixture
async def other_staff(app: Litestar, people: dict[str, CurrentUser]) -> AsyncIterator[AsyncTestClient]:
    """李强, staff."""
    async for client in _client_for(app, "liqiang"):
        yield client


@pytest.fixture
async def supervisor(app: Litestar, people: dict[str, CurrentUser]) -> AsyncIterator[AsyncTestClient]:
    """张伟, supervisor."""
    async for client in _client_for(app, "zhangwei"):
        yield client


@pytest.fixture
async def admin(app: Litestar, people: dict[str, CurrentUser]) -> AsyncIterator[AsyncTestClient]:
    """赵敏, admin."""
    async for client in _client_for(app, "admin"):
        yield client


def text_of(html: str) -> str:
    """The visible text of an HTML response, tags removed and white space folded, for readable assertions."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
