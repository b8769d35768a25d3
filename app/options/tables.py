from enum import StrEnum

from piccolo.columns import Boolean, Integer, Varchar
from piccolo.table import Table


class OptionKind(StrEnum):
    source_channel = "source_channel"
    industry = "industry"
    budget_band = "budget_band"
    followup_method = "followup_method"


class OptionItem(Table):
    """One entry of an admin-editable list: a source channel, an industry, a budget band, a follow-up method."""

    kind = Varchar(length=30, choices=OptionKind, index=True)
    label = Varchar(length=50)
    label_en = Varchar(length=50, default="")
    position = Integer(default=0)
    active = Boolean(default=True)
