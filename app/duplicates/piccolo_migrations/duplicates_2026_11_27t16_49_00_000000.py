"""One row per pair of customers (Piccolo columns index one column only, so the pair gets its index here): a
rescan can then never store the same pair twice."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.duplicates.tables import DuplicatePair

ID = "2026-11-27T16:49:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "duplicate pairs: one row per pair"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="duplicates", description=DESCRIPTION)

    async def create_indexes() -> None:
        await DuplicatePair.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS duplicate_pair_customers ON duplicate_pair (customer_a, customer_b)"
        )

    manager.add_raw(create_indexes)
    return manager
