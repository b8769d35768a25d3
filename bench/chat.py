"""Website chat under load, on SQLite and PostgreSQL: simulated visitors polling every 2 s and staff panels,
against `make run`'s processes (web, Meilisearch, outbox worker), at 250, 500 and 1,000 concurrent visitors;
and the ceiling of "nothing new" polls per second against GET /health (a trivial Litestar endpoint) in the same
run.

Target (issue 4): 1,000 concurrent visitors with p99 ≤ 100 ms and no errors, on both engines, on a 2-core
machine.

The load comes from this process and shares the cores with the server, so it is kept lean and its CPU time is
reported: an asyncio HTTP/1.1 client of its own (httptools parses, uvloop runs the loop), one keep-alive
connection per visitor as each browser would have, and a latency taken when the last byte of the answer is
parsed rather than when the waiting coroutine runs again.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import resource
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast
from urllib.parse import quote, unquote, urlencode, urlsplit

import httptools
import uvloop

from bench.common import (
    PASSWORD,
    SEARCH_PROCESS_OPTIONS,
    Timing,
    database,
    free_port,
    kehu,
    machine,
    meilisearch,
    postgres_available,
    serving,
    write_section,
)
from bench.search import worker

VISITORS = [int(n) for n in os.environ.get("KEHU_BENCH_CHAT_VISITORS", "250,500,1000").split(",")]
WEB_WORKERS = [int(n) for n in os.environ.get("KEHU_BENCH_CHAT_WORKERS", "2").split(",")]
WINDOW = float(os.environ.get("KEHU_BENCH_CHAT_SECONDS", "40"))
CEILING_SECONDS = float(os.environ.get("KEHU_BENCH_CHAT_CEILING_SECONDS", "10"))
CEILING_CONNECTIONS = 32
TARGET_VISITORS, TARGET_P99_MS = 1000, 100.0

# What the widget and the panel do (static/chat/visitor.js, templates/chat/_poller.html, _badge.html): the next
# poll is scheduled once the previous one answered.
VISITOR_POLL, PANEL_POLL, BADGE_POLL = 2.0, 2.0, 3.0
# One visitor in TALKERS writes, about every MESSAGE_EVERY seconds; each staff member answers one of their share
# of the visitors about every REPLY_EVERY seconds.
TALKERS, MESSAGE_EVERY = 20, 20.0
STAFF = ("王芳", "李娜", "张伟", "刘洋", "陈静")
REPLY_EVERY = 10.0
TIMEOUT = 10.0
# Starts are not measured under load: the visitors are started STARTING_AT_ONCE at a time.
STARTING_AT_ONCE = 8
STARTING_TIMEOUT = 60.0

# Every simulated visitor comes from 127.0.0.1, so the per-address limits are lifted; the per-visitor-token
# limit (KEHU_CHAT_REQUESTS_PER_MINUTE, 120 a minute) stays as shipped: a visitor polling every 2 s makes 30.
LIFTED_LIMITS = {"KEHU_CHAT_REQUESTS_PER_IP_MINUTE": "100000000", "KEHU_CHAT_STARTS_PER_IP_HOUR": "100000000"}
# The ceiling polls each visitor token as fast as it is answered, which the per-token limit exists to refuse.
CEILING_LIMITS = {"KEHU_CHAT_REQUESTS_PER_MINUTE": "100000000"}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英")
QUESTIONS = (
    "你好，请问你们的产品可以开增值税专用发票吗？",
    "我想了解一下企业版的价格，有没有报价单？",
    "请问上海有没有线下门店可以体验？",
    "订单发货一般需要几天？能发到新疆吗？",
)
MESSAGES = ("好的，谢谢。", "那大概多久能安排？", "可以加个微信详细聊吗？", "明白了，我再考虑一下。")
REPLIES = ("您好，可以的，我马上为您查询。", "好的，稍后我把报价单发到您的邮箱。", "感谢咨询，请问怎么称呼您？")


# ---------------------------------------------------------------------------------------------------------
# A lean HTTP/1.1 client


@dataclass(slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    seconds: float
    retried: bool = False

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.sent = 0.0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.closed = False
        self.answering = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.answering = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.fail(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.fail(exc or ConnectionResetError("closed by the server"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answered = time.perf_counter()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            status = self.parser.get_status_code()
            waiter.set_result(Answer(status, self.headers, b"".join(self.body), answered - self.sent))
        self.headers, self.body = [], []
        if not self.parser.should_keep_alive():
            self.closed = True

    def fail(self, error: BaseException) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()


class Connection:
    """One keep-alive connection, one request at a time; opened again when the server closed it (uvicorn closes
    a connection idle for 5 s)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.host_header = f"Host: {parts.netloc}\r\n".encode()
        self.protocol: _Protocol | None = None

    async def request(
        self, method: str, target: str, headers: bytes = b"", body: bytes = b"", give_up_after: float = TIMEOUT
    ) -> Answer:
        """The answer, timed from the call (a new connection's handshake included) to its last byte."""
        started = time.perf_counter()
        length = f"Content-Length: {len(body)}\r\n".encode() if body or method == "POST" else b""
        message = f"{method} {target} HTTP/1.1\r\n".encode() + self.host_header + headers + length + b"\r\n" + body
        reused = self.protocol is not None and not self.protocol.closed
        try:
            return await self._send(message, started, give_up_after)
        except (ConnectionResetError, BrokenPipeError):
            if not reused or self.protocol is None or self.protocol.answering:
                raise
        # The server closed the idle connection as the request went out: a browser sends it again, once.
        answer = await self._send(message, started, give_up_after)
        answer.retried = True
        return answer

    async def _send(self, message: bytes, started: float, give_up_after: float) -> Answer:
        loop = asyncio.get_running_loop()
        if self.protocol is None or self.protocol.closed:
            _, self.protocol = await loop.create_connection(_Protocol, self.host, self.port)
        protocol = self.protocol
        assert protocol.transport is not None
        waiter: asyncio.Future[Answer] = loop.create_future()
        protocol.waiter, protocol.sent, protocol.answering = waiter, started, False
        protocol.transport.write(message)
        timer = loop.call_later(give_up_after, protocol.fail, TimeoutError(f"no answer within {give_up_after:.0f} s"))
        try:
            return await waiter
        finally:
            timer.cancel()

    def close(self) -> None:
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()


