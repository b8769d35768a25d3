"""The Meilisearch client, the index names and their settings.

The `meilisearch` client is synchronous and has no default timeout: every call here has a timeout, and async
callers run it in a thread (`call`). When Meilisearch cannot be reached, callers get `Unavailable` and the
process stops asking for a few seconds, so pages that fall back to the database do not each wait for a timeout.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as all_done
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
import meilisearch
import urllib3
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError, MeilisearchTimeoutError

from app.config import get_settings
from search.documents import CUSTOMERS, FACET_VALUES, FEEDBACK, FOLLOW_UPS, INDEXES

T = TypeVar("T")
TIMEOUT_SECONDS = 2
TASK_TIMEOUT_MS = 60_000
POLL_MAX_MS = 100
RETRY_AFTER_SECONDS = 5.0
# The most values one facet reports: the customer list's combined facet holds every owner, province, city, channel,
# budget band and industry among the customers found, so it must be roomy (search/query.py checks it was).
MAX_FACET_VALUES = 5_000


def _chinese(*attributes: str) -> list[dict[str, list[str]]]:
    """Text in these attributes is segmented as Chinese; otherwise a short name like 王芳 may be taken for
    Japanese and cut differently from the query."""
    return [{"attributePatterns": list(attributes), "locales": ["cmn"]}]


SETTINGS: dict[str, dict[str, Any]] = {
    CUSTOMERS: {
        # Order matters for ranking: a hit in the name beats a hit in a contact's title. Needs and
        # characteristics are long free text: segmenting them would triple indexing time, so they are not here.
        "searchableAttributes": [
            "name",
            "company",
            "contact_names",
            "grams",
            "pinyin",
            "phones",
            "emails",
            "wechats",
            "title",
            "contact_titles",
        ],
        "filterableAttributes": [
            "id",
            FACET_VALUES,
            "kind",
            "origin",
            "owner_id",
            "province",
            "city",
            "channel_id",
            "industry_id",
            "budget_id",
            "tier",
            "segment",
            "utm_source",
            "utm_campaign",
            "last_contact_ts",
            "created_ts",
        ],
        "sortableAttributes": ["updated_ts", "created_ts", "name_sort", "last_contact_ts", "next_follow_up_ts"],
        "localizedAttributes": _chinese("name", "company", "contact_names", "grams", "title", "contact_titles"),
        "typoTolerance": {
            "enabled": True,
            # Digits are never corrected: 1234 must not find 1235.
            "disableOnNumbers": True,
            "disableOnAttributes": ["phones", "grams"],
        },
        "faceting": {"maxValuesPerFacet": MAX_FACET_VALUES},
        "pagination": {"maxTotalHits": 1_000_000},
    },
    FOLLOW_UPS: {
        "searchableAttributes": ["content", "outcome", "customer_name", "author_name"],
        "filterableAttributes": ["id", "owner_id", "customer_id"],
        "sortableAttributes": ["happened_ts"],
        "localizedAttributes": _chinese("content", "outcome", "customer_name"),
        "typoTolerance": {"disableOnNumbers": True},
    },
    FEEDBACK: {
        "searchableAttributes": ["content", "reply", "customer_name", "visitor_name", "visitor_contact"],
        "filterableAttributes": ["id", "owner_id", "customer_id", "status"],
        "sortableAttributes": ["created_ts"],
        "localizedAttributes": _chinese("content", "reply", "customer_name", "visitor_name"),
        "typoTolerance": {"disableOnNumbers": True},
    },
}
for _settings in SETTINGS.values():
    # Word proximity within an attribute only: much faster indexing, and names are short anyway. No search
    # inside facet values (Kehu lists them all): Meilisearch then skips building that structure.
    _settings["proximityPrecision"] = "byAttribute"
    _settings["facetSearch"] = False


class Unavailable(RuntimeError):
    """Meilisearch could not be reached or did not answer in time."""


def index_prefix() -> str:
    return os.environ.get("KEHU_INDEX_PREFIX", "kehu_")


def uid(name: str, *, suffix: str = "") -> str:
    """The Meilisearch index uid of one of Kehu's indexes (`customers`, …), e.g. kehu_customers."""
    return f"{index_prefix()}{name}{suffix}"


