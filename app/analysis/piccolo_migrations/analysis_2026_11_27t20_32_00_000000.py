"""Indexes that let the heaviest analysis statements read an index alone, or in the order they need.

Both engines: the customers the "slipping away" list considers (tier A or B, enough contacts to have a usual
interval), most revenue first: the list reads them in its own order and stops at its length, instead of sorting
every valuable customer; with filters, both engines otherwise read every customer the date range holds.

PostgreSQL only:
- the customers with revenue, largest first: the Pareto curve's running sum needs no sort and no table row;
- live customers by the day they came in, with channel and kind, and by the moment they converted: the monthly
  series read the last twelve months instead of the whole table;
- live customers by id with budget band and industry: the project amounts per band and industry merge with the
  counted projects (project_counted_customer, also by customer) instead of hashing every customer row.

SQLite reads what these give from its one analysis index (customer_live_analysis, named in each statement), so
it gets none of them: each would be one more index for every customer write to keep.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.customers.tables import Customer
from app.db import is_sqlite

ID = "2026-11-27T20:32:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "analysis indexes for index-only and ordered reads"

BOTH = (
    "CREATE INDEX IF NOT EXISTS customer_live_valuable ON customer (revenue_fen DESC, id) "
    "WHERE deleted_at IS NULL AND value_tier IN ('A', 'B') AND contact_count >= 3",
)

POSTGRES = (
    "CREATE INDEX IF NOT EXISTS customer_live_revenue ON customer (revenue_fen DESC, id) "
    "WHERE deleted_at IS NULL AND revenue_fen > 0",
    "CREATE INDEX IF NOT EXISTS customer_live_created ON customer (created_at) INCLUDE (source_channel, kind) "
    "WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS customer_live_converted ON customer (converted_at) "
    "WHERE deleted_at IS NULL AND converted_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS customer_live_budget_industry ON customer (id) INCLUDE (budget_band, industry) "
    "WHERE deleted_at IS NULL",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="analysis", description=DESCRIPTION)

    async def create_indexes() -> None:
        for sql in BOTH if is_sqlite() else (*BOTH, *POSTGRES):
            await Customer.raw(sql)

    manager.add_raw(create_indexes)
    return manager