# ---------------------------------------------------------------------------------------------------------
# Bookkeeping


@dataclass
class Tally:
    """Every request of a measured window: its latency by kind, its status, and what went wrong."""

    recording: bool = False
    seconds: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    retried: int = 0

    async def call(
        self, kind: str, connection: Connection, method: str, target: str, headers: bytes = b"", body: bytes = b""
    ) -> Answer | None:
        recording = self.recording
        try:
            answer = await connection.request(method, target, headers, body)
        except TimeoutError:
            if recording:
                self.errors[f"{kind}: timeout after {TIMEOUT:.0f} s"] += 1
            return None
        except (OSError, httptools.HttpParserError) as error:
            if recording:
                self.errors[f"{kind}: {type(error).__name__}"] += 1
            return None
        if recording:
            self.retried += answer.retried
            self.seconds.setdefault(kind, []).append(answer.seconds)
            self.statuses[kind, answer.status] += 1
            if answer.status >= 400:
                self.errors[f"{kind}: HTTP {answer.status}"] += 1
        return answer

    def timing(self, *kinds: str) -> Timing:
        return Timing(" + ".join(kinds), [s for kind in kinds for s in self.seconds.get(kind, [])])

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values()) - self._http_errors

    @property
    def _http_errors(self) -> int:
        return sum(count for (_, status), count in self.statuses.items() if status >= 400)


@dataclass
class Cpu:
    """CPU seconds so far of the web server (its process and uvicorn's workers), of this process, and of the whole
    machine."""

    web: float
    bench: float
    machine_busy: float
    moment: float

    @classmethod
    def now(cls, web_pid: int) -> Cpu:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with open("/proc/stat") as stat:
            ticks = [int(n) for n in stat.readline().split()[1:]]
        busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
        return cls(
            web=sum(_cpu_seconds(pid) for pid in _process_tree(web_pid)),
            bench=usage.ru_utime + usage.ru_stime,
            machine_busy=busy / _TICKS,
            moment=time.perf_counter(),
        )

    def cores_since(self, earlier: Cpu) -> tuple[float, float, float]:
        elapsed = self.moment - earlier.moment
        return (
            (self.web - earlier.web) / elapsed,
            (self.bench - earlier.bench) / elapsed,
            (self.machine_busy - earlier.machine_busy) / elapsed,
        )


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