_local = threading.local()


def client() -> meilisearch.Client:
    """One client per thread: the client rewrites its shared request headers on every call, so two threads
    sharing one send each other's Content-Type."""
    if getattr(_local, "client", None) is None:
        settings = get_settings()
        _local.client = meilisearch.Client(
            settings.meili_url, settings.meili_master_key or None, timeout=TIMEOUT_SECONDS
        )
    return _local.client


class Refused(RuntimeError):
    """Meilisearch answered a kept-alive request (multi_search) with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Meilisearch answered {status} {code}: {message}")
        self.code = code


_pools: dict[str, urllib3.HTTPConnectionPool] = {}
_pools_lock = threading.Lock()


def _kept_alive(url: str) -> urllib3.HTTPConnectionPool:
    with _pools_lock:
        if url not in _pools:
            _pools[url] = urllib3.connection_from_url(
                url,
                maxsize=8,
                timeout=urllib3.Timeout(TIMEOUT_SECONDS),
                retries=False,
                # The request's head and body leave in two writes: without this the body waits for Meilisearch
                # to acknowledge the head, which it delays by 40 ms.
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            )
        return _pools[url]


def multi_search(queries: list[dict[str, Any]]) -> dict[str, Any]:
    """Meilisearch's multi-search on a connection kept open between calls: every filtered customer list and
    every search page makes one. The client opens a new connection and session for each call, which cost a
    list page about 6 ms of its 40 here. Errors as the client's: see call_sync."""
    settings = get_settings()
    headers = {"Content-Type": "application/json"}
    if settings.meili_master_key:
        headers["Authorization"] = f"Bearer {settings.meili_master_key}"
    path = urlsplit(settings.meili_url).path.rstrip("/") + "/multi-search"
    body = json.dumps({"queries": queries}).encode()
    for attempt in (1, 2):
        try:
            response = _kept_alive(settings.meili_url).request("POST", path, body=body, headers=headers)
            break
        except urllib3.exceptions.ProtocolError as error:
            # A kept connection Meilisearch had closed (idle, or restarted): once more on a new one. A search
            # changes nothing, so asking twice is safe.
            if attempt == 2:
                raise MeilisearchCommunicationError(str(error)) from error
        except urllib3.exceptions.TimeoutError as error:
            raise MeilisearchTimeoutError(str(error)) from error
        except urllib3.exceptions.HTTPError as error:
            raise MeilisearchCommunicationError(str(error)) from error
    if response.status >= 400:
        try:
            answer = json.loads(response.data)
        except ValueError:
            answer = {}
        raise Refused(response.status, str(answer.get("code", "")), str(answer.get("message", ""))[:300])
    return json.loads(response.data)


# Meilisearch answers the queries of one multi-search one after another, but requests side by side on its
# threads (one per core). A few threads here send the parts of a page's searches at once.
_side_by_side = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kehu-search")


