"""What every route shares: the current user, fragment-or-page rendering, form reading, redirects."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import PathParameter
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Redirect, Response, Template

from app.accounts.service import CurrentUser
from app.db import MAX_ID

# A record id in a URL: a positive 32-bit integer, so a huge number is a 400, not a database overflow.
RecordId = Annotated[int, PathParameter(gt=0, le=MAX_ID)]


def user_of(request: Request) -> CurrentUser:
    return request.user


def wants_fragment(request: HTMXRequest, *targets: str) -> bool:
    """True when htmx asked to swap one of these elements (not a boosted page load, which gets the whole page)."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and htmx.target in targets


def render(template: str, status_code: int = 200, **context: Any) -> Template:
    return HTMXTemplate(template_name=template, context=context, status_code=status_code)


def see_other(url: str) -> Redirect:
    """Post/redirect/get: after a form post, the browser fetches the result with GET."""
    return Redirect(path=url, status_code=303)


def go_to(request: HTMXRequest, url: str) -> Response[None] | Redirect:
    """After an action, show another page: htmx is told to load it (and push its URL), a plain browser is
    redirected. Boosted requests follow a 303 themselves."""
    if request.htmx and not request.htmx.boosted:
        return Response(content=None, status_code=200, headers={"HX-Location": url})
    return see_other(url)


# Control characters other than tab and line breaks: never typed by a person, and PostgreSQL refuses NUL in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


async def form_data(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (first value of each field, control characters removed); a body
    that is not a form reads as an empty form, so the usual validation answers it."""
    form = await request.form()
    data: dict[str, str] = {}
    for key in form:
        value = form.get(key)
        if isinstance(value, str):
            data[_CONTROL.sub("", key)] = _CONTROL.sub("", value)
    return data


def not_found() -> NotFoundException:
    return NotFoundException()


def require_admin(user: CurrentUser) -> None:
    if not user.is_admin:
        raise PermissionDeniedException()


def requires_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard for admin-only controllers."""
    require_admin(connection.user)
