"""Option lists: source channels, industries, budget bands and follow-up methods, editable by an admin."""

from __future__ import annotations

from typing import Any

from app.accounts.service import CurrentUser
from app.core import service as core
from app.db import Prepared, transaction
from app.i18n import _
from app.options.tables import OptionItem, OptionKind

# Seeded on first migrate. Budget bands are ordered cheapest first: the analysis reads their position as rank.
DEFAULTS: dict[OptionKind, list[tuple[str, str]]] = {
    OptionKind.source_channel: [
        ("网站在线咨询", "Website chat"),
        ("搜索引擎", "Search engine"),
        ("广告", "Advertising"),
        ("转介绍", "Referral"),
        ("展会", "Trade fair"),
        ("电话咨询", "Phone enquiry"),
        ("老客户", "Returning customer"),
        ("招投标平台", "Tender platform"),
        ("其他", "Other"),
    ],
    OptionKind.industry: [
        ("政府机关", "Government"),
        ("事业单位", "Public institution"),
        ("矿业", "Mining"),
        ("房地产开发", "Real estate"),
        ("交通运输", "Transport"),
        ("水利水电", "Water and hydropower"),
        ("能源电力", "Energy"),
        ("制造业", "Manufacturing"),
        ("农林牧渔", "Agriculture"),
        ("个人", "Individual"),
        ("其他", "Other"),
    ],
    OptionKind.budget_band: [
        ("5万以下", "Under ¥50k"),
        ("5万–20万", "¥50k–200k"),
        ("20万–50万", "¥200k–500k"),
        ("50万–100万", "¥500k–1M"),
        ("100万以上", "Over ¥1M"),
    ],
    OptionKind.followup_method: [
        ("电话", "Phone"),
        ("拜访", "Visit"),
        ("微信", "WeChat"),
        ("邮件", "Email"),
        ("在线聊天", "Chat"),
        ("其他", "Other"),
    ],
}

KIND_NAMES = {
    OptionKind.source_channel: lambda: _("Source channels"),
    OptionKind.industry: lambda: _("Industries"),
    OptionKind.budget_band: lambda: _("Budget bands"),
    OptionKind.followup_method: lambda: _("Follow-up methods"),
}


class OptionError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


async def seed_defaults() -> int:
    """Fill each empty list with its defaults; returns how many entries were added. Safe to run again."""
    added = 0
    for kind, entries in DEFAULTS.items():
        if await OptionItem.exists().where(OptionItem.kind == kind.value):
            continue
        await OptionItem.insert(
            *[
                OptionItem(kind=kind.value, label=label, label_en=label_en, position=position)
                for position, (label, label_en) in enumerate(entries)
            ]
        )
        added += len(entries)
    return added


