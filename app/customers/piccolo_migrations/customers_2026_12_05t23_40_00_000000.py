"""Indexes for an import's duplicate check. A row matches by name only within its place: the oldest customer of a
name key in a city is found by an index on both, not by reading every customer of a name shared across cities
(交通运输局). A row's mobile is looked up among the contacts' mobiles by an index of those not empty: most
contacts have none, and SQLite judged the index of the whole column useless and read the table instead."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer

ID = "2026-12-05T23:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customers by name key and city, contacts by their mobile when they have one"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def create_indexes() -> None:
        await Customer.raw("CREATE INDEX IF NOT EXISTS customer_name_key_city ON customer (name_key, city)")
        await Customer.raw("CREATE INDEX IF NOT EXISTS contact_mobile_given ON contact (mobile) WHERE mobile <> ''")

    manager.add_raw(create_indexes)
    return manager
