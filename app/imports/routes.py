"""Import pages: upload a spreadsheet, map its columns, watch the worker import it, read what was refused and
undo a batch. Every logged-in person may import — staff for themselves or into the public pool."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template

from app import exports
from app.accounts import service as accounts
from app.analysis.report import Column
from app.customers.service import FormErrors
from app.customers.tables import Origin
from app.i18n import _
from app.imports import reader, service
from app.imports.tables import Policy, Status
from app.options import service as options
from app.options.tables import OptionKind
from app.web import RecordId, form_data, go_to, render, see_other, user_of

# The form's own fields besides the file; the body may be a little larger than the file itself.
UPLOAD_BODY_LIMIT = reader.MAX_UPLOAD_BYTES + 1024 * 1024


def _policies() -> list[tuple[str, str, str]]:
    return [
        (Policy.skip.value, _("Skip them"), _("The customer in Kehu stays as it is; the row is listed as skipped.")),
        (
            Policy.update.value,
            _("Update the customer in Kehu"),
            _("Fields the file fills in replace those in Kehu; empty cells change nothing."),
        ),
        (Policy.create.value, _("Create them anyway"), _("A second customer is created beside the one in Kehu.")),
    ]


def _issue_columns() -> list[Column]:
    return [
        Column("row_number", _("Row"), "count"),
        Column("column", _("Column")),
        Column("value", _("Value")),
        Column("reason", _("Reason")),
    ]


class ImportController(Controller):
    path = "/imports"

    async def _index(self, request: HTMXRequest, *, error: str = "", status_code: int = 200) -> Template:
        user = user_of(request)
        return render(
            "imports/index.html",
            status_code=status_code,
            batches=await service.list_batches(user),
            error=error,
            max_mb=reader.MAX_UPLOAD_BYTES // (1024 * 1024),
            max_rows=reader.MAX_ROWS,
            active_nav="imports",
        )

    @get("/")
    async def index(self, request: HTMXRequest) -> Template:
        return await self._index(request)

    @post("/", request_max_body_size=UPLOAD_BODY_LIMIT)
    async def upload(self, request: HTMXRequest) -> Template | Response[Any]:
        """Keep the file as a draft and show its first rows with the guessed mapping."""
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await self._index(request, error=_("Choose a file to upload."), status_code=422)
        content = await upload.read()
        try:
            batch_id = await service.upload(user_of(request), upload.filename, content)
        except reader.FileRejected as refused:
            return await self._index(request, error=str(refused), status_code=422)
        return go_to(request, f"/imports/{batch_id}")

    async def _batch_page(
        self,
        request: HTMXRequest,
        batch: dict[str, Any],
        *,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        undo_error: str = "",
        status_code: int = 200,
    ) -> Template:
        user = user_of(request)
        context: dict[str, Any] = {
            "batch": batch,
            "active_nav": "imports",
            "may_undo": service.may_undo(user, batch),
            "undo_error": undo_error,
        }
        if batch["status"] == Status.draft:
            mapping = batch["mapping"]
            template_id = request.query_params.get("template", "")
            if form is None and template_id.isdigit() and len(template_id) < 10:
                saved = await service.template_mapping(int(template_id))
                if saved is not None:
                    mapping = service.mapping_from_template(batch["headers"], saved)
            form = form or {
                **{f"column-{index}": name for index, name in enumerate(mapping)},
                "origin": Origin.external.value,
                "owner": str(user.account_id),
                "policy": Policy.skip.value,
            }
            context.update(
                form=form,
                errors=errors or {},
                fields=service.field_choices(),
                channels=await options.options(OptionKind.source_channel),
                owners=await accounts.assignable_accounts() if user.is_supervisor else [],
                policies=_policies(),
                templates=await service.templates(),
            )
        else:
            context.update(
                issues=await service.issues_of(batch["id"]),
                issue_total=await service.issue_count(batch["id"]),
                shown=service.ISSUES_SHOWN,
            )
        return render("imports/batch.html", status_code=status_code, **context)

    @get("/{batch_id:int}")
    async def batch(self, request: HTMXRequest, batch_id: RecordId) -> Template:
        return await self._batch_page(request, await service.get_batch(user_of(request), batch_id))

    @post("/{batch_id:int}/start")
    async def start(self, request: HTMXRequest, batch_id: RecordId) -> Template | Response[Any]:
        user = user_of(request)
        data = await form_data(request)
        try:
            await service.start(user, batch_id, data)
        except FormErrors as refused:
            batch = await service.get_batch(user, batch_id)
            if batch["status"] != Status.draft:
                return go_to(request, f"/imports/{batch_id}")
            return await self._batch_page(request, batch, form=data, errors=refused.errors, status_code=422)
        return go_to(request, f"/imports/{batch_id}")

    @get("/{batch_id:int}/progress")
    async def progress(self, request: HTMXRequest, batch_id: RecordId) -> Template | Response[None]:
        """The progress panel, polled every two seconds; 204 while nothing has changed since `seen`."""
        batch = await service.get_batch(user_of(request), batch_id)
        state = f"{batch['status']}-{batch['rows_done']}-{batch['total_rows']}-{batch['undo_done']}"
        if request.query_params.get("seen") == state:
            return Response(content=None, status_code=204)
        if batch["status"] in (Status.queued, Status.running, Status.undoing):
            return render("imports/_progress.html", batch=batch)
        # Finished (or undone): the page is loaded again, with the result, the refused rows and the undo button.
        response = render("imports/_progress.html", batch=batch)
        response.headers["HX-Refresh"] = "true"
        return response

    @get("/{batch_id:int}/issues")
    async def issues(self, request: Request, batch_id: RecordId) -> Response[bytes]:
        """The rows that were not imported, with their reasons, as CSV or XLSX."""
        batch = await service.get_batch(user_of(request), batch_id)
        file_type = request.query_params.get("format", "xlsx")
        if file_type not in exports.TYPES:
            raise HTTPException(status_code=400)
        rows = await service.issues_of(batch_id, limit=None)
        title = _("Rows not imported from %(file)s", file=batch["file_name"])
        return exports.download(
            file_type, title, f"import-{batch_id}-issues", _issue_columns(), rows, sheet=_("Rows not imported")
        )

    @post("/{batch_id:int}/undo")
    async def undo(self, request: HTMXRequest, batch_id: RecordId) -> Template | Response[Any]:
        user = user_of(request)
        try:
            await service.undo(user, batch_id)
        except FormErrors as refused:
            batch = await service.get_batch(user, batch_id)
            return await self._batch_page(request, batch, undo_error=refused.errors.get("undo", ""), status_code=422)
        return go_to(request, f"/imports/{batch_id}")

    @post("/templates/{template_id:int}/delete")
    async def delete_template(self, request: HTMXRequest, template_id: RecordId) -> Response[Any]:
        await service.delete_template(user_of(request), template_id)
        back = (await form_data(request)).get("next", "")
        return see_other(back if back.startswith("/imports/") and "//" not in back else "/imports")