# ---------------------------------------------------------------------------------------------------------
# Visitors and staff


@dataclass
class Visitor:
    index: int
    url: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    cursor: int = 0
    conversation_id: int = 0

    def __post_init__(self) -> None:
        self.connection = Connection(self.url)
        self.headers = f"X-Visitor-Token: {self.token}\r\n".encode()

    @property
    def talks(self) -> bool:
        return self.index % TALKERS == 0

    async def start(self) -> float:
        """Start a conversation, as the widget's form does; the seconds it took."""
        rng = random.Random(self.index)
        data = {
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "mobile": f"139{self.index:08d}",
            "wechat": "",
            "email": "",
            "question": rng.choice(QUESTIONS),
            "site": "官网",
            "page_url": "https://www.example.com.cn/products/enterprise",
            "page_title": "企业版 - 产品介绍",
            "referrer": "https://www.baidu.com/",
            "language": "zh-CN",
        }
        answer = await self.connection.request(
            "POST",
            "/chat/api/start",
            self.headers + b"Content-Type: application/json\r\n",
            json.dumps(data).encode(),
            give_up_after=STARTING_TIMEOUT,
        )
        if answer.status != 201:
            raise RuntimeError(f"visitor start: HTTP {answer.status}")
        state = json.loads(answer.body)
        self.conversation_id, self.cursor = state["conversation"]["id"], state["last_id"]
        return answer.seconds

    async def chat(self, tally: Tally, until: float) -> None:
        """Poll every 2 s with the cursor, as the open widget does; a talker writes now and then."""
        await asyncio.sleep(random.uniform(0, VISITOR_POLL))
        next_message = time.perf_counter() + random.uniform(0, MESSAGE_EVERY) if self.talks else float("inf")
        while time.perf_counter() < until:
            answer = await tally.call(
                "visitor poll", self.connection, "GET", f"/chat/api/poll?after={self.cursor}", self.headers
            )
            if answer is not None and answer.status == 200:
                self.cursor = max(self.cursor, json.loads(answer.body)["last_id"])
            if time.perf_counter() >= next_message:
                next_message += random.uniform(0.5, 1.5) * MESSAGE_EVERY
                body = json.dumps({"body": random.choice(MESSAGES)}).encode()
                answer = await tally.call(
                    "visitor message",
                    self.connection,
                    "POST",
                    "/chat/api/messages",
                    self.headers + b"Content-Type: application/json\r\n",
                    body,
                )
                if answer is not None and answer.status == 201:
                    self.cursor = max(self.cursor, json.loads(answer.body)["last_id"])
            await asyncio.sleep(VISITOR_POLL)


_POLLER_VERSION = re.compile(rb'id="chat-poller"[^>]*?hx-get="/chat/poll\?v=([^&"]*)')
_BADGE_VERSION = re.compile(rb'hx-get="/chat/badge\?v=([^&"]*)')


