"""Customers that already have projects start with their true revenue. A migration of its own: Piccolo runs a
migration's raw SQL before it adds that migration's columns."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer

ID = "2026-11-27T11:09:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "revenue per customer from the projects"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def fill_in() -> None:
        await Customer.raw(
            "UPDATE customer SET revenue_fen = COALESCE((SELECT SUM(p.amount_fen) FROM project p "
            "WHERE p.customer = customer.id AND p.deleted_at IS NULL AND p.status <> 'cancelled'), 0)"
        )

    manager.add_raw(fill_in)
    return manager
