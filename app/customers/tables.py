from enum import StrEnum

from piccolo.columns import BigInt, Boolean, Date, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Account
from app.options.tables import OptionItem


class Kind(StrEnum):
    prospect = "prospect"
    member = "member"


class Origin(StrEnum):
    own = "own"
    external = "external"


class Tier(StrEnum):
    a = "A"
    b = "B"
    c = "C"


class Segment(StrEnum):
    """The eight RFM segments (recency, frequency, monetary; each high or low against the average)."""

    important_value = "important_value"  # R high, F high, M high: 重要价值客户
    important_develop = "important_develop"  # R high, F low, M high: 重要发展客户
    important_keep = "important_keep"  # R low, F high, M high: 重要保持客户
    important_retain = "important_retain"  # R low, F low, M high: 重要挽留客户
    general_value = "general_value"  # R high, F high, M low: 一般价值客户
    general_develop = "general_develop"  # R high, F low, M low: 一般发展客户
    general_keep = "general_keep"  # R low, F high, M low: 一般保持客户
    general_retain = "general_retain"  # R low, F low, M low: 一般挽留客户


class ProjectStatus(StrEnum):
    negotiating = "negotiating"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"


class Customer(Table):
    name = Varchar(length=200)
    # The name without legal-form suffixes and province/city prefixes, for the duplicate warning.
    name_key = Varchar(length=200, index=True)
    kind = Varchar(length=10, choices=Kind, default=Kind.prospect)
    origin = Varchar(length=10, choices=Origin, default=Origin.own)
    company = Varchar(length=200, default="")
    title = Varchar(length=100, default="")
    # Stored normalised (digits, no +86) so the duplicate check and search compare like with like.
    mobile = Varchar(length=20, default="", index=True)
    phone = Varchar(length=40, default="")
    email = Varchar(length=200, default="", index=True)
    wechat = Varchar(length=100, default="", index=True)
    province = Varchar(length=20, default="")
    city = Varchar(length=40, default="")
    address = Varchar(length=300, default="")
    industry = ForeignKey(OptionItem, null=True)
    source_channel = ForeignKey(OptionItem, null=True)
    utm_source = Varchar(length=200, default="")
    utm_medium = Varchar(length=200, default="")
    utm_campaign = Varchar(length=200, default="")
    needs = Text(default="")
    characteristics = Text(default="")
    consumption_habits = Text(default="")
    budget_band = ForeignKey(OptionItem, null=True)
    value_tier = Varchar(length=1, choices=Tier, null=True, default=None)
    tier_pinned = Boolean(default=False)
    # Recomputed with the tiers by the worker; "" for a customer without a project yet.
    rfm_segment = Varchar(length=20, default="")
    # The sum of the customer's projects that are neither deleted nor cancelled, kept in step by every project
    # write (like last_contact_at), so the analysis sums one column instead of joining every project.
    revenue_fen = BigInt(default=0)
    owner = ForeignKey(Account, null=True)
    last_contact_at = Timestamptz(null=True, default=None)
    # The first contact and how many there were (live follow-ups and signed projects), kept with last_contact_at
    # by every follow-up and project write: the usual interval between contacts of the "slipping away" list
    # comes from the customer row instead of every follow-up of every valuable customer.
    first_contact_at = Timestamptz(null=True, default=None)
    contact_count = Integer(default=0)
    next_follow_up_at = Timestamptz(null=True, default=None)
    converted_at = Timestamptz(null=True, default=None)
    created_by = ForeignKey(Account, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)


class Contact(Table):
    """A person at a customer (联系人)."""

    customer = ForeignKey(Customer, null=False, index=True)
    name = Varchar(length=100)
    title = Varchar(length=100, default="")
    mobile = Varchar(length=20, default="", index=True)
    email = Varchar(length=200, default="")
    wechat = Varchar(length=100, default="")
    decision_maker = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)


class Project(Table):
    """A project done together with a customer (合作项目)."""

    customer = ForeignKey(Customer, null=False, index=True)
    name = Varchar(length=200)
    # Money is exact: whole fen (0.01 CNY), never a float.
    amount_fen = BigInt(default=0)
    signed_on = Date(null=True, default=None)
    status = Varchar(length=20, choices=ProjectStatus, default=ProjectStatus.negotiating)
    notes = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)


class SavedFilter(Table):
    """A customer list filter set a user saved under a name, to reopen it with one click."""

    owner = ForeignKey(Account, null=False, index=True)
    name = Varchar(length=60)
    # The list's URL query (without the page), as CustomerFilters.query writes it.
    query = Varchar(length=1000)
    created_at = Timestamptz(default=TimestamptzNow())
