from enum import StrEnum

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Timestamptz, Varchar
from piccolo.table import Table


class Role(StrEnum):
    staff = "staff"
    supervisor = "supervisor"
    admin = "admin"


class Account(Table):
    """A person who works in Kehu. BaseUser keeps the credentials and the active flag; this keeps the rest."""

    user = ForeignKey(BaseUser, unique=True, null=False)
    name = Varchar(length=50)
    role = Varchar(length=12, choices=Role, default=Role.staff)
    language = Varchar(length=10, null=True, default=None)
    last_seen_at = Timestamptz(null=True, default=None)
