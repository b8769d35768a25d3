"""Accounts: who may log in, with which role, and what each role may see."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from piccolo.apps.user.tables import BaseUser

from app.accounts.tables import Account, Role
from app.core import service as core
from app.db import Prepared, transaction
from app.i18n import _

MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class CurrentUser:
    """The logged-in person as every service sees them."""

    account_id: int
    user_id: int
    username: str
    name: str
    role: Role
    language: str | None
    last_seen_at: datetime | None = None

    @property
    def is_supervisor(self) -> bool:
        """Supervisors and admins see every customer and may reassign owners."""
        return self.role in (Role.supervisor, Role.admin)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin


class AccountError(ValueError):
    """A form error, with the field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _current_user(row: dict[str, Any]) -> CurrentUser:
    return CurrentUser(
        account_id=row["id"],
        user_id=row["user"],
        username=row["user.username"],
        name=row["name"],
        role=Role(row["role"]),
        language=row["language"],
        last_seen_at=row["last_seen_at"],
    )


_USER_COLUMNS = (
    Account.id,
    Account.user,
    Account.user.username,
    Account.name,
    Account.role,
    Account.language,
    Account.last_seen_at,
)


async def load_user(user_id: int) -> CurrentUser | None:
    """The session's user, or None when the account is gone or deactivated (which logs them out at once)."""
    row = await _USER(user_id=user_id)
    return _current_user(row) if row else None


# Read on every request: its SQL is generated once.
_USER = Prepared(
    lambda user_id: Account.select(*_USER_COLUMNS).where(Account.user == user_id, Account.user.active.eq(True)).first()
)


async def _hash(password: str) -> str:
    # PBKDF2 with many iterations takes a noticeable fraction of a second: keep it off the event loop.
    return await anyio.to_thread.run_sync(BaseUser.hash_password, password)


async def _password_matches(stored: str, password: str) -> bool:
    _, iterations, salt, _hashed = BaseUser.split_stored_password(stored)
    candidate = await anyio.to_thread.run_sync(BaseUser.hash_password, password, salt, int(iterations))
    return hmac.compare_digest(candidate, stored)


async def authenticate(username: str, password: str) -> CurrentUser | None:
    """The account for these credentials, or None. Inactive accounts cannot log in (BaseUser.login allows them)."""
    username = username.strip()
    if not username or not password or len(password) > BaseUser._max_password_length:
        return None
    row = (
        await BaseUser.select(BaseUser.id, BaseUser.password, BaseUser.active)
        .where(BaseUser.username == username)
        .first()
    )
    if row is None:
        # Spend the same time as a real check so response timing does not reveal which usernames exist.
        await _hash(password)
        return None
    if not await _password_matches(row["password"], password) or not row["active"]:
        return None
    # piccolo_user.last_login is a timestamp without zone: store UTC without the zone, as on every engine.
    await BaseUser.update({BaseUser.last_login: datetime.now(UTC).replace(tzinfo=None)}).where(BaseUser.id == row["id"])
    return await load_user(row["id"])


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError("password", _("At least %(n)s characters.", n=MIN_PASSWORD_LENGTH))
    if len(password) > BaseUser._max_password_length:
        raise AccountError("password", _("At most %(n)s characters.", n=BaseUser._max_password_length))


async def create_account(
    *, username: str, password: str, name: str, role: Role, actor: CurrentUser | None = None
) -> int:
    """A new login with its account; returns the account id."""
    username = username.strip()
    name = name.strip() or username
    if not username:
        raise AccountError("username", _("Enter a username."))
    if len(username) > 100:
        raise AccountError("username", _("At most %(n)s characters.", n=100))
    _check_password(password)
    hashed = await _hash(password)
    async with transaction():
        if await BaseUser.exists().where(BaseUser.username == username):
            raise AccountError("username", _("This username is taken."))
        # Kehu does not use BaseUser.email, but the column is unique and required: mirror the unique username.
        user = BaseUser(username=username, password=hashed, active=True, email=username)
        await user.save()
        account = Account(user=user.id, name=name[:50], role=role)
        await account.save()
        await core.record(
            actor_id=actor.account_id if actor else None,
            entity="account",
            entity_id=account.id,
            action="create",
            changes={"username": [None, username], "name": [None, name], "role": [None, role.value]},
        )
    return account.id


async def list_accounts() -> list[dict[str, Any]]:
    return (
        await Account.select(*_USER_COLUMNS, Account.user.active, Account.user.last_login)
        .order_by(Account.user.active, ascending=False)
        .order_by(Account.id)
    )


async def assignable_accounts() -> list[dict[str, Any]]:
    """Active people who can own customers."""
    return await _ASSIGNABLE()


_ASSIGNABLE = Prepared(
    lambda: (
        Account.select(Account.id, Account.name, Account.role)
        .where(Account.user.active.eq(True))
        .order_by(Account.name)
    )
)


async def get_account(account_id: int) -> dict[str, Any] | None:
    return (
        await Account.select(*_USER_COLUMNS, Account.user.active, Account.user.last_login)
        .where(Account.id == account_id)
        .first()
    )


async def update_account(account_id: int, *, name: str, role: Role, active: bool, actor: CurrentUser) -> None:
    """An admin changes someone's name, role or active flag. Admins cannot lock themselves out."""
    name = name.strip()
    if not name:
        raise AccountError("name", _("Enter a full name."))
    if account_id == actor.account_id and (role != Role.admin or not active):
        raise AccountError("role", _("You cannot remove your own admin role or deactivate yourself."))
    async with transaction():
        before = await get_account(account_id)
        if before is None:
            raise LookupError(account_id)
        await Account.update({Account.name: name[:50], Account.role: role}).where(Account.id == account_id)
        await BaseUser.update({BaseUser.active: active}).where(BaseUser.id == before["user"])
        changes = core.diff(
            {"name": before["name"], "role": before["role"], "active": before["user.active"]},
            {"name": name[:50], "role": role.value, "active": active},
        )
        if changes:
            await core.record(
                actor_id=actor.account_id,
                entity="account",
                entity_id=account_id,
                action="update",
                changes=changes,
            )


async def set_password(account_id: int, password: str, *, actor: CurrentUser) -> None:
    _check_password(password)
    hashed = await _hash(password)
    async with transaction():
        account = await get_account(account_id)
        if account is None:
            raise LookupError(account_id)
        await BaseUser.update({BaseUser.password: hashed}).where(BaseUser.id == account["user"])
        await core.record(
            actor_id=actor.account_id,
            entity="account",
            entity_id=account_id,
            action="password",
            changes={"password": ["***", "***"]},
        )


async def change_own_password(user: CurrentUser, *, current: str, new: str, repeat: str) -> None:
    """Someone changes their own password: they prove they know the current one first."""
    stored = await BaseUser.select(BaseUser.password).where(BaseUser.id == user.user_id).first()
    if (
        stored is None
        or len(current) > BaseUser._max_password_length
        or not await _password_matches(stored["password"], current)
    ):
        raise AccountError("current_password", _("This is not your current password."))
    _check_password(new)
    if new != repeat:
        raise AccountError("password_repeat", _("The two passwords do not match."))
    await set_password(user.account_id, new, actor=user)


async def set_language(account_id: int, language: str) -> None:
    await Account.update({Account.language: language}).where(Account.id == account_id)