async def options(kind: OptionKind, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    return await (_EVERY_OPTION if include_inactive else _ACTIVE_OPTIONS)(kind=kind.value)


# Read by every form with a select: the SQL is generated once (see db.Prepared).
_EVERY_OPTION = Prepared(lambda kind: OptionItem.select().where(OptionItem.kind == kind).order_by(OptionItem.position))
_ACTIVE_OPTIONS = Prepared(
    lambda kind: (
        OptionItem.select().where(OptionItem.kind == kind, OptionItem.active.eq(True)).order_by(OptionItem.position)
    )
)

_ALL_ACTIVE = Prepared(lambda: OptionItem.select().where(OptionItem.active.eq(True)).order_by(OptionItem.position))


async def all_options() -> dict[str, list[dict[str, Any]]]:
    """Every active list at once, keyed by kind: what a form with several selects needs, in one query."""
    rows = await _ALL_ACTIVE()
    grouped: dict[str, list[dict[str, Any]]] = {kind.value: [] for kind in OptionKind}
    for row in rows:
        grouped[row["kind"]].append(row)
    return grouped


async def valid_option_id(kind: OptionKind, raw: str) -> int | None:
    """The id of an active entry of this list, None for an empty choice; ValueError for anything else."""
    if not raw.strip():
        return None
    if not raw.strip().isdigit():
        raise ValueError(raw)
    option_id = int(raw)
    if not await OptionItem.exists().where(
        OptionItem.id == option_id, OptionItem.kind == kind.value, OptionItem.active.eq(True)
    ):
        raise ValueError(raw)
    return option_id


def _clean_labels(label: str, label_en: str) -> tuple[str, str]:
    label, label_en = label.strip(), label_en.strip()
    if not label:
        raise OptionError("label", _("Enter a name."))
    if len(label) > 50:
        raise OptionError("label", _("At most %(n)s characters.", n=50))
    if len(label_en) > 50:
        raise OptionError("label_en", _("At most %(n)s characters.", n=50))
    return label, label_en


async def add_option(kind: OptionKind, label: str, label_en: str, *, actor: CurrentUser) -> int:
    label, label_en = _clean_labels(label, label_en)
    async with transaction():
        if await OptionItem.exists().where(OptionItem.kind == kind.value, OptionItem.label == label):
            raise OptionError("label", _("This list already has an entry with this name."))
        last = (
            await OptionItem.select(OptionItem.position)
            .where(OptionItem.kind == kind.value)
            .order_by(OptionItem.position, ascending=False)
            .first()
        )
        item = OptionItem(
            kind=kind.value, label=label, label_en=label_en, position=(last["position"] + 1) if last else 0
        )
        await item.save()
        await core.record(
            actor_id=actor.account_id,
            entity="option",
            entity_id=item.id,
            action="create",
            changes={"kind": [None, kind.value], "label": [None, label], "label_en": [None, label_en]},
        )
    return item.id


async def update_option(option_id: int, label: str, label_en: str, active: bool, *, actor: CurrentUser) -> None:
    """Rename or (de)activate an entry. Entries are never deleted: customers and analysis still refer to them."""
    label, label_en = _clean_labels(label, label_en)
    async with transaction():
        before = await OptionItem.select().where(OptionItem.id == option_id).first()
        if before is None:
            raise LookupError(option_id)
        if await OptionItem.exists().where(
            OptionItem.kind == before["kind"], OptionItem.label == label, OptionItem.id != option_id
        ):
            raise OptionError("label", _("This list already has an entry with this name."))
        after = {"label": label, "label_en": label_en, "active": active}
        changes = core.diff(before, after)
        if changes:
            await OptionItem.update(after).where(OptionItem.id == option_id)
            await core.record(
                actor_id=actor.account_id,
                entity="option",
                entity_id=option_id,
                action="update",
                changes=changes,
            )


async def move_option(option_id: int, direction: int, *, actor: CurrentUser) -> None:
    """Swap an entry with its neighbour above (-1) or below (+1)."""
    async with transaction():
        item = await OptionItem.select().where(OptionItem.id == option_id).first()
        if item is None:
            raise LookupError(option_id)
        siblings = (
            await OptionItem.select(OptionItem.id, OptionItem.position)
            .where(OptionItem.kind == item["kind"])
            .order_by(OptionItem.position)
            .order_by(OptionItem.id)
        )
        ids = [row["id"] for row in siblings]
        index = ids.index(option_id)
        other = index + direction
        if not 0 <= other < len(ids):
            return
        ids[index], ids[other] = ids[other], ids[index]
        for position, sibling_id in enumerate(ids):
            await OptionItem.update({OptionItem.position: position}).where(OptionItem.id == sibling_id)
        await core.record(
            actor_id=actor.account_id,
            entity="option",
            entity_id=option_id,
            action="move",
            changes={"position": [index, other]},
        )


async def get_option(option_id: int) -> dict[str, Any] | None:
    return await OptionItem.select().where(OptionItem.id == option_id).first()


async def rename_option(option_id: int, label: str, label_en: str, *, actor: CurrentUser) -> None:
    item = await get_option(option_id)
    if item is None:
        raise LookupError(option_id)
    await update_option(option_id, label, label_en, item["active"], actor=actor)


async def set_option_active(option_id: int, active: bool, *, actor: CurrentUser) -> None:
    """Inactive entries disappear from the choices in forms; records that use them keep showing them."""
    item = await get_option(option_id)
    if item is None:
        raise LookupError(option_id)
    await update_option(option_id, item["label"], item["label_en"], active, actor=actor)
