"""How many live customers each owner (0: the public pool) has of each kind, kept by the database itself.

The plain customer list shows the size of both tabs on every visit; counting 100,000 rows for that costs more
than the rest of the page. Triggers keep `customer_tally` in step with every insert, delete and change of owner,
kind or deletion, in the same transaction as the change, whichever code path makes it.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer
from app.db import is_sqlite

ID = "2026-11-27T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "live customers per owner and kind, kept by triggers"

TABLE = (
    "CREATE TABLE customer_tally (owner INTEGER NOT NULL, kind VARCHAR(20) NOT NULL, "
    "live INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (owner, kind))"
)

SQLITE = [
    """CREATE TRIGGER customer_tally_insert AFTER INSERT ON customer WHEN NEW.deleted_at IS NULL
BEGIN
    INSERT INTO customer_tally (owner, kind, live) VALUES (coalesce(NEW.owner, 0), NEW.kind, 1)
    ON CONFLICT (owner, kind) DO UPDATE SET live = live + 1;
END""",
    """CREATE TRIGGER customer_tally_delete AFTER DELETE ON customer WHEN OLD.deleted_at IS NULL
BEGIN
    UPDATE customer_tally SET live = live - 1 WHERE owner = coalesce(OLD.owner, 0) AND kind = OLD.kind;
END""",
    """CREATE TRIGGER customer_tally_update AFTER UPDATE OF owner, kind, deleted_at ON customer
WHEN OLD.owner IS NOT NEW.owner OR OLD.kind IS NOT NEW.kind OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)
BEGIN
    UPDATE customer_tally SET live = live - 1
    WHERE OLD.deleted_at IS NULL AND owner = coalesce(OLD.owner, 0) AND kind = OLD.kind;
    INSERT INTO customer_tally (owner, kind, live)
    SELECT coalesce(NEW.owner, 0), NEW.kind, 1 WHERE NEW.deleted_at IS NULL
    ON CONFLICT (owner, kind) DO UPDATE SET live = live + 1;
END""",
]

POSTGRES = [
    """CREATE FUNCTION customer_tally_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.owner IS NOT DISTINCT FROM NEW.owner AND OLD.kind = NEW.kind
            AND (OLD.deleted_at IS NULL) = (NEW.deleted_at IS NULL) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
        UPDATE customer_tally SET live = live - 1 WHERE owner = coalesce(OLD.owner, 0) AND kind = OLD.kind;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.deleted_at IS NULL THEN
        INSERT INTO customer_tally (owner, kind, live) VALUES (coalesce(NEW.owner, 0), NEW.kind, 1)
        ON CONFLICT (owner, kind) DO UPDATE SET live = customer_tally.live + 1;
    END IF;
    RETURN NULL;
END
$$""",
    """CREATE TRIGGER customer_tally_track AFTER INSERT OR DELETE OR UPDATE OF owner, kind, deleted_at ON customer
FOR EACH ROW EXECUTE FUNCTION customer_tally_track()""",
]

FILL = (
    "INSERT INTO customer_tally (owner, kind, live) SELECT coalesce(owner, 0), kind, count(*) FROM customer "
    "WHERE deleted_at IS NULL GROUP BY coalesce(owner, 0), kind"
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def create() -> None:
        for statement in [TABLE, *(SQLITE if is_sqlite() else POSTGRES), FILL]:
            await Customer.raw(statement)

    manager.add_raw(create)
    return manager