def multi_searches(batches: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Several multi-searches sent at once, each on a kept connection of its own: the results of each batch's
    queries, in order. The batches' errors as multi_search's (the first one raised)."""
    later = [_side_by_side.submit(multi_search, batch) for batch in batches[1:]]
    try:
        first = multi_search(batches[0])
    finally:
        # None is left running when this returns or raises.
        all_done(later)
    return [first["results"], *(future.result()["results"] for future in later)]


_down_until = 0.0
# Answers that mean the index is not ready for this release's questions yet (see call_sync).
_NOT_READY = frozenset({"index_not_found", "invalid_search_filter", "invalid_search_facets"})


def _mark_down() -> None:
    global _down_until
    _down_until = time.monotonic() + RETRY_AFTER_SECONDS


def mark_up() -> None:
    global _down_until
    _down_until = 0.0


def call_sync(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the client; connection failures and timeouts become Unavailable."""
    if time.monotonic() < _down_until:
        raise Unavailable("Meilisearch was unreachable moments ago")
    try:
        return function(*args, **kwargs)
    except (MeilisearchCommunicationError, MeilisearchTimeoutError) as error:
        _mark_down()
        raise Unavailable(str(error)) from error
    except (MeilisearchApiError, Refused) as error:
        # Before the worker has built the indexes, or while it applies new settings at start-up (a filter or
        # facet on an attribute added by this release is refused until then), search is as good as down.
        if error.code in _NOT_READY:
            raise Unavailable(str(error)) from error
        raise


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: call_sync(function, *args, **kwargs))


def wait(task: Any, *, tolerate: str = "", interval_ms: int = 10) -> None:
    """Wait for a Meilisearch task and raise if it failed (unless with the `tolerate` error code): outbox rows
    are deleted only after success.

    It asks at once, then after `interval_ms`, each wait twice the one before up to POLL_MAX_MS: a
    one-document change is seen done within milliseconds, while a batch of an import, which takes seconds, is
    not asked about a hundred times a second (each time costs the worker 2 ms of CPU, on the cores Meilisearch
    and the import need)."""
    deadline = time.monotonic() + TASK_TIMEOUT_MS / 1000
    delay = interval_ms / 1000
    meili = client()
    while True:
        result = meili.get_task(task.task_uid)
        if result.status not in ("enqueued", "processing"):
            break
        if time.monotonic() >= deadline:
            raise MeilisearchTimeoutError(f"Meilisearch task {task.task_uid} not done after {TASK_TIMEOUT_MS} ms")
        time.sleep(delay)
        delay = min(delay * 2, max(interval_ms, POLL_MAX_MS) / 1000)
    if result.status != "succeeded" and not (tolerate and (result.error or {}).get("code") == tolerate):
        raise RuntimeError(f"Meilisearch task {task.task_uid} {result.status}: {result.error}")


def _existing_indexes() -> set[str]:
    """The uids of the indexes Meilisearch has. Listed rather than asked for one by one: Meilisearch logs every
    "not found" answer as a warning, and a first start or a rebuild would fill `make run`'s log with them."""
    return {index["uid"] for index in client().get_raw_indexes({"limit": 1000})["results"]}


def ensure_indexes(*, suffix: str = "") -> None:
    """Create the indexes if missing and apply their settings; cheap when nothing changed."""
    meili = client()
    existing = _existing_indexes()
    for name in INDEXES:
        index_uid = uid(name, suffix=suffix)
        if index_uid not in existing:
            wait(meili.create_index(index_uid, {"primaryKey": "id"}), tolerate="index_already_exists")
        wait(meili.index(index_uid).update_settings(SETTINGS[name]))


def delete_index(index_uid: str) -> None:
    """Delete the index if there is one (one deleted meanwhile by someone else is no error either)."""
    if index_uid in _existing_indexes():
        wait(client().delete_index(index_uid), tolerate="index_not_found")


def filterable_attributes(name: str) -> list[str]:
    """The filterable attributes an existing index has now (before `ensure_indexes`, those of the release that
    last applied its settings)."""
    return list(client().index(uid(name)).get_filterable_attributes() or [])


def document_counts(*, suffix: str = "") -> dict[str, int | None]:
    """Documents per index; None for an index that does not exist yet."""
    counts: dict[str, int | None] = dict.fromkeys(INDEXES)
    existing = _existing_indexes()
    for name in INDEXES:
        index_uid = uid(name, suffix=suffix)
        if index_uid not in existing:
            continue
        try:
            counts[name] = client().index(index_uid).get_stats().number_of_documents
        except MeilisearchApiError as error:
            # Deleted since it was listed.
            if error.code != "index_not_found":
                raise
    return counts
