from piccolo.columns import BigInt, Date, ForeignKey, Integer, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Account
from app.options.tables import OptionItem


class AdSpend(Table):
    """What a source channel cost in one month (广告投入), entered by a supervisor: one row per channel and month."""

    channel = ForeignKey(OptionItem, null=False)
    # The first day of the month.
    month = Date()
    amount_fen = BigInt(default=0)
    updated_by = ForeignKey(Account, null=True)
    updated_at = Timestamptz(default=TimestamptzNow())


class AnalysisSettings(Table):
    """The value tier thresholds and the state of their recomputation (one row, id 1)."""

    # A: the customers making the first a_share % of revenue; B: the next b_share %; C: the rest.
    a_share = Integer(default=80)
    b_share = Integer(default=15)
    # When the worker last recomputed (the moment its figures are from) and when someone asked for a run.
    computed_at = Timestamptz(null=True, default=None)
    requested_at = Timestamptz(null=True, default=None)
    # Customers whose tier or segment the last run changed.
    last_changed = Integer(default=0)
