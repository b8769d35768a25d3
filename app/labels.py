"""Display names for the fixed choices stored in the database, translated when shown."""

from __future__ import annotations

from enum import Enum
from typing import Any

from markupsafe import Markup, escape

from app.i18n import N_, _, current_language

TIERS = frozenset({"A", "B", "C"})

# Translated one at a time where shown: translating the whole table on each call cost the customer list some
# 400 catalogue lookups per page.
_NAMES = {
    "staff": N_("Staff"),
    "supervisor": N_("Supervisor"),
    "admin": N_("Admin"),
    "prospect": N_("Prospect"),
    "member": N_("Member"),
    "own": N_("Own data"),
    "external": N_("External data"),
    "A": N_("Tier A"),
    "B": N_("Tier B"),
    "C": N_("Tier C"),
    "important_value": N_("Important value customers"),
    "important_develop": N_("Important development customers"),
    "important_keep": N_("Important retention customers"),
    "important_retain": N_("Important win-back customers"),
    "general_value": N_("General value customers"),
    "general_develop": N_("General development customers"),
    "general_keep": N_("General retention customers"),
    "general_retain": N_("General win-back customers"),
    "negotiating": N_("Negotiating"),
    "in_progress": N_("In progress"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
    "new": N_("New"),
    "handled": N_("Handled"),
}


def label(value: Enum | str | None, *, short: bool = False) -> str:
    """The translated name of a role, kind, origin, tier, RFM segment or status; '' for None.

    `short=True` gives a value tier's badge for lists and page headers ('A类' rather than 'A类客户')."""
    if value is None:
        return ""
    key = value.value if isinstance(value, Enum) else value
    if short and key in TIERS:
        return _("Tier %(tier)s", tier=key)
    message = _NAMES.get(key)
    return _(message) if message else key


def option_label(row: dict | None, prefix: str = "") -> str:
    """An option list entry's label in the current language (English falls back to the Chinese label)."""
    if not row:
        return ""
    label_zh = row.get(f"{prefix}label") or ""
    label_en = row.get(f"{prefix}label_en") or ""
    return label_en if current_language() == "en" and label_en else label_zh


def customer_field(customer: dict[str, Any], spec: Any) -> Markup:
    """What a stored customer field shows on the customer page (a FieldSpec from customers.service).

    A Python function rather than a template macro: the customer page shows twenty-odd fields, and importing a
    macro module into each field fragment costs more than the rest of the fragment."""
    name = spec.name
    if name == "mobile":
        return escape(customer["mobile_display"])
    if spec.widget == "option":
        return escape(option_label(customer, f"{name}_"))
    if name == "origin":
        return escape(label(customer["origin"]))
    if name == "value_tier":
        tier = customer["value_tier"]
        if not tier:
            return Markup("")
        shown = Markup('<span class="badge tier-{}">{}</span>').format(tier, label(tier))
        if customer["tier_pinned"]:
            shown += Markup(' <span class="muted">{}</span>').format(_("(set by hand)"))
        return shown
    return escape(customer[name] or "")
