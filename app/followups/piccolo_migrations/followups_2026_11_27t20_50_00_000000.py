"""How many live follow-ups each author (0: none) wrote on each Asia/Shanghai day, kept by the database itself.

The analysis counts follow-ups per staff member and week over the last twelve weeks: a quarter of a million
follow-ups at 100,000 customers, read on every visit. Triggers keep `follow_up_tally` in step with every insert,
delete and change of author, moment or deletion, in the same transaction as the change, whichever code path
makes it. On PostgreSQL they run once per statement over its changed rows (the demo and imports write
thousands at a time); SQLite has only row triggers.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.db import is_sqlite
from app.followups.tables import FollowUp

ID = "2026-11-27T20:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "live follow-ups per author and day, kept by triggers"

TABLE = (
    "CREATE TABLE follow_up_tally (author INTEGER NOT NULL, day DATE NOT NULL, live INTEGER NOT NULL DEFAULT 0, "
    "PRIMARY KEY (author, day))"
)

# The Asia/Shanghai day of a stored moment (no daylight saving: a fixed +8 hours).
SQLITE_DAY = "date({}.happened_at, '+8 hours')"
POSTGRES_DAY = "({}.happened_at AT TIME ZONE 'Asia/Shanghai')::date"

SQLITE = [
    f"""CREATE TRIGGER follow_up_tally_insert AFTER INSERT ON follow_up WHEN NEW.deleted_at IS NULL
BEGIN
    INSERT INTO follow_up_tally (author, day, live) VALUES (coalesce(NEW.author, 0), {SQLITE_DAY.format("NEW")}, 1)
    ON CONFLICT (author, day) DO UPDATE SET live = live + 1;
END""",
    f"""CREATE TRIGGER follow_up_tally_delete AFTER DELETE ON follow_up WHEN OLD.deleted_at IS NULL
BEGIN
    UPDATE follow_up_tally SET live = live - 1
    WHERE author = coalesce(OLD.author, 0) AND day = {SQLITE_DAY.format("OLD")};
END""",
    f"""CREATE TRIGGER follow_up_tally_update AFTER UPDATE OF author, happened_at, deleted_at ON follow_up
WHEN OLD.author IS NOT NEW.author OR OLD.happened_at IS NOT NEW.happened_at
    OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)
BEGIN
    UPDATE follow_up_tally SET live = live - 1
    WHERE OLD.deleted_at IS NULL AND author = coalesce(OLD.author, 0) AND day = {SQLITE_DAY.format("OLD")};
    INSERT INTO follow_up_tally (author, day, live)
    SELECT coalesce(NEW.author, 0), {SQLITE_DAY.format("NEW")}, 1 WHERE NEW.deleted_at IS NULL
    ON CONFLICT (author, day) DO UPDATE SET live = live + 1;
END""",
]

# Each statement's live rows before (removed) and after (added) it, added up per author and day; a change that
# moves nothing (an edited text) adds up to nothing and writes nothing. In key order, so two transactions lock
# the tally rows they share in the same order.
CHANGE = """INSERT INTO follow_up_tally (author, day, live)
        SELECT author, day, SUM(delta) FROM ({rows}) changed
        GROUP BY author, day HAVING SUM(delta) <> 0 ORDER BY author, day
        ON CONFLICT (author, day) DO UPDATE SET live = follow_up_tally.live + EXCLUDED.live;"""


def live_rows(table: str, delta: int) -> str:
    return (
        f"SELECT coalesce(author, 0) AS author, {POSTGRES_DAY.format(table)} AS day, {delta} AS delta "
        f"FROM {table} WHERE deleted_at IS NULL"
    )


POSTGRES = [
    f"""CREATE FUNCTION follow_up_tally_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {CHANGE.format(rows=live_rows("added", 1))}
    ELSIF TG_OP = 'DELETE' THEN
        {CHANGE.format(rows=live_rows("removed", -1))}
    ELSE
        {CHANGE.format(rows=f"{live_rows('added', 1)} UNION ALL {live_rows('removed', -1)}")}
    END IF;
    RETURN NULL;
END
$$""",
    """CREATE TRIGGER follow_up_tally_insert AFTER INSERT ON follow_up REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION follow_up_tally_track()""",
    """CREATE TRIGGER follow_up_tally_delete AFTER DELETE ON follow_up REFERENCING OLD TABLE AS removed
FOR EACH STATEMENT EXECUTE FUNCTION follow_up_tally_track()""",
    """CREATE TRIGGER follow_up_tally_update AFTER UPDATE ON follow_up REFERENCING OLD TABLE AS removed
NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION follow_up_tally_track()""",
]

FILL = (
    "INSERT INTO follow_up_tally (author, day, live) SELECT coalesce(author, 0), {day}, count(*) FROM follow_up "
    "WHERE deleted_at IS NULL GROUP BY 1, 2"
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="followups", description=DESCRIPTION)

    async def create() -> None:
        day = (SQLITE_DAY if is_sqlite() else POSTGRES_DAY).format("follow_up")
        for statement in [TABLE, *(SQLITE if is_sqlite() else POSTGRES), FILL.format(day=day)]:
            await FollowUp.raw(statement)

    manager.add_raw(create)
    return manager
