"""Indexes for the analysis views at 100,000 customers and a million follow-ups.

- customer: every column a view groups or filters by, for live customers: SQLite counts a group from this narrow
  index instead of reading the wide customer rows (names, addresses, needs) one by one; and the same for the
  customers a campaign brought, by campaign; and the few deleted customers, whose follow-ups the counts leave out.
- project: the counted projects' amounts by customer, so revenue never reads a project row.
- follow_up: live follow-ups by date with author and customer, so the per-week and per-staff counts read the index
  alone; and by customer and date, for each customer's first and last contact (the "slipping away" list).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer

ID = "2026-11-27T11:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "analysis indexes"

INDEXES = (
    "CREATE INDEX IF NOT EXISTS customer_live_analysis ON customer (owner, source_channel, province, city, kind, "
    "last_contact_at, created_at, converted_at, budget_band, industry, value_tier, rfm_segment, tier_pinned, origin, "
    "revenue_fen) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS customer_live_campaign ON customer (utm_source, utm_campaign, kind, last_contact_at, "
    "revenue_fen, tier_pinned, owner, province, source_channel, origin, created_at) "
    "WHERE deleted_at IS NULL AND (utm_source <> '' OR utm_campaign <> '')",
    "CREATE INDEX IF NOT EXISTS project_counted_customer ON project (customer, amount_fen) "
    "WHERE deleted_at IS NULL AND status <> 'cancelled'",
    "CREATE INDEX IF NOT EXISTS follow_up_live_happened ON follow_up (happened_at, author, customer) "
    "WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS customer_deleted ON customer (id) WHERE deleted_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS follow_up_live_customer ON follow_up (customer, happened_at) WHERE deleted_at IS NULL",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="analysis", description=DESCRIPTION)

    async def create_indexes() -> None:
        for sql in INDEXES:
            await Customer.raw(sql)

    manager.add_raw(create_indexes)
    return manager