@dataclass
class StaffMember:
    """A logged-in staff member with the chat panel open: the panel's poll, the header badge's poll and, on a
    connection of its own like a browser's, a reply now and then."""

    index: int
    url: str
    cookies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.panel, self.badge, self.writer = Connection(self.url), Connection(self.url), Connection(self.url)

    @property
    def username(self) -> str:
        return f"bench_staff{self.index}"

    def _headers(self, extra: bytes = b"") -> bytes:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return f"Cookie: {cookie}\r\n".encode() + extra

    def _keep_cookies(self, answer: Answer | None) -> None:
        for raw in answer.header(b"set-cookie") if answer else []:
            pair = raw.decode().split(";", 1)[0]
            name, _, value = pair.partition("=")
            if value and value != "null" and "max-age=0" not in raw.decode().lower():
                self.cookies[name.strip()] = value.strip()
            else:
                self.cookies.pop(name.strip(), None)

    async def log_in(self, tally: Tally) -> None:
        self._keep_cookies(await tally.call("login", self.writer, "GET", "/login"))
        form = urlencode(
            {"username": self.username, "password": PASSWORD, "_csrf_token": self.cookies.get("csrftoken", "")}
        )
        answer = await tally.call(
            "login",
            self.writer,
            "POST",
            "/login",
            self._headers(b"Content-Type: application/x-www-form-urlencoded\r\n"),
            form.encode(),
        )
        self._keep_cookies(answer)
        if answer is None or answer.status != 303 or answer.header(b"location") == [b"/login"]:
            raise RuntimeError(f"{self.username} could not log in")

    async def watch_panel(self, tally: Tally, until: float) -> None:
        version = ""
        await asyncio.sleep(random.uniform(0, PANEL_POLL))
        while time.perf_counter() < until:
            answer = await tally.call(
                "staff panel poll",
                self.panel,
                "GET",
                f"/chat/poll?v={quote(version)}&c=0&after=0&status=open",
                self._headers(b"HX-Request: true\r\n"),
            )
            self._keep_cookies(answer)
            if answer is not None and answer.status == 200 and (found := _POLLER_VERSION.search(answer.body)):
                version = unquote(found[1].decode())
            await asyncio.sleep(PANEL_POLL)

    async def watch_badge(self, tally: Tally, until: float) -> None:
        version = ""
        await asyncio.sleep(random.uniform(0, BADGE_POLL))
        while time.perf_counter() < until:
            answer = await tally.call(
                "staff badge poll",
                self.badge,
                "GET",
                f"/chat/badge?v={quote(version)}",
                self._headers(b"HX-Request: true\r\n"),
            )
            self._keep_cookies(answer)
            if answer is not None and answer.status == 200 and (found := _BADGE_VERSION.search(answer.body)):
                version = unquote(found[1].decode())
            await asyncio.sleep(BADGE_POLL)

    async def answer_visitors(self, tally: Tally, until: float, visitors: list[Visitor]) -> None:
        """Each staff member answers their own share of the visitors: the first answer takes the conversation,
        after which another staff member may no longer see it."""
        mine = [visitor for visitor in visitors if visitor.index % len(STAFF) == self.index]
        while True:
            pause = random.expovariate(1 / REPLY_EVERY)
            if time.perf_counter() + pause >= until:
                return
            await asyncio.sleep(pause)
            visitor = random.choice(mine)
            answer = await tally.call(
                "staff reply",
                self.writer,
                "POST",
                f"/chat/{visitor.conversation_id}/messages",
                self._headers(
                    b"Content-Type: application/x-www-form-urlencoded\r\nHX-Request: true\r\nHX-Target: chat-pane\r\n"
                    + f"x-csrftoken: {self.cookies.get('csrftoken', '')}\r\n".encode()
                ),
                urlencode({"body": random.choice(REPLIES)}).encode(),
            )
            self._keep_cookies(answer)


# ---------------------------------------------------------------------------------------------------------
# The runs


@dataclass
class Window:
    visitors: int
    chatting: int
    seconds: float
    tally: Tally
    web_cores: float
    bench_cores: float
    other_cores: float
    starts: Timing
    failed_starts: Counter[str]


@dataclass
class Ceiling:
    name: str
    timing: Timing
    seconds: float
    errors: Counter[str]

    @property
    def per_second(self) -> float:
        return len(self.timing.samples) / self.seconds


async def _start_visitors(visitors: list[Visitor], failed: Counter[str]) -> tuple[list[Visitor], list[float]]:
    """The visitors whose start succeeded and the seconds each took; a failed start is counted and its visitor
    left out."""
    gate = asyncio.Semaphore(STARTING_AT_ONCE)

    async def start(visitor: Visitor) -> float | None:
        async with gate:
            try:
                return await visitor.start()
            except (RuntimeError, OSError, httptools.HttpParserError) as error:
                failed[str(error).split(":")[0] if isinstance(error, RuntimeError) else type(error).__name__] += 1
                return None

    taken = await asyncio.gather(*(start(visitor) for visitor in visitors))
    return [v for v, s in zip(visitors, taken, strict=True) if s is not None], [s for s in taken if s is not None]


