"""PostgreSQL: the customer tally counts a statement's new customers once per statement instead of once per row.

The row trigger updated the same tally row for every customer inserted: a spreadsheet import's chunk of 500
new customers updated it 500 times in one transaction, each update finding the row behind the versions the
ones before it left, about 20 ms of every chunk's 100 ms. A statement trigger reads the statement's new rows
(COPY's included) and adds each owner and kind's count at once. Changes and deletes keep the row trigger.

SQLite has no statement triggers, and its row trigger costs little there: it gets no change.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer
from app.db import is_sqlite

ID = "2026-11-28T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer tally counts inserts per statement on PostgreSQL"

POSTGRES = [
    """CREATE FUNCTION customer_tally_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_tally (owner, kind, live)
    SELECT coalesce(owner, 0), kind, count(*) FROM inserted WHERE deleted_at IS NULL GROUP BY 1, 2
    ON CONFLICT (owner, kind) DO UPDATE SET live = customer_tally.live + EXCLUDED.live;
    RETURN NULL;
END
$$""",
    "DROP TRIGGER customer_tally_track ON customer",
    """CREATE TRIGGER customer_tally_track AFTER DELETE OR UPDATE OF owner, kind, deleted_at ON customer
FOR EACH ROW EXECUTE FUNCTION customer_tally_track()""",
    """CREATE TRIGGER customer_tally_insert AFTER INSERT ON customer REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION customer_tally_inserted()""",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def count_per_statement() -> None:
        if is_sqlite():
            return
        for statement in POSTGRES:
            await Customer.raw(statement)

    manager.add_raw(count_per_statement)
    return manager
