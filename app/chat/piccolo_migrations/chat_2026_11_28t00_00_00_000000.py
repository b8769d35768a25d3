"""The panel's list reads open (or closed) conversations newest activity first and stops at its length: an index
in that order, instead of sorting every open conversation on each poll."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.chat.tables import Conversation

ID = "2026-11-28T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "conversations by status and latest activity"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="chat", description=DESCRIPTION)

    async def create_index() -> None:
        await Conversation.raw(
            "CREATE INDEX IF NOT EXISTS conversation_status_activity ON conversation (status, last_message_at)"
        )

    manager.add_raw(create_index)
    return manager