async def scenario(url: str, web_pid: int) -> tuple[list[Window], list[tuple[str, int]]]:
    """For each number of visitors: start the new ones (not measured), then measure a window of everyone
    chatting while the staff panels watch."""
    tally = Tally()
    staff = [StaffMember(index, url) for index in range(len(STAFF))]
    for member in staff:
        await member.log_in(tally)
    visitors: list[Visitor] = []
    windows = []
    next_index = 0
    for count in VISITORS:
        failed: Counter[str] = Counter()
        started, taken = await _start_visitors([Visitor(index, url) for index in range(next_index, count)], failed)
        next_index = count
        starts = Timing("visitor start", taken)
        visitors += started
        tally = Tally(recording=True)
        until = time.perf_counter() + WINDOW
        before = Cpu.now(web_pid)
        await asyncio.gather(
            *(visitor.chat(tally, until) for visitor in visitors),
            *(member.watch_panel(tally, until) for member in staff),
            *(member.watch_badge(tally, until) for member in staff),
            *(member.answer_visitors(tally, until, visitors) for member in staff),
        )
        web, bench, busy = Cpu.now(web_pid).cores_since(before)
        windows.append(Window(count, len(visitors), WINDOW, tally, web, bench, busy - web - bench, starts, failed))
        print(
            f"  {count} visitors: poll p99 {tally.timing('visitor poll').p99:.1f} ms, "
            f"{sum(tally.errors.values())} errors, web {web:.2f} cores, bench {bench:.2f} cores"
        )
    for connection in [v.connection for v in visitors] + [c for m in staff for c in (m.panel, m.badge, m.writer)]:
        connection.close()
    return windows, [(visitor.token, visitor.cursor) for visitor in visitors]


async def _closed_loop(
    name: str, url: str, requests: Iterable[tuple[str, bytes]], seconds: float, tally: Tally | None = None
) -> Ceiling:
    """CEILING_CONNECTIONS connections, each sending its next request as soon as the last one answered."""
    tally = tally or Tally(recording=True)
    pending = iter(requests)
    until = time.perf_counter() + seconds

    async def loop() -> None:
        connection = Connection(url)
        while time.perf_counter() < until:
            target, headers = next(pending)
            await tally.call(name, connection, "GET", target, headers)
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(CEILING_CONNECTIONS)))
    return Ceiling(name, tally.timing(name), time.perf_counter() - started, tally.errors)


async def ceiling(url: str, visitors: list[tuple[str, int]]) -> list[Ceiling]:
    """Nothing-new polls (each visitor's token with its cursor) against GET /health, in two alternating halves so
    that a change in the machine's other load falls on both."""

    def polls() -> Iterable[tuple[str, bytes]]:
        while True:
            for token, cursor in visitors:
                yield f"/chat/api/poll?after={cursor}", f"X-Visitor-Token: {token}\r\n".encode()

    def health() -> Iterable[tuple[str, bytes]]:
        while True:
            yield "/health", b""

    await _closed_loop("warm-up", url, polls(), 2)
    await _closed_loop("warm-up", url, health(), 2)
    poll_name, health_name = 'poll, "nothing new" (204)', "GET /health"
    poll_tally, health_tally = Tally(recording=True), Tally(recording=True)
    halves = dict.fromkeys((poll_name, health_name), 0.0)
    for _ in range(2):
        for name, requests, tally in ((poll_name, polls(), poll_tally), (health_name, health(), health_tally)):
            halves[name] += (await _closed_loop(name, url, requests, CEILING_SECONDS / 2, tally)).seconds
    return [
        Ceiling(name, tally.timing(name), halves[name], tally.errors)
        for name, tally in ((poll_name, poll_tally), (health_name, health_tally))
    ]


