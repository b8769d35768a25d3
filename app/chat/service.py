"""Website chat (网页即时聊天): visitors' conversations and the prospects they become, the staff panel's reads and
writes, presence and business hours, canned replies.

Polling only, and stateless: every answer comes from the database, so any web worker can serve any request. A
conversation row keeps the id of its newest message; "anything after N?" is answered from that row alone. Messages
of one conversation are written one at a time (the conversation row is locked first), so ids grow in commit order
and a cursor never skips a message.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from piccolo.columns.combination import And, Or, Where
from piccolo.query.functions.aggregate import Count, Max, Sum

from app.accounts.service import CurrentUser
from app.accounts.tables import Account, Role
from app.chat.tables import Author, CannedReply, ChatHours, ChatMessage, ChatVisitor, Conversation, Status
from app.config import get_settings
from app.core import service as core
from app.customers import normalize
from app.customers.service import FormErrors, NotVisible, refresh_contact_dates
from app.customers.tables import Contact, Customer, Kind, Origin
from app.db import MAX_ID, Prepared, lookup, transaction
from app.feedback import service as feedback
from app.followups.service import CONTENT_MAX, due_moment
from app.followups.tables import FollowUp
from app.i18n import SHANGHAI, _, local
from app.options.tables import OptionItem, OptionKind

# A visitor token: what the widget generates (32 random bytes, base64url) and keeps in the browser.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
MESSAGE_MAX = 2000
NAME_MAX = 100
CANNED_TITLE_MAX = 60
# The history the widget and the panel show at once.
HISTORY_LIMIT = 300
# Presence: staff count as online while a Kehu page of theirs polled within the last minute; the poll writes
# last_seen_at at most every 30 s.
ONLINE_WITHIN = timedelta(seconds=60)
PRESENCE_EVERY = timedelta(seconds=30)
# The seeded labels of the source channel and the follow-up method a chat records.
WEBSITE_CHANNEL = "网站在线咨询"
CHAT_METHOD = "在线聊天"
# What context the widget may send, and how much of it is kept.
CONTEXT_LIMITS = {"site": 50, "page_url": 1000, "page_title": 300, "referrer": 1000, "language": 35}
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")

# System messages are stored as codes and read in the reader's language.
CLOSED_BY_STAFF = "closed_by_staff"
CLOSED_BY_VISITOR = "closed_by_visitor"
ASSIGNED = "assigned"


class ChatError(Exception):
    """A visitor or staff request the chat refuses; status_code is what the route answers."""

    status_code = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class BadToken(ChatError):
    status_code = 400


class NoConversation(ChatError):
    status_code = 409


class Closed(ChatError):
    status_code = 409


class AlreadyRated(ChatError):
    status_code = 409


class TooMany(ChatError):
    status_code = 429


def token_hash(token: str | None) -> str:
    """The stored form of a visitor token; BadToken for anything the widget would not have made."""
    if not token or not TOKEN.match(token):
        raise BadToken(_("The chat could not identify this browser. Reload the page and try again."))
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Visit:
    """Where a visitor came from, as the widget and the request tell it."""

    site: str = ""
    page_url: str = ""
    page_title: str = ""
    referrer: str = ""
    language: str = ""
    user_agent: str = ""
    ip: str = ""

    @classmethod
    def of(cls, data: dict[str, Any], *, user_agent: str, ip: str) -> Visit:
        values = {name: normalize.clean_text(str(data.get(name) or ""))[:size] for name, size in CONTEXT_LIMITS.items()}
        return cls(**values, user_agent=normalize.clean_text(user_agent)[:500], ip=ip[:45])

    @property
    def utm(self) -> dict[str, str]:
        """The campaign parameters of the page the chat was opened on (first touch)."""
        query = dict(parse_qsl(urlsplit(self.page_url).query)) if self.page_url else {}
        return {name: normalize.clean_text(query.get(name, ""))[:200] for name in UTM_FIELDS}


# ---------------------------------------------------------------------------------------------------------
# Business hours and presence


@dataclass(frozen=True)
class Hours:
    limited: bool = False
    days: str = "12345"
    opens: str = "09:00"
    closes: str = "18:00"

    def open_at(self, moment: datetime) -> bool:
        if not self.limited:
            return True
        here = moment.astimezone(SHANGHAI)
        return str(here.isoweekday()) in self.days and self.opens <= here.strftime("%H:%M") < self.closes

    def describe(self) -> str:
        if not self.limited:
            return ""
        names = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
        days = " ".join(names[int(day) - 1] for day in sorted(self.days))
        return f"{days} {self.opens}–{self.closes}"


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


async def hours() -> Hours:
    row = await ChatHours.select().first()
    if row is None:
        return Hours()
    return Hours(limited=row["limited"], days=row["days"], opens=row["opens"], closes=row["closes"])


async def set_hours(user: CurrentUser, data: dict[str, str], days: list[str]) -> Hours:
    """Admin: when the chat is staffed. Raises FormErrors."""
    errors: dict[str, str] = {}
    opens, closes = data.get("opens", "").strip(), data.get("closes", "").strip()
    chosen = "".join(sorted({day for day in days if day in "1234567" and len(day) == 1}))
    if not _HHMM.match(opens):
        errors["opens"] = _("Enter a time like 09:00.")
    if not _HHMM.match(closes):
        errors["closes"] = _("Enter a time like 18:00.")
    elif _HHMM.match(opens) and closes <= opens:
        errors["closes"] = _("The chat must close after it opens.")
    limited = data.get("limited") == "1"
    if limited and not chosen:
        errors["days"] = _("Choose at least one day.")
    if errors:
        raise FormErrors(errors)
    new = Hours(limited=limited, days=chosen or "12345", opens=opens, closes=closes)
    async with transaction():
        row = await ChatHours.objects().first()
        before = Hours() if row is None else Hours(row.limited, row.days, row.opens, row.closes)
        if row is None:
            row = ChatHours()
        row.limited, row.days, row.opens, row.closes = new.limited, new.days, new.opens, new.closes
        await row.save()
        await core.record(
            actor_id=user.account_id,
            entity="chat_hours",
            entity_id=row.id,
            action="update",
            changes=core.diff(before.__dict__, new.__dict__),
        )
    return new


async def touch_presence(user: CurrentUser, now: datetime | None = None) -> None:
    """Note that the user has Kehu open (the header's chat poll), at most every PRESENCE_EVERY."""
    now = now or datetime.now(UTC)
    if user.last_seen_at is None or now - user.last_seen_at >= PRESENCE_EVERY:
        await Account.update({Account.last_seen_at: now}).where(Account.id == user.account_id)


async def online(now: datetime | None = None) -> bool:
    """Someone can answer: within business hours and a staff member's Kehu polled in the last minute."""
    now = now or datetime.now(UTC)
    if not (await hours()).open_at(now):
        return False
    return await Account.exists().where(Account.last_seen_at >= now - ONLINE_WITHIN, Account.user.active.eq(True))


async def _on_duty(now: datetime) -> int | None:
    """Who takes a message left for nobody in particular: the staff member seen most recently."""
    row = (
        await Account.select(Account.id)
        .where(Account.last_seen_at.is_not_null(), Account.user.active.eq(True), Account.role != Role.admin)
        .order_by(Account.last_seen_at, ascending=False)
        .first()
    )
    return row["id"] if row else None


# ---------------------------------------------------------------------------------------------------------
# Visitor side: the prospect


def clean_visitor_form(data: dict[str, Any]) -> dict[str, str]:
    """Name, at least one way to reach the visitor, and the first question; FormErrors with a message per field."""
    errors: dict[str, str] = {}
    raw = {name: str(data.get(name) or "") for name in ("name", "mobile", "wechat", "email", "question")}
    values = {
        "name": normalize.clean_text(raw["name"]),
        "question": raw["question"].replace("\r\n", "\n").strip(),
        "mobile": "",
        "email": "",
        "wechat": "",
    }
    if not values["name"]:
        errors["name"] = _("Please tell us your name.")
    elif len(values["name"]) > NAME_MAX:
        errors["name"] = _("At most %(n)s characters.", n=NAME_MAX)
    try:
        values["mobile"] = normalize.normalise_mobile(raw["mobile"])
    except ValueError:
        errors["mobile"] = _("Enter a valid mobile number, e.g. 138 1234 5678.")
    email = normalize.normalise_email(raw["email"])
    if email and (len(email) > 200 or not normalize.EMAIL.match(email)):
        errors["email"] = _("Enter a valid email address.")
    values["email"] = email
    wechat = normalize.normalise_wechat(raw["wechat"])
    if len(wechat) > 100:
        errors["wechat"] = _("At most %(n)s characters.", n=100)
    values["wechat"] = wechat
    if not any(raw[name].strip() for name in ("mobile", "wechat", "email")):
        errors["contact"] = _("Leave a mobile number, WeChat ID or email so we can reach you.")
    if not values["question"]:
        errors["question"] = _("Please write your question.")
    elif len(values["question"]) > MESSAGE_MAX:
        errors["question"] = _("At most %(n)s characters.", n=MESSAGE_MAX)
    if errors:
        raise FormErrors(errors)
    return values


async def _existing_customer(values: dict[str, str]) -> dict[str, Any] | None:
    """The customer these ways of reaching someone already belong to (mobile, then email, then WeChat; a
    contact's mobile counts too). Never matched on a name alone."""
    tests: list[Any] = []
    if values["mobile"]:
        tests.append(Customer.mobile == values["mobile"])
        tests.append(
            Customer.id.is_in(
                Contact.select(Contact.customer).where(Contact.mobile == values["mobile"], Contact.deleted_at.is_null())
            )
        )
    if values["email"]:
        tests.append(Customer.email == values["email"])
    if values["wechat"]:
        tests.append(Customer.wechat == values["wechat"])
    for test in tests:
        row = (
            await Customer.select(Customer.id, Customer.owner)
            .where(test, Customer.deleted_at.is_null())
            .order_by(Customer.id)
            .first()
        )
        if row:
            return row
    return None


async def _option_id(kind: OptionKind, label: str) -> int | None:
    row = await OptionItem.select(OptionItem.id).where(OptionItem.kind == kind, OptionItem.label == label).first()
    return row["id"] if row else None


async def _new_prospect(values: dict[str, str], visit: Visit, now: datetime) -> int:
    """A prospect from the website chat, in the public pool, with the campaign that brought the visitor."""
    fields: dict[str, Any] = {
        "name": values["name"],
        "name_key": normalize.name_key(values["name"]),
        "kind": Kind.prospect.value,
        "origin": Origin.own.value,
        "mobile": values["mobile"],
        "email": values["email"],
        "wechat": values["wechat"],
        "source_channel": await _option_id(OptionKind.source_channel, WEBSITE_CHANNEL),
        "needs": values["question"][:2000],
        **visit.utm,
    }
    customer = Customer(**fields, owner=None, created_by=None, created_at=now, updated_at=now)
    await customer.save()
    await core.record(
        actor_id=None,
        entity="customer",
        entity_id=customer.id,
        customer_id=customer.id,
        action="create",
        changes=core.diff({}, {key: value for key, value in fields.items() if value not in ("", None)}),
    )
    return customer.id


async def _check_start_rate(hashed: str, ip: str, now: datetime) -> None:
    settings = get_settings()
    hour_ago = now - timedelta(hours=1)
    by_token = await Conversation.count().where(
        Conversation.visitor.token_hash == hashed, Conversation.started_at >= hour_ago
    )
    by_ip = await Conversation.count().where(Conversation.ip == ip, Conversation.started_at >= hour_ago) if ip else 0
    if by_token >= settings.chat_starts_per_token_hour or by_ip >= settings.chat_starts_per_ip_hour:
        raise TooMany(_("Too many conversations from here. Please wait a while and try again."))


async def _visitor_for(hashed: str, values: dict[str, str], customer_id: int) -> ChatVisitor:
    visitor = await ChatVisitor.objects().where(ChatVisitor.token_hash == hashed).first()
    if visitor is None:
        visitor = ChatVisitor(token_hash=hashed)
    visitor.name, visitor.mobile, visitor.email, visitor.wechat = (
        values["name"],
        values["mobile"],
        values["email"],
        values["wechat"],
    )
    visitor.customer = customer_id
    await visitor.save()
    return visitor


async def _begin(
    hashed: str, values: dict[str, str], visit: Visit, now: datetime, *, left_message: bool
) -> tuple[Conversation, dict[str, Any]]:
    """The visitor's customer (found or created) and a new conversation holding the first question. Call inside
    a transaction."""
    await _check_start_rate(hashed, visit.ip, now)
    existing = await _existing_customer(values)
    customer_id = existing["id"] if existing else await _new_prospect(values, visit, now)
    owner = existing["owner"] if existing else None
    visitor = await _visitor_for(hashed, values, customer_id)
    conversation = Conversation(
        visitor=visitor.id,
        customer=customer_id,
        status=Status.closed if left_message else Status.open,
        left_message=left_message,
        assignee=owner,
        site=visit.site,
        page_url=visit.page_url,
        page_title=visit.page_title,
        referrer=visit.referrer,
        language=visit.language,
        user_agent=visit.user_agent,
        ip=visit.ip,
        started_at=now,
        last_message_at=now,
        closed_at=now if left_message else None,
        closed_by="visitor" if left_message else "",
        **visit.utm,
    )
    await conversation.save()
    visitor.conversation_id = conversation.id
    await visitor.save()
    await _add_message(conversation.id, Author.visitor, values["question"], now=now)
    await core.record(
        actor_id=None,
        entity="conversation",
        entity_id=conversation.id,
        customer_id=customer_id,
        action="create",
        changes=core.diff({}, {"site": visit.site, "page_url": visit.page_url, **visit.utm}),
    )
    return conversation, {"id": customer_id, "owner": owner}


async def start(token: str | None, data: dict[str, Any], visit: Visit) -> dict[str, Any]:
    """A visitor starts chatting: FormErrors, TooMany, or the state the widget shows next. Starting again while
    a conversation is open (a second tab) adds the question to that conversation."""
    hashed = token_hash(token)
    values = clean_visitor_form(data)
    now = datetime.now(UTC)
    async with transaction():
        latest = await _latest(hashed)
        if latest is None or latest["status"] != Status.open:
            await _begin(hashed, values, visit, now, left_message=False)
        else:
            await _add_message(latest["id"], Author.visitor, values["question"], now=now)
    return await state(token)


async def leave_message(token: str | None, data: dict[str, Any], visit: Visit) -> None:
    """Nobody online: the visitor's question becomes a prospect (or reaches their customer record) and a
    follow-up due today for the customer's owner, else for the staff member on duty."""
    hashed = token_hash(token)
    values = clean_visitor_form(data)
    now = datetime.now(UTC)
    async with transaction():
        conversation, customer = await _begin(hashed, values, visit, now, left_message=True)
        taker = customer["owner"] or await _on_duty(now)
        if taker is not None and customer["owner"] is None:
            await Customer.update({Customer.owner: taker, Customer.updated_at: now}).where(
                Customer.id == customer["id"]
            )
            await core.record(
                actor_id=None,
                entity="customer",
                entity_id=customer["id"],
                customer_id=customer["id"],
                action="update",
                changes={"owner": [None, taker]},
            )
        content = _("Message left on the website chat by %(name)s:", name=values["name"]) + "\n" + values["question"]
        # Nobody waits in the chat for it: the follow-up due today is how it reaches someone.
        followup_id = await _write_followup(
            customer["id"],
            author=taker,
            happened_at=now,
            content=content,
            conversation_id=conversation.id,
            next_follow_up_at=max(now, due_moment(local(now).date())),
        )
        await Conversation.update(
            {
                Conversation.assignee: taker,
                Conversation.followup_id: followup_id,
                Conversation.unread: 0,
                Conversation.waiting_since: None,
            }
        ).where(Conversation.id == conversation.id)


async def _write_followup(
    customer_id: int,
    *,
    author: int | None,
    happened_at: datetime,
    content: str,
    conversation_id: int,
    next_follow_up_at: datetime | None = None,
) -> int:
    values = {
        "method": await _option_id(OptionKind.followup_method, CHAT_METHOD),
        "happened_at": happened_at,
        "content": content,
        "next_follow_up_at": next_follow_up_at,
        "conversation_id": conversation_id,
    }
    followup = FollowUp(customer=customer_id, author=author, **values)
    await followup.save()
    await refresh_contact_dates(customer_id)
    await core.record(
        actor_id=author,
        entity="follow_up",
        entity_id=followup.id,
        customer_id=customer_id,
        action="create",
        changes=core.diff({}, values),
    )
    return followup.id


# ---------------------------------------------------------------------------------------------------------
# Messages


async def _add_message(
    conversation_id: int, author: Author, body: str, *, staff_id: int | None = None, now: datetime
) -> ChatMessage:
    """Append a message. The conversation row is written first, which on PostgreSQL locks it: messages of one
    conversation get their ids in commit order, so a poll's after-id cursor never skips one."""
    changes: dict[Any, Any] = {Conversation.last_message_at: now}
    if author == Author.visitor:
        changes[Conversation.unread] = Conversation.unread + 1
    elif author == Author.staff:
        changes[Conversation.unread] = 0
        changes[Conversation.waiting_since] = None
    await Conversation.update(changes).where(Conversation.id == conversation_id)
    message = ChatMessage(conversation=conversation_id, author=author, staff=staff_id, body=body, created_at=now)
    await message.save()
    await Conversation.update({Conversation.last_message_id: message.id}).where(Conversation.id == conversation_id)
    if author == Author.visitor:
        await Conversation.update({Conversation.waiting_since: now}).where(
            Conversation.id == conversation_id, Conversation.waiting_since.is_null()
        )
    elif author == Author.staff:
        await Conversation.update({Conversation.first_response_at: now}).where(
            Conversation.id == conversation_id, Conversation.first_response_at.is_null()
        )
    return message


def system_text(code: str, name: str = "") -> str:
    if code == CLOSED_BY_STAFF:
        return _("The conversation was closed by our staff.")
    if code == CLOSED_BY_VISITOR:
        return _("The visitor ended the conversation.")
    if code.startswith(ASSIGNED):
        return _("%(name)s is now looking after this conversation.", name=code.partition(":")[2] or name)
    return code


def _message_json(row: dict[str, Any]) -> dict[str, Any]:
    author = row["author"]
    if author == Author.system:
        body, name = system_text(row["body"]), ""
    else:
        body, name = row["body"], row.get("staff_name") or ""
    return {"id": row["id"], "author": author, "name": name, "body": body, "at": row["created_at"].isoformat()}


_MESSAGE_COLUMNS = (
    ChatMessage.id,
    ChatMessage.author,
    ChatMessage.body,
    ChatMessage.created_at,
    ChatMessage.staff,
    ChatMessage.staff.name.as_alias("staff_name"),
)


async def _messages(conversation_id: int, after: int = 0, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """Messages after the cursor, oldest first; without a cursor, the newest `limit` of them."""
    query = ChatMessage.select(*_MESSAGE_COLUMNS).where(ChatMessage.conversation == conversation_id)
    if after:
        rows = await query.where(ChatMessage.id > after).order_by(ChatMessage.id).limit(limit)
    else:
        rows = list(reversed(await query.order_by(ChatMessage.id, ascending=False).limit(limit)))
    return rows


_LATEST = (
    "SELECT c.id, c.status, c.last_message_id, c.rating, c.customer, c.left_message, v.name"
    " FROM chat_visitor v JOIN conversation c ON c.id = v.conversation_id WHERE v.token_hash = {}"
)


async def _latest(hashed: str) -> dict[str, Any] | None:
    """The visitor's latest conversation's cursor and status: one indexed lookup (unique token, primary key).
    Inside a write's transaction, so it sees what that transaction wrote."""
    rows = await ChatVisitor.raw(_LATEST, hashed)
    return rows[0] if rows else None


async def state(token: str | None) -> dict[str, Any]:
    """What the widget shows when it opens: who is online, the visitor's latest conversation and its history."""
    hashed = token_hash(token)
    visitor = await ChatVisitor.select(ChatVisitor.name).where(ChatVisitor.token_hash == hashed).first()
    latest = await _latest(hashed)
    messages = await _messages(latest["id"]) if latest else []
    staffed = await hours()
    return {
        "online": await online(),
        "hours": staffed.describe(),
        "visitor": {"name": visitor["name"]} if visitor else None,
        "conversation": _conversation_json(latest),
        "messages": [_message_json(row) for row in messages],
        "last_id": latest["last_message_id"] if latest else 0,
    }


def _can_rate(latest: dict[str, Any]) -> bool:
    """A conversation someone answered and closed, not rated yet (a message left for later has nothing to rate)."""
    return latest["status"] == Status.closed and latest["rating"] is None and not latest["left_message"]


def _conversation_json(latest: dict[str, Any] | None) -> dict[str, Any] | None:
    if latest is None:
        return None
    return {
        "id": latest["id"],
        "status": latest["status"],
        "can_rate": _can_rate(latest),
        "rated": latest["rating"] is not None,
    }


async def poll(token: str | None, after: int) -> dict[str, Any] | None:
    """New messages after the cursor, or None when there are none (the route answers 204)."""
    latest = await lookup(_LATEST, token_hash(token))
    if latest is None or latest["last_message_id"] <= after:
        return None
    rows = await _messages(latest["id"], after=max(after, 0))
    return {
        "conversation_id": latest["id"],
        "messages": [_message_json(row) for row in rows],
        "status": latest["status"],
        "last_id": latest["last_message_id"],
        "can_rate": _can_rate(latest),
    }


def clean_message(body: Any) -> str:
    text = str(body or "").replace("\r\n", "\n").strip()
    if not text:
        raise FormErrors({"body": _("Write a message first.")})
    if len(text) > MESSAGE_MAX:
        raise FormErrors({"body": _("A message can have at most %(n)s characters.", n=MESSAGE_MAX)})
    return text


async def visitor_says(token: str | None, body: Any) -> dict[str, Any]:
    """A visitor's message in their open conversation: NoConversation, Closed, TooMany or FormErrors."""
    hashed = token_hash(token)
    text = clean_message(body)
    now = datetime.now(UTC)
    async with transaction():
        latest = await _latest(hashed)
        if latest is None:
            raise NoConversation(_("Start a conversation first."))
        if latest["status"] != Status.open:
            raise Closed(_("This conversation has ended."))
        recent = await ChatMessage.count().where(
            ChatMessage.conversation == latest["id"],
            ChatMessage.author == Author.visitor,
            ChatMessage.created_at >= now - timedelta(minutes=1),
        )
        if recent >= get_settings().chat_messages_per_minute:
            raise TooMany(_("You are sending messages very fast. Please wait a moment."))
        message = await _add_message(latest["id"], Author.visitor, text, now=now)
    return {"message": _message_json({**message.to_dict(), "staff_name": ""}), "last_id": message.id}


async def _close(conversation_id: int, *, by: str, actor: CurrentUser | None, now: datetime) -> None:
    """Close an open conversation: a system line for both sides, and the transcript as a follow-up."""
    row = await Conversation.select().where(Conversation.id == conversation_id).first()
    if row is None or row["status"] != Status.open:
        return
    await _add_message(conversation_id, Author.system, CLOSED_BY_STAFF if by == "staff" else CLOSED_BY_VISITOR, now=now)
    author = actor.account_id if actor else row["assignee"]
    followup_id = await _write_followup(
        row["customer"],
        author=author,
        happened_at=row["started_at"],
        content=await transcript(conversation_id),
        conversation_id=conversation_id,
    )
    await Conversation.update(
        {
            Conversation.status: Status.closed,
            Conversation.closed_at: now,
            Conversation.closed_by: by,
            Conversation.unread: 0,
            Conversation.waiting_since: None,
            Conversation.followup_id: followup_id,
        }
    ).where(Conversation.id == conversation_id)
    await core.record(
        actor_id=actor.account_id if actor else None,
        entity="conversation",
        entity_id=conversation_id,
        customer_id=row["customer"],
        action="close",
        changes={"status": [Status.open.value, Status.closed.value]},
    )


async def transcript(conversation_id: int) -> str:
    """The conversation as plain text for its follow-up record, cut to what a follow-up holds."""
    visitor = (
        await Conversation.select(Conversation.visitor.name.as_alias("name"))
        .where(Conversation.id == conversation_id)
        .first()
    )
    lines = []
    for row in await _messages(conversation_id, limit=10_000):
        when = local(row["created_at"]).strftime("%H:%M")
        if row["author"] == Author.system:
            lines.append(f"[{when}] {system_text(row['body'])}")
            continue
        who = row["staff_name"] if row["author"] == Author.staff else (visitor["name"] if visitor else "")
        lines.append(f"[{when}] {who}：{row['body']}")
    text = _("Website chat transcript") + "\n" + "\n".join(lines)
    if len(text) > CONTENT_MAX:
        more = "\n" + _("(cut here; the whole conversation is in the chat panel)")
        text = text[: CONTENT_MAX - len(more)] + more
    return text


async def end_by_visitor(token: str | None) -> None:
    hashed = token_hash(token)
    async with transaction():
        latest = await _latest(hashed)
        if latest is None:
            raise NoConversation(_("Start a conversation first."))
        await _close(latest["id"], by="visitor", actor=None, now=datetime.now(UTC))


RATING_COMMENT_MAX = 2000


async def rate(token: str | None, rating: Any, comment: Any) -> None:
    """The visitor rates the closed conversation (once): a feedback record linked to it and to the customer."""
    hashed = token_hash(token)
    text = str(comment or "").replace("\r\n", "\n").strip()
    errors: dict[str, str] = {}
    try:
        stars = int(rating)
    except (TypeError, ValueError):
        stars = 0
    if not 1 <= stars <= 5:
        errors["rating"] = _("Choose a rating from 1 to 5 stars.")
    if len(text) > RATING_COMMENT_MAX:
        errors["comment"] = _("At most %(n)s characters.", n=RATING_COMMENT_MAX)
    if errors:
        raise FormErrors(errors)
    async with transaction():
        latest = await _latest(hashed)
        if latest is None:
            raise NoConversation(_("Start a conversation first."))
        if latest["status"] != Status.closed:
            raise Closed(_("You can rate the conversation once it has ended."))
        if latest["rating"] is not None:
            raise AlreadyRated(_("Thank you, you have already rated this conversation."))
        if latest["left_message"]:
            raise Closed(_("A message left for us cannot be rated."))
        visitor = await ChatVisitor.select().where(ChatVisitor.token_hash == hashed).first()
        reach = " / ".join(value for value in (visitor["mobile"], visitor["wechat"], visitor["email"]) if value)
        feedback_id = await feedback.submit_feedback(
            content=text or _("Rated the website chat without a comment."),
            rating=stars,
            customer_id=latest["customer"],
            visitor_name=visitor["name"],
            visitor_contact=reach,
            conversation_id=latest["id"],
        )
        await Conversation.update({Conversation.rating: stars, Conversation.feedback_id: feedback_id}).where(
            Conversation.id == latest["id"]
        )


# ---------------------------------------------------------------------------------------------------------
# Staff side


def visible_conversations(user: CurrentUser) -> Where | And | Or:
    """Staff see conversations they look after, unassigned ones, and those of customers in their scope;
    supervisors see all."""
    return Conversation.id > 0 if user.is_supervisor else _visible_to(user.account_id)


def _visible_to(account_id: Any) -> Or:
    """A staff member's conversations (account_id: the account's id, or a prepared query's parameter)."""
    return (
        (Conversation.assignee == account_id)
        | Conversation.assignee.is_null()
        | (Conversation.customer.owner == account_id)
        | Conversation.customer.owner.is_null()
    )


def _mine(account_id: Any) -> Or:
    """What the header's badge counts: open conversations the user looks after, and the unassigned queue."""
    return (Conversation.assignee == account_id) | Conversation.assignee.is_null()


@dataclass(frozen=True)
class Pulse:
    """A cheap summary of the conversations a poll watches: when it is unchanged, the poll answers 204."""

    version: str
    unread: int
    waiting: int


def _pulse_query(scope: Where | And | Or) -> Any:
    return Conversation.select(
        Max(Conversation.last_message_id, alias="newest"),
        Count(alias="open"),
        Sum(Conversation.unread, alias="unread"),
        # COUNT of a column counts the rows where it is set: the visitors waiting for an answer.
        Count(Conversation.waiting_since, alias="waiting"),
    ).where(Conversation.status == Status.open.value, scope)


# The polls' queries, run every few seconds by every open Kehu page: their SQL is generated once.
_PULSE_ALL = Prepared(lambda: _pulse_query(Conversation.id > 0))
_PULSE_VISIBLE = Prepared(lambda me: _pulse_query(_visible_to(me)))
_PULSE_MINE = Prepared(lambda me: _pulse_query(_mine(me)))


async def pulse(user: CurrentUser, *, everything: bool = False) -> Pulse:
    """One aggregate query over the user's open conversations (the panel's scope when everything is set)."""
    if not everything:
        query = _PULSE_MINE(me=user.account_id)
    else:
        query = _PULSE_ALL() if user.is_supervisor else _PULSE_VISIBLE(me=user.account_id)
    rows = await query
    first = rows[0] if rows else {}
    newest, count = first.get("newest") or 0, first.get("open") or 0
    unread, waiting = int(first.get("unread") or 0), int(first.get("waiting") or 0)
    return Pulse(version=f"{newest}-{count}-{unread}-{waiting}", unread=unread, waiting=waiting)


_LIST_COLUMNS = (
    Conversation.id,
    Conversation.status,
    Conversation.customer,
    Conversation.customer.name.as_alias("customer_name"),
    Conversation.visitor.name.as_alias("visitor_name"),
    Conversation.assignee,
    Conversation.assignee.name.as_alias("assignee_name"),
    Conversation.unread,
    Conversation.waiting_since,
    Conversation.last_message_id,
    Conversation.last_message_at,
    Conversation.started_at,
    Conversation.closed_at,
    Conversation.left_message,
    Conversation.utm_campaign,
    Conversation.rating,
)

LIST_LIMIT = 100


def _list_query(status: Any, scope: Where | And | Or) -> Any:
    # Newest activity first from the index on (status, last_message_at), stopping at the list's length.
    return (
        Conversation.select(*_LIST_COLUMNS)
        .where(Conversation.status == status, scope)
        .order_by(Conversation.last_message_at, ascending=False)
        .limit(LIST_LIMIT)
    )


_LIST_ALL = Prepared(lambda status: _list_query(status, Conversation.id > 0))
_LIST_VISIBLE = Prepared(lambda status, me: _list_query(status, _visible_to(me)))


async def conversations(user: CurrentUser, status: str = Status.open.value) -> list[dict[str, Any]]:
    """The panel's list: newest activity first, each with its last message as a preview."""
    status = status if status in {s.value for s in Status} else Status.open.value
    query = _LIST_ALL(status=status) if user.is_supervisor else _LIST_VISIBLE(status=status, me=user.account_id)
    return await _with_previews(await query)


async def _with_previews(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each conversation with its last message as a preview (one query for all of them)."""
    last_ids = [row["last_message_id"] for row in rows if row["last_message_id"]]
    previews: dict[int, dict[str, Any]] = {}
    if last_ids:
        for message in await ChatMessage.select(ChatMessage.id, ChatMessage.author, ChatMessage.body).where(
            ChatMessage.id.is_in(last_ids)
        ):
            previews[message["id"]] = message
    for row in rows:
        message = previews.get(row["last_message_id"])
        if message is None:
            row["preview"] = ""
        elif message["author"] == Author.system:
            row["preview"] = system_text(message["body"])
        else:
            row["preview"] = message["body"][:80]
        row["preview_author"] = message["author"] if message else ""
    return rows


@dataclass
class ConversationView:
    conversation: dict[str, Any]
    messages: list[dict[str, Any]]
    customer: dict[str, Any] | None
    can_reply: bool
    staff: list[dict[str, Any]] = field(default_factory=list)
    canned: list[dict[str, Any]] = field(default_factory=list)


async def _visible_row(user: CurrentUser, conversation_id: int) -> dict[str, Any]:
    if not 0 < conversation_id <= MAX_ID:
        raise NotVisible(conversation_id)
    row = (
        await Conversation.select(
            Conversation.all_columns(),
            Conversation.visitor.name.as_alias("visitor_name"),
            Conversation.visitor.mobile.as_alias("visitor_mobile"),
            Conversation.visitor.email.as_alias("visitor_email"),
            Conversation.visitor.wechat.as_alias("visitor_wechat"),
            Conversation.assignee.name.as_alias("assignee_name"),
        )
        .where(Conversation.id == conversation_id, visible_conversations(user))
        .first()
    )
    if row is None:
        raise NotVisible(conversation_id)
    return row


async def open_conversation(user: CurrentUser, conversation_id: int) -> ConversationView:
    """A conversation for the panel; opening it marks the visitor's messages read when the user looks after it
    (or nobody does yet)."""
    row = await _visible_row(user, conversation_id)
    if row["unread"] and row["assignee"] in (None, user.account_id):
        await Conversation.update({Conversation.unread: 0}).where(Conversation.id == conversation_id)
        row["unread"] = 0
    customer = (
        await Customer.select(
            Customer.id,
            Customer.name,
            Customer.kind,
            Customer.owner,
            Customer.owner.name.as_alias("owner_name"),
            Customer.deleted_at,
        )
        .where(Customer.id == row["customer"])
        .first()
        if row["customer"]
        else None
    )
    messages = await _messages(conversation_id)
    return ConversationView(
        conversation=row,
        messages=messages,
        customer=customer,
        can_reply=row["status"] == Status.open,
        staff=await _assignable(),
        canned=await canned_replies(),
    )


async def new_messages(user: CurrentUser, conversation_id: int, after: int) -> tuple[str, list[dict[str, Any]]]:
    """The visitor's name and the messages after the panel's cursor of a conversation it shows; read at once
    when the user looks after it."""
    row = await _visible_row(user, conversation_id)
    if row["last_message_id"] <= after:
        return row["visitor_name"], []
    if row["unread"] and row["assignee"] in (None, user.account_id):
        await Conversation.update({Conversation.unread: 0}).where(Conversation.id == conversation_id)
    return row["visitor_name"], await _messages(conversation_id, after=after)


async def _assignable() -> list[dict[str, Any]]:
    return (
        await Account.select(Account.id, Account.name)
        .where(Account.user.active.eq(True), Account.role != Role.admin)
        .order_by(Account.name)
    )


async def _take(user: CurrentUser, row: dict[str, Any], now: datetime) -> None:
    """The first staff member to answer looks after the conversation, and a pool customer becomes theirs."""
    await Conversation.update({Conversation.assignee: user.account_id}).where(Conversation.id == row["id"])
    customer = await Customer.select(Customer.owner).where(Customer.id == row["customer"]).first()
    if customer is not None and customer["owner"] is None:
        await Customer.update({Customer.owner: user.account_id, Customer.updated_at: now}).where(
            Customer.id == row["customer"]
        )
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=row["customer"],
            customer_id=row["customer"],
            action="update",
            changes={"owner": [None, user.account_id]},
        )


async def reply(user: CurrentUser, conversation_id: int, body: Any) -> int:
    """Staff answer. Raises NotVisible, Closed or FormErrors; returns the message id."""
    text = clean_message(body)
    now = datetime.now(UTC)
    async with transaction():
        row = await _visible_row(user, conversation_id)
        if row["status"] != Status.open:
            raise Closed(_("This conversation has ended."))
        if row["assignee"] is None:
            await _take(user, row, now)
        message = await _add_message(conversation_id, Author.staff, text, staff_id=user.account_id, now=now)
    return message.id


async def assign(user: CurrentUser, conversation_id: int, raw_assignee: str) -> None:
    """Claim a conversation, or hand it to someone else. Staff hand over only what they look after (or what is
    unassigned); supervisors hand over anything. Raises NotVisible, PermissionError or FormErrors."""
    raw = (raw_assignee or "").strip()
    assignee = int(raw) if raw.isdigit() and len(raw) < 10 else None
    now = datetime.now(UTC)
    async with transaction():
        row = await _visible_row(user, conversation_id)
        if not user.is_supervisor and row["assignee"] not in (None, user.account_id):
            raise PermissionError(conversation_id)
        target = (
            await Account.select(Account.id, Account.name)
            .where(Account.id == assignee, Account.user.active.eq(True), Account.role != Role.admin)
            .first()
            if assignee
            else None
        )
        if target is None:
            raise FormErrors({"assignee": _("Choose a colleague from the list.")})
        if target["id"] == row["assignee"]:
            return
        await Conversation.update({Conversation.assignee: target["id"]}).where(Conversation.id == conversation_id)
        if row["status"] == Status.open:
            await _add_message(conversation_id, Author.system, f"{ASSIGNED}:{target['name']}", now=now)
        await core.record(
            actor_id=user.account_id,
            entity="conversation",
            entity_id=conversation_id,
            customer_id=row["customer"],
            action="assign",
            changes={"assignee": [row["assignee"], target["id"]]},
        )


async def close(user: CurrentUser, conversation_id: int) -> None:
    async with transaction():
        row = await _visible_row(user, conversation_id)
        if row["status"] != Status.open:
            return
        if row["assignee"] is None:
            await _take(user, row, datetime.now(UTC))
        await _close(conversation_id, by="staff", actor=user, now=datetime.now(UTC))


# Read on every customer page: its SQL is generated once (see db.Prepared).
_OF_CUSTOMER = Prepared(
    lambda customer_id: (
        Conversation.select(*_LIST_COLUMNS)
        .where(Conversation.customer == customer_id)
        .order_by(Conversation.started_at, ascending=False)
        .limit(50)
    )
)


async def conversations_of(customer_id: int) -> list[dict[str, Any]]:
    """The customer page's list of website chats (the customer's visibility is checked by the caller)."""
    rows = await _OF_CUSTOMER(customer_id=customer_id)
    # What the visitor came with says more here than the last line of a closed chat.
    questions: dict[int, str] = {}
    if rows:
        for message in (
            await ChatMessage.select(ChatMessage.conversation, ChatMessage.body)
            .where(ChatMessage.conversation.is_in([row["id"] for row in rows]), ChatMessage.author == Author.visitor)
            .order_by(ChatMessage.id)
        ):
            questions.setdefault(message["conversation"], message["body"][:120])
    for row in rows:
        row["preview"] = questions.get(row["id"], "")
    return rows


# ---------------------------------------------------------------------------------------------------------
# Canned replies (admin)


async def canned_replies(*, include_inactive: bool = False) -> list[dict[str, Any]]:
    query = CannedReply.select().order_by(CannedReply.position).order_by(CannedReply.id)
    if not include_inactive:
        query = query.where(CannedReply.active.eq(True))
    return await query


def _clean_canned(data: dict[str, str]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    title = normalize.clean_text(data.get("title", ""))
    body = data.get("body", "").replace("\r\n", "\n").strip()
    if not title:
        errors["title"] = _("This field is required.")
    elif len(title) > CANNED_TITLE_MAX:
        errors["title"] = _("At most %(n)s characters.", n=CANNED_TITLE_MAX)
    if not body:
        errors["body"] = _("This field is required.")
    elif len(body) > MESSAGE_MAX:
        errors["body"] = _("At most %(n)s characters.", n=MESSAGE_MAX)
    if errors:
        raise FormErrors(errors)
    return {"title": title, "body": body, "active": data.get("active", "1") == "1"}


async def add_canned(user: CurrentUser, data: dict[str, str]) -> int:
    values = _clean_canned(data)
    async with transaction():
        last = await CannedReply.select(Max(CannedReply.position, alias="last")).first()
        reply_row = CannedReply(**values, position=((last or {}).get("last") or 0) + 1)
        await reply_row.save()
        await core.record(
            actor_id=user.account_id,
            entity="canned_reply",
            entity_id=reply_row.id,
            action="create",
            changes=core.diff({}, values),
        )
    return reply_row.id


async def get_canned(reply_id: int) -> dict[str, Any]:
    row = await CannedReply.select().where(CannedReply.id == reply_id).first() if 0 < reply_id <= MAX_ID else None
    if row is None:
        raise NotVisible(reply_id)
    return row


async def update_canned(user: CurrentUser, reply_id: int, data: dict[str, str]) -> None:
    values = _clean_canned(data)
    async with transaction():
        before = await get_canned(reply_id)
        await CannedReply.update(values).where(CannedReply.id == reply_id)
        await core.record(
            actor_id=user.account_id,
            entity="canned_reply",
            entity_id=reply_id,
            action="update",
            changes=core.diff(before, values),
        )


async def delete_canned(user: CurrentUser, reply_id: int) -> None:
    async with transaction():
        before = await get_canned(reply_id)
        await CannedReply.delete().where(CannedReply.id == reply_id)
        await core.record(
            actor_id=user.account_id,
            entity="canned_reply",
            entity_id=reply_id,
            action="delete",
            changes={"title": [before["title"], None], "body": [before["body"], None]},
        )


def waited(since: datetime | None, now: datetime | None = None) -> int:
    """Whole minutes a visitor has been waiting for an answer."""
    if since is None:
        return 0
    return max(0, int(((now or datetime.now(UTC)) - since).total_seconds() // 60))
