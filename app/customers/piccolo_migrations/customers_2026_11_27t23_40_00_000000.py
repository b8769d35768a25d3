"""PostgreSQL: the name key's index also holds the customer's id, so the oldest customer of a name key is one
index probe (a spreadsheet import asks for it 500 names at a time) instead of reading every customer that
shares the key: 公路局 or 交通运输局 stand for dozens. The index keeps its name and serves every lookup by name
key as before.

SQLite's index already ends with the row's id (the rowid), so it gets no change.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer
from app.db import is_sqlite

ID = "2026-11-27T23:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "name key index with the id on PostgreSQL"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def widen_index() -> None:
        if is_sqlite():
            return
        await Customer.raw("DROP INDEX IF EXISTS customer_name_key")
        await Customer.raw("CREATE INDEX customer_name_key ON customer (name_key, id)")

    manager.add_raw(widen_index)
    return manager
