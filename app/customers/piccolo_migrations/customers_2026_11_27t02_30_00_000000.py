"""Composite indexes for the customer list and the follow-up due list (Piccolo columns index one column)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer

ID = "2026-11-27T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer list indexes"

INDEXES = [
    # The list's default view: one tab (kind), live rows only, newest change first.
    "CREATE INDEX IF NOT EXISTS customer_live_kind_updated ON customer (kind, updated_at) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS customer_live_owner_kind ON customer (owner, kind, updated_at) "
    "WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS customer_owner_next_follow_up ON customer (owner, next_follow_up_at) "
    "WHERE deleted_at IS NULL",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def create_indexes() -> None:
        for sql in INDEXES:
            await Customer.raw(sql)

    manager.add_raw(create_indexes)
    return manager
