"""The customer page's timeline reads one customer's follow-ups newest first."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.followups.tables import FollowUp

ID = "2026-11-27T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "follow-up timeline index"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="followups", description=DESCRIPTION)

    async def create_indexes() -> None:
        await FollowUp.raw(
            "CREATE INDEX IF NOT EXISTS follow_up_customer_happened ON follow_up (customer, happened_at)"
        )
        await FollowUp.raw("CREATE INDEX IF NOT EXISTS follow_up_author_happened ON follow_up (author, happened_at)")

    manager.add_raw(create_indexes)
    return manager