def run_setup(engine: str, web_workers: int) -> tuple[list[Window], list[Ceiling], Counter[str]]:
    """The windows and the ceiling on a fresh database, and the exceptions the web server logged."""
    with database(engine) as env:
        kehu("migrate", env=env)
        for index, name in enumerate(STAFF):
            kehu("createuser", f"bench_staff{index}", "--role", "staff", "--name", name, env=env)
        port = free_port()
        var = Path(env["KEHU_VAR_DIR"])
        env |= {"MEILI_URL": f"http://127.0.0.1:{port}", "KEHU_INDEX_PREFIX": "bench_"}
        env |= {"KEHU_WORKERS": str(web_workers), **LIFTED_LIMITS}
        with meilisearch(var / "meilisearch", port, *SEARCH_PROCESS_OPTIONS), worker(env, var / "worker.log"):
            with serving(env, var / "web.log") as (url, process):
                windows, visitors = uvloop.run(scenario(url, process.pid))
            with serving(env | CEILING_LIMITS, var / "web.log") as (url, _):
                ceilings = uvloop.run(ceiling(url, visitors))
        logged = Counter(found[1][:160] for found in _EXCEPTION.finditer((var / "web.log").read_text()))
    return windows, ceilings, logged


# The last line of a traceback: the exception and its message.
_EXCEPTION = re.compile(r"^((?:\w+\.)*\w+(?:Error|Exception|Exhausted)\b.*)$", re.MULTILINE)


def _ms(timing: Timing) -> str:
    if not timing.samples:
        return "—"
    return f"{timing.p50:.1f} / {timing.p95:.1f} / {timing.p99:.1f}"


