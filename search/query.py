"""Questions Kehu asks Meilisearch: search-as-you-type across everything, and the filtered customer list.

Callers pass the permission scope as a Meilisearch filter (built next to the database scope in the customers
service), so a result, a count and a highlight never come from outside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from search import engine as meili
from search.documents import CUSTOMERS, FACET_GROUPS, FACET_VALUES, FEEDBACK, FOLLOW_UPS
from search.text import MARK_END, MARK_START, has_cjk, phone_query

_HIGHLIGHT = {"highlightPreTag": MARK_START, "highlightPostTag": MARK_END}
_LATIN_WORD = re.compile(r"[0-9A-Za-z@._\-]{2,}")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]{2,}")


def prepare_query(raw: str) -> str:
    """What is sent to Meilisearch: a phone number typed with spaces, dashes or +86 becomes its digits."""
    return phone_query(raw) or raw.strip()


def _terms(query: str) -> list[str]:
    """Parts of the query to mark in a value Meilisearch did not mark itself (a part of a Chinese word, digits
    inside a formatted phone number)."""
    return [*_CJK_RUN.findall(query), *_LATIN_WORD.findall(query)]


def _mark_terms(value: str, terms: list[str]) -> str:
    for term in sorted(terms, key=len, reverse=True):
        # Digits may be split by the spaces of a formatted number: 138 1234 5678.
        pattern = r"[\s\-]?".join(map(re.escape, term)) if term.isdigit() else re.escape(term)
        value, count = re.subn(f"({pattern})", f"{MARK_START}\\1{MARK_END}", value, count=1, flags=re.IGNORECASE)
        if count:
            break
    return value


def highlighted(value: str, formatted: str | None, query: str) -> Markup:
    """The value as safe HTML with the matched words in <mark>; everything else escaped."""
    value = value or ""
    source = formatted if formatted and MARK_START in formatted else value
    if MARK_START not in source and (has_cjk(query) or phone_query(query)):
        source = _mark_terms(value, _terms(prepare_query(query)))
    # Safe: the text is escaped first; only the marks, which no text contains, become tags.
    return Markup(str(escape(source)).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>"))  # noqa: S704


def _join(filters: list[str]) -> str:
    return " AND ".join(f"({part})" for part in filters if part)


# ---------------------------------------------------------------------------------------------------------
# Search as you type


@dataclass
class Hit:
    id: int
    customer_id: int | None
    title: Markup
    detail: Markup
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Found:
    customers: list[Hit]
    follow_ups: list[Hit]
    feedback: list[Hit]
    totals: dict[str, int]

    @property
    def empty(self) -> bool:
        return not (self.customers or self.follow_ups or self.feedback)


def _customer_hit(hit: dict[str, Any], query: str) -> Hit:
    shown = hit.get("_formatted", {})
    # The line under the name shows what matched when it was not the name: company, contact, phone, email.
    detail: Markup | None = None
    for key in ("company", "contact_names", "mobile", "phone", "emails", "wechats"):
        value = hit.get(key)
        if isinstance(value, list):
            value = "、".join(value)
            formatted = "、".join(shown.get(key) or [])
        else:
            formatted = shown.get(key)
        if not value:
            continue
        marked = highlighted(value, formatted, query)
        if "<mark>" in marked or not detail:
            detail = marked
            if "<mark>" in marked:
                break
    return Hit(
        id=hit["id"],
        customer_id=hit["id"],
        title=highlighted(hit["name"], shown.get("name"), query),
        detail=detail or Markup(""),
        extra={key: hit.get(key) for key in ("kind", "province", "city", "owner_name", "owner_id")},
    )


def _text_hit(hit: dict[str, Any], query: str, fields: tuple[str, ...], title_key: str) -> Hit:
    shown = hit.get("_formatted", {})
    detail = Markup("")
    for key in fields:
        if hit.get(key):
            detail = highlighted(hit[key], shown.get(key), query)
            if "<mark>" in detail:
                break
    title_value = hit.get(title_key) or hit.get("visitor_name") or ""
    return Hit(
        id=hit["id"],
        customer_id=hit.get("customer_id"),
        title=highlighted(title_value, shown.get(title_key), query),
        detail=detail,
        extra={key: hit.get(key) for key in ("happened_ts", "created_ts", "author_name", "status", "rating")},
    )


def search_everything(query: str, scope: str, *, limit: int = 5) -> Found:
    """Customers, follow-ups and feedback matching the query, each group best first (synchronous)."""
    q = prepare_query(query)
    common = {"q": q, "filter": scope, "limit": limit, "matchingStrategy": "all", **_HIGHLIGHT}
    results = meili.call_sync(
        meili.multi_search,
        [
            {
                "indexUid": meili.uid(CUSTOMERS),
                "attributesToHighlight": ["name", "company", "contact_names", "mobile", "phone", "emails", "wechats"],
                "attributesToRetrieve": [
                    "id",
                    "name",
                    "company",
                    "contact_names",
                    "mobile",
                    "phone",
                    "emails",
                    "wechats",
                    "kind",
                    "province",
                    "city",
                    "owner_name",
                    "owner_id",
                ],
                **common,
            },
            {
                "indexUid": meili.uid(FOLLOW_UPS),
                "attributesToHighlight": ["content", "outcome", "customer_name"],
                "attributesToCrop": ["content", "outcome"],
                "cropLength": 24,
                **common,
            },
            {
                "indexUid": meili.uid(FEEDBACK),
                "attributesToHighlight": ["content", "reply", "customer_name", "visitor_name"],
                "attributesToCrop": ["content", "reply"],
                "cropLength": 24,
                **common,
            },
        ],
    )["results"]
    customers, follow_ups, feedback = results
    return Found(
        customers=[_customer_hit(hit, query) for hit in customers["hits"]],
        follow_ups=[_text_hit(hit, query, ("content", "outcome"), "customer_name") for hit in follow_ups["hits"]],
        feedback=[_text_hit(hit, query, ("content", "reply"), "customer_name") for hit in feedback["hits"]],
        totals={
            CUSTOMERS: customers.get("estimatedTotalHits", 0),
            FOLLOW_UPS: follow_ups.get("estimatedTotalHits", 0),
            FEEDBACK: feedback.get("estimatedTotalHits", 0),
        },
    )


# ---------------------------------------------------------------------------------------------------------
# The customer list


@dataclass
class CustomerResults:
    ids: list[int]
    total: int
    # {"province": {"云南省": 12, …}, …}: for each group, counts under every filter except that group's own.
    facets: dict[str, dict[str, int]]
    highlights: dict[int, dict[str, Markup]]
    # {"province": 40, …}: for each group, how many match every filter except that group's own — the "All" of
    # its select, and what the owner counts subtract from to give the public pool (no owner is no facet value).
    group_totals: dict[str, int] = field(default_factory=dict)


def _split_facet_values(counts: dict[str, int], groups: list[str]) -> dict[str, dict[str, int]]:
    """{"city:昆明市": 3, "tier:A": 1} → {"city": {"昆明市": 3}, "tier": {"A": 1}}, for the groups asked."""
    split: dict[str, dict[str, int]] = {group: {} for group in groups}
    for key, count in counts.items():
        group, _, value = key.partition(":")
        if group in split:
            split[group][value] = count
    return split


def _complete(combined: dict[str, int], total: int) -> bool:
    """Whether the combined attribute's counts can be trusted. Every customer has a kind, so its kind counts add
    up to the total, unless documents indexed before the attribute existed lack it (until `kehu reindex`); and a
    facet reports at most MAX_FACET_VALUES values."""
    kinds = sum(count for key, count in combined.items() if key.startswith("kind:"))
    return kinds == total and len(combined) < meili.MAX_FACET_VALUES


def _facet_counts(q: str, everything: str, groups: list[str]) -> dict[str, dict[str, int]]:
    """The groups' counts attribute by attribute: slower for a small result, right whatever the documents hold."""
    result = meili.call_sync(
        meili.client().index(meili.uid(CUSTOMERS)).search,
        q,
        {"filter": everything, "facets": groups, "hitsPerPage": 0, "matchingStrategy": "all"},
    )
    return {group: dict(result.get("facetDistribution", {}).get(group, {})) for group in groups}


