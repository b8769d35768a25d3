"""One ad spend entry per channel and month: saving again replaces the amount (Piccolo columns index one column
only, so the pair gets its index here)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.analysis.tables import AdSpend

ID = "2026-11-27T10:53:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ad spend: one entry per channel and month"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="analysis", description=DESCRIPTION)

    async def create_indexes() -> None:
        await AdSpend.raw("CREATE UNIQUE INDEX IF NOT EXISTS ad_spend_channel_month ON ad_spend (channel, month)")

    manager.add_raw(create_indexes)
    return manager
