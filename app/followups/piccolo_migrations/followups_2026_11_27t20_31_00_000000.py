"""Customers that already have follow-ups or signed projects start with their true first contact and number of
contacts (columns the customers app added), as app.customers.service.refresh_contact_dates counts them. Here, in
the follow-ups app, because it reads the follow-ups: their table exists only once this app's first migration ran."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer
from app.db import is_sqlite

ID = "2026-11-27T20:31:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "first contact and number of contacts from the follow-ups and projects"

# A signed project counts as contact at midnight UTC of its signing day (project_contact_moment), written the
# way each engine stores a moment: SQLite keeps Piccolo's text, "YYYY-MM-DD HH:MM:SS+00:00", which sorts in time.
SIGNED_MOMENT = {True: "p.signed_on || ' 00:00:00+00:00'", False: "p.signed_on::timestamp AT TIME ZONE 'UTC'"}

FILL = (
    "UPDATE customer SET "
    "contact_count = (SELECT COUNT(*) FROM follow_up f WHERE f.customer = customer.id AND f.deleted_at IS NULL) "
    "+ (SELECT COUNT(*) FROM project p WHERE p.customer = customer.id AND p.deleted_at IS NULL "
    "AND p.signed_on IS NOT NULL), "
    "first_contact_at = (SELECT MIN(at) FROM (SELECT f.happened_at AS at FROM follow_up f "
    "WHERE f.customer = customer.id AND f.deleted_at IS NULL UNION ALL SELECT {signed} FROM project p "
    "WHERE p.customer = customer.id AND p.deleted_at IS NULL AND p.signed_on IS NOT NULL) contacts)"
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="followups", description=DESCRIPTION)

    async def fill_in() -> None:
        await Customer.raw(FILL.format(signed=SIGNED_MOMENT[is_sqlite()]))

    manager.add_raw(fill_in)
    return manager