def windows_table(rows: list[tuple[int, Window]]) -> str:
    lines = [
        "| web workers | visitors | requests | req/s | visitor polls p50 / p95 / p99 ms | "
        "staff polls p50 / p95 / p99 ms | writes p50 / p95 / p99 ms | errors | CPU cores: web / load / rest "
        "| starts before, p50 / p95 / p99 ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workers, window in rows:
        tally = window.tally
        lines.append(
            f"| {workers} | {window.visitors:,} | {tally.requests:,} | {tally.requests / window.seconds:.0f} "
            f"| {_ms(tally.timing('visitor poll'))} | {_ms(tally.timing('staff panel poll', 'staff badge poll'))} "
            f"| {_ms(tally.timing('visitor message', 'staff reply'))} | {sum(tally.errors.values())} "
            f"| {window.web_cores:.2f} / {window.bench_cores:.2f} / {window.other_cores:.2f} "
            f"| {_ms(window.starts)} |"
        )
    return "\n".join(lines)


def ceilings_table(rows: list[tuple[int, list[Ceiling]]]) -> str:
    lines = [
        "| web workers | what | requests | req/s | p50 ms | p99 ms | errors | req/s vs /health |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workers, (poll, health) in rows:
        for found in (health, poll):
            lines.append(
                f"| {workers} | {found.name} | {len(found.timing.samples):,} | {found.per_second:,.0f} "
                f"| {found.timing.p50:.1f} | {found.timing.p99:.1f} | {sum(found.errors.values())} "
                f"| {found.per_second / health.per_second:.2f}× |"
            )
    return "\n".join(lines)


def verdict(rows: list[tuple[int, Window]]) -> str:
    lines = []
    for workers, window in rows:
        if window.visitors != TARGET_VISITORS:
            continue
        p99 = window.tally.timing("visitor poll").p99
        errors = sum(window.tally.errors.values())
        met = p99 <= TARGET_P99_MS and errors == 0
        lines.append(
            f"- {workers} web worker{'s' if workers > 1 else ''}: visitor polls p99 {p99:.1f} ms, {errors} errors "
            f"— target {'met' if met else 'NOT met'}."
        )
    return "\n".join(lines)


def error_notes(
    rows: list[tuple[int, Window]], ceilings: list[tuple[int, list[Ceiling]]], logged: list[tuple[int, Counter[str]]]
) -> str:
    retried = sum(window.tally.retried for _, window in rows)
    again = (
        f" Requests sent again on a new connection because the server had just closed the idle one, as a browser "
        f"does: {retried} (each counts once, with the time of both tries)."
        if retried
        else ""
    )
    notes = []
    for workers, window in rows:
        for what, count in sorted(window.failed_starts.items()):
            notes.append(
                f"- {workers} web worker(s), {window.visitors:,} visitors, before the window: {count} × {what} "
                f"(the window ran with {window.chatting:,} visitors)"
            )
        for what, count in sorted(window.tally.errors.items()):
            notes.append(f"- {workers} web worker(s), {window.visitors:,} visitors: {count} × {what}")
    for workers, found in ceilings:
        for each in found:
            for what, count in sorted(each.errors.items()):
                notes.append(f"- {workers} web worker(s), ceiling: {count} × {what}")
    for workers, exceptions in logged:
        for what, count in exceptions.most_common():
            notes.append(f"- {workers} web worker(s), in the server's log: {count} × `{what}`")
    return ("Errors:\n\n" + "\n".join(notes) + "\n\n" + again.strip()) if notes else "No errors." + again


def run_engine(engine: str) -> str:
    rows: list[tuple[int, Window]] = []
    ceilings: list[tuple[int, list[Ceiling]]] = []
    logged: list[tuple[int, Counter[str]]] = []
    for workers in WEB_WORKERS:
        print(f"chat: {engine}, {workers} web worker(s)")
        windows, found, exceptions = run_setup(engine, workers)
        rows += [(workers, window) for window in windows]
        ceilings.append((workers, found))
        logged.append((workers, exceptions))
    name = "SQLite" if engine == "sqlite" else "PostgreSQL 15"
    return (
        f"### {name}\n\n{verdict(rows)}\n\n{windows_table(rows)}\n\n"
        f"Ceiling: {CEILING_CONNECTIONS} connections, each sending its next request as soon as the last one "
        f"answered, {CEILING_SECONDS:.0f} s of each, in alternating halves.\n\n"
        f"{ceilings_table(ceilings)}\n\n{error_notes(rows, ceilings, logged)}"
    )


SETUP = """\
`make run`'s processes: the web server (`kehu serve`, uvicorn, with the number of worker processes in each \
row), the bench's own Meilisearch and the outbox worker, on a fresh database with {staff} staff accounts. For \
each number of visitors the new visitors start a conversation first (not measured: each makes a prospect \
customer), then for {window:.0f} s every visitor polls `/chat/api/poll?after=<last id>` 2 s after its last \
poll answered, as the widget does (first polls spread over 2 s); one visitor in {talkers} sends a message about \
every {message:.0f} s; {staff} logged-in staff members poll the panel (`/chat/poll`) every 2 s and the header \
badge every 3 s, and each answers one of their share of the visitors about every {reply:.0f} s. Each visitor \
has its own keep-alive connection and token. The per-address limits (`KEHU_CHAT_REQUESTS_PER_IP_MINUTE`, \
`KEHU_CHAT_STARTS_PER_IP_HOUR`) were lifted because every simulated visitor comes from 127.0.0.1; the \
per-visitor limit stayed at its default of 120 requests a minute. The ceiling ran on a server started again \
with the per-visitor limit lifted too, since it polls each token far faster than a widget does.

Latency is from the request handed to the connection (a new connection's handshake included) to the last \
byte of the answer parsed, in the load generator (this process: asyncio + uvloop, a hand-written HTTP/1.1 \
client), which runs on the same {cores} cores. The CPU column gives the cores used on average during the window \
by the web server (all its workers), by the load generator, and by the rest of the machine: the database, \
Meilisearch, the outbox worker and whatever else runs there (the machine is shared; its load average was \
{load:.1f} when this run began). "Writes" are visitor messages and staff replies; "starts before" are the new \
visitors' starts, {starting} at a time, before the window. An error is any answer ≥ 400, a timeout \
({timeout:.0f} s) or a broken connection."""


def main() -> None:
    load = os.getloadavg()[0]
    engines = ["sqlite"] + (["postgres"] if postgres_available() else [])
    sections = [run_engine(engine) for engine in engines]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    setup = SETUP.format(
        staff=len(STAFF),
        window=WINDOW,
        talkers=TALKERS,
        message=MESSAGE_EVERY,
        reply=REPLY_EVERY,
        cores=os.cpu_count(),
        timeout=TIMEOUT,
        load=load,
        starting=STARTING_AT_ONCE,
    )
    write_section(
        "40-chat",
        f"## Website chat: visitors polling, staff panels\n\n{stamp}, {machine()}. Target: "
        f"{TARGET_VISITORS:,} concurrent visitors with visitor polls p99 ≤ {TARGET_P99_MS:.0f} ms and no errors, "
        "on SQLite and on PostgreSQL.\n\n" + setup + "\n\n" + "\n\n".join(sections),
    )


if __name__ == "__main__":
    main()
