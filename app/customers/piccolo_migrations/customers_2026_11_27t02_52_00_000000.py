"""Partial composite indexes for the customer list (Piccolo columns index one column only).

Every list query names one tab (kind) and live rows only, so each index covers live rows and carries the kind:
a tab's page is an index walk in the chosen order, and a tab's count under one filter never reads the table.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer

ID = "2026-11-27T02:52:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer list indexes"

LIVE = "WHERE deleted_at IS NULL"
INDEXES = {
    # One per sort order of the list.
    "customer_live_kind_updated": "kind, updated_at",
    "customer_live_kind_created": "kind, created_at",
    "customer_live_kind_name": "kind, name",
    "customer_live_kind_contact": "kind, last_contact_at",
    "customer_live_kind_next": "kind, next_follow_up_at",
    # One per filter; owner also serves "my follow-ups" (owner, next date).
    "customer_live_owner_kind": "owner, kind, updated_at",
    "customer_live_owner_next": "owner, next_follow_up_at",
    "customer_live_region": "province, city, kind",
    "customer_live_channel": "source_channel, kind",
    "customer_live_tier": "value_tier, kind",
    "customer_live_origin": "origin, kind",
    "customer_live_budget": "budget_band, kind",
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def create_indexes() -> None:
        for name, columns in INDEXES.items():
            await Customer.raw(f"CREATE INDEX IF NOT EXISTS {name} ON customer ({columns}) {LIVE}")

    manager.add_raw(create_indexes)
    return manager