def customer_ids(query: str, scope: str, filters: dict[str, str], *, sort: list[str], limit: int) -> list[int]:
    """The ids of every customer in the scope matching the query and the filters, in the list's order, at most
    `limit` (synchronous): what an export of a list view writes."""
    per_page = 1000
    ids: list[int] = []
    page = 1
    while len(ids) < limit:
        result = meili.call_sync(
            meili.client().index(meili.uid(CUSTOMERS)).search,
            prepare_query(query),
            {
                "filter": _join([scope, *filters.values()]),
                "sort": sort,
                "page": page,
                "hitsPerPage": per_page,
                "matchingStrategy": "all",
                "attributesToRetrieve": ["id"],
            },
        )
        ids.extend(hit["id"] for hit in result["hits"])
        if len(result["hits"]) < per_page:
            break
        page += 1
    return ids[:limit]


def customer_page(
    query: str,
    scope: str,
    filters: dict[str, str],
    *,
    sort: list[str],
    page: int,
    per_page: int,
) -> CustomerResults:
    """One page of customers in the scope matching the query and the filters (one Meilisearch filter string
    per facet group), with exact totals and facet counts for every group (synchronous).

    Each group with a filter of its own gets a query without it, so choosing 广东 still shows 云南's count. The
    page, the counts of the groups without a filter, and those with one are three requests sent at once: a page
    far down a sorted list costs Meilisearch about as much as all the counts.
    """
    q = prepare_query(query)
    everything = _join([scope, *filters.values()])
    groups = list(dict.fromkeys([*filters, *FACET_GROUPS]))
    unfiltered_groups = [group for group in groups if group not in filters]
    matching = {"indexUid": meili.uid(CUSTOMERS), "q": q, "matchingStrategy": "all"}
    page_query = {
        **matching,
        "filter": everything,
        "sort": sort,
        "page": page,
        "hitsPerPage": per_page,
        "attributesToRetrieve": ["id"],
        # Without a query there is nothing to mark, and asking for it makes Meilisearch read every hit.
        **({"attributesToHighlight": ["name", "company"], **_HIGHLIGHT} if q else {}),
    }
    batches = [[page_query]]
    if unfiltered_groups:
        # The groups without a filter, all counted at once from their combined attribute.
        batches.append([{**matching, "filter": everything, "facets": [FACET_VALUES], "hitsPerPage": 0}])
    if filters:
        batches.append(
            [
                {
                    **matching,
                    "filter": _join([scope, *(value for key, value in filters.items() if key != group)]),
                    "facets": [group],
                    "hitsPerPage": 0,
                }
                for group in filters
            ]
        )
    answers = meili.call_sync(meili.multi_searches, batches)
    main = answers[0][0]
    total = main.get("totalHits", 0)
    facets: dict[str, dict[str, int]] = {}
    if unfiltered_groups:
        combined = answers[1][0].get("facetDistribution", {}).get(FACET_VALUES, {})
        if _complete(combined, total):
            facets = _split_facet_values(combined, unfiltered_groups)
        else:
            facets = _facet_counts(q, everything, unfiltered_groups)
    group_totals = dict.fromkeys(unfiltered_groups, total)
    for group, result in zip(filters, answers[-1] if filters else [], strict=True):
        facets[group] = dict(result.get("facetDistribution", {}).get(group, {}))
        group_totals[group] = result.get("totalHits", 0)
    highlights = {
        hit["id"]: {
            "name": highlighted(hit["_formatted"].get("name", ""), hit["_formatted"].get("name"), query),
            "company": highlighted(hit["_formatted"].get("company", ""), hit["_formatted"].get("company"), query),
        }
        for hit in main["hits"]
        if "_formatted" in hit
    }
    return CustomerResults(
        ids=[hit["id"] for hit in main["hits"]],
        total=total,
        facets=facets,
        highlights=highlights,
        group_totals=group_totals,
    )
