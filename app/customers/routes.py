"""Customer pages: the list with tabs and filters, the new-customer form with its duplicate warning, and the
customer page where every field, contact and project is edited in place."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from litestar import Controller, get, post, put
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template
from markupsafe import Markup, escape

from app import exports
from app.accounts import service as accounts
from app.accounts.service import CurrentUser
from app.chat import service as chat
from app.customers import export, history, service
from app.customers.service import FIELDS, CustomerFilters, FormErrors
from app.customers.tables import ProjectStatus, Segment
from app.feedback import service as feedback
from app.followups import service as followups
from app.i18n import _
from app.labels import label, option_label
from app.options import service as options
from app.options.tables import OptionKind
from app.regions import PROVINCES
from app.web import RecordId, form_data, go_to, render, see_other, user_of, wants_fragment


def filter_option(value: Any, text: str, selected: bool, count: int | None) -> Markup:
    """One option of a filter's select, with how many customers it would give. A function rather than a template
    macro: the selects hold a hundred options on every list page, and a macro call costs Jinja many times more
    (so does Markup.format, which runs Python's string formatter)."""
    # Both texts are escaped; the rest is fixed markup and a number.
    return Markup(  # noqa: S704
        f'<option value="{escape(value)}"{" selected" if selected else ""}'
        f"{_EMPTY if count == 0 else ''}>{escape(text)}{f' ({count:,})' if count is not None else ''}</option>"
    )


_EMPTY = ' class="facet-empty"'


def filter_options(page: service.CustomerPage, group: str, chosen: object, choices: list[tuple[Any, str]]) -> Markup:
    """A filter select's options after its "All": (value, text) pairs, the chosen one selected, each with its
    count under the other filters."""
    chosen = "" if chosen is None else str(chosen)
    # One option per line, as the template indents them.
    return Markup("\n    ").join(
        filter_option(value, text, str(value) == chosen, page.facet_count(group, value)) for value, text in choices
    )


_PROVINCE_CHOICES = [(province, province) for province in PROVINCES]
_CITY_CHOICES = {province: [(city, city) for city in cities] for province, cities in PROVINCES.items()}


async def _filter_choices(user: accounts.CurrentUser) -> dict[str, Any]:
    """What the filter selects offer, each as (value, text) pairs in the user's language."""
    lists = await options.all_options()
    owners = await accounts.assignable_accounts() if user.is_supervisor else []

    def entries(kind: OptionKind) -> list[tuple[Any, str]]:
        return [(row["id"], option_label(row)) for row in lists[kind.value]]

    return {
        "choice": filter_option,
        "choices": filter_options,
        "owners": owners,
        "owner_choices": [(owner["id"], owner["name"]) for owner in owners],
        "province_choices": _PROVINCE_CHOICES,
        "city_choices": _CITY_CHOICES,
        "channel_choices": entries(OptionKind.source_channel),
        "tier_choices": [(tier, label(tier)) for tier in ("A", "B", "C")],
        "origin_choices": [(origin, label(origin)) for origin in ("own", "external")],
        "budget_choices": entries(OptionKind.budget_band),
        "industry_choices": entries(OptionKind.industry),
        "segment_choices": [(segment.value, label(segment)) for segment in Segment],
    }


async def _field_context(customer: dict[str, Any], field_name: FromPath[str]) -> dict[str, Any]:
    spec = FIELDS[field_name]
    context: dict[str, Any] = {"customer": customer, "spec": spec, "choices": service.choices(field_name)}
    if spec.option_kind is not None:
        context["options"] = await options.options(spec.option_kind)
    if field_name == "city":
        context["cities"] = PROVINCES.get(customer["province"], [])
    return context


def _filters_of(query: str) -> CustomerFilters:
    """The list filters a form carried along as a URL query (the saved-filters form)."""
    return CustomerFilters.from_query(dict(parse_qsl(query)))


async def _saved_filters_context(
    user: accounts.CurrentUser,
    filters: CustomerFilters,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "saved_filters": await service.saved_filters(user),
        "saved_query": filters.query(page=1),
        "saved_form": form or {},
        "saved_errors": errors or {},
    }


def _spec_or_404(field_name: FromPath[str]) -> None:
    if field_name not in FIELDS:
        raise NotFoundException()


async def _duplicates_of(user: CurrentUser, form: dict[str, str]) -> list[service.Duplicate]:
    """The customers the new-customer form's values look like."""
    fields = ("name", "mobile", "email", "wechat", "province", "city")
    return await service.find_duplicates(user, **{name: form.get(name, "") for name in fields})


class CustomerController(Controller):
    path = "/customers"

    @get("/")
    async def index(self, request: HTMXRequest) -> Template:
        user = user_of(request)
        filters = CustomerFilters.from_query(dict(request.query_params))
        if wants_fragment(request, "customer-results"):
            page = await service.list_customers(user, filters)
            # The selects come along out of band, so their counts follow the filters; the search box stays.
            response = render(
                "customers/_results.html",
                page=page,
                filters=filters,
                oob_filters=True,
                **await _filter_choices(user),
            )
            # The address bar gets the filters that are set, not every empty field of the form.
            response.headers["HX-Push-Url"] = f"/customers?{page.filters.query()}"
            return response
        return await self._index_page(request, filters)

    async def _index_page(
        self,
        request: HTMXRequest,
        filters: CustomerFilters,
        saved_form: dict[str, str] | None = None,
        saved_errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        user = user_of(request)
        page = await service.list_customers(user, filters)
        return render(
            "customers/index.html",
            status_code=status_code,
            page=page,
            filters=filters,
            active_nav="customers",
            **await _filter_choices(user),
            **await _saved_filters_context(user, page.filters, saved_form, saved_errors),
        )

    # -- export --------------------------------------------------------------------------------------------------

    @get("/export")
    async def export(self, request: HTMXRequest) -> Response[bytes] | Template:
        """The list view the user came from (tab, filters, sort, their scope) as CSV or XLSX with the columns
        they tick; without a format, the form to choose them."""
        user = user_of(request)
        params = request.query_params
        filters = CustomerFilters.from_query(dict(params))
        file_type = params.get("format", "")
        if file_type not in exports.TYPES:
            page = await service.list_customers(user, filters)
            return render(
                "customers/export.html",
                filters=page.filters,
                hidden=parse_qsl(page.filters.query(page=1)),
                total=page.total,
                columns=list(export.COLUMNS.values()),
                chosen={column.key for column in export.chosen_columns(params.getall("columns", []))},
                limit=service.EXPORT_LIMIT,
                active_nav="customers",
            )
        customers = await service.customers_for_export(user, filters)
        if params.get("what") == "followups":
            columns = export.FOLLOW_UP_COLUMNS
            rows = export.table_rows(columns, await followups.for_export(customers))
            title, name = _("Follow-ups"), "followups"
        else:
            columns = export.chosen_columns(params.getall("columns", []))
            rows = export.table_rows(columns, customers)
            title, name = label(filters.kind), filters.kind
        return exports.download(file_type, title, name, [column.column() for column in columns], rows)

    # -- saved filter sets ----------------------------------------------------------------------------------

    @post("/saved-filters")
    async def save_filter(self, request: HTMXRequest) -> Response[Any]:
        """Save the list's current filters under a name; saving an existing name again replaces it."""
        user = user_of(request)
        form = await form_data(request)
        filters = _filters_of(form.get("query", ""))
        try:
            await service.save_filter(user, form.get("name", ""), form.get("query", ""))
        except FormErrors as error:
            if not wants_fragment(request, "saved-filters"):
                return await self._index_page(request, filters, form, error.errors, status_code=422)
            context = await _saved_filters_context(user, filters, form, error.errors)
            return render("customers/_saved_filters.html", status_code=422, **context)
        if not wants_fragment(request, "saved-filters"):
            return see_other(f"/customers?{filters.query(page=1)}")
        return render("customers/_saved_filters.html", **await _saved_filters_context(user, filters))

    @post("/saved-filters/{saved_filter_id:int}/delete")
    async def delete_saved_filter(self, request: HTMXRequest, saved_filter_id: RecordId) -> Response[Any]:
        user = user_of(request)
        filters = _filters_of((await form_data(request)).get("query", ""))
        await service.delete_saved_filter(user, saved_filter_id)
        if not wants_fragment(request, "saved-filters"):
            return see_other(f"/customers?{filters.query(page=1)}")
        return render("customers/_saved_filters.html", **await _saved_filters_context(user, filters))

    @get("/new")
    async def new(self, request: HTMXRequest) -> Template:
        return await self._new_form(request, {"origin": "own"}, {})

    async def _new_form(
        self,
        request: HTMXRequest,
        form: dict[str, str],
        errors: dict[str, str],
        duplicates: list[service.Duplicate] | None = None,
        status_code: int = 200,
    ) -> Template:
        lists = await options.all_options()
        return render(
            "customers/new.html",
            status_code=status_code,
            form=form,
            errors=errors,
            duplicates=duplicates or [],
            fields=FIELDS,
            field_names=service.NEW_CUSTOMER_FIELDS,
            lists=lists,
            provinces=list(PROVINCES),
            cities=PROVINCES.get(form.get("province", ""), []),
            origin_choices=service.choices("origin"),
            active_nav="customers",
        )

    @post("/duplicates")
    async def duplicates(self, request: HTMXRequest) -> Template:
        """The live duplicate warning under the new-customer form, refreshed as the user types."""
        found = await _duplicates_of(user_of(request), await form_data(request))
        return render("customers/_duplicates.html", duplicates=found)

    @post("/")
    async def create(self, request: HTMXRequest) -> Response[Any]:
        """Save a new customer. Possible duplicates are shown first; "save anyway" confirms."""
        user = user_of(request)
        form = await form_data(request)
        if not form.get("confirm_duplicates"):
            found = await _duplicates_of(user, form)
            if found:
                return await self._new_form(request, form, {}, found)
        try:
            customer_id = await service.create_customer(user, form)
        except FormErrors as error:
            return await self._new_form(request, form, error.errors, status_code=422)
        return go_to(request, f"/customers/{customer_id}")

    @get("/{customer_id:int}")
    async def detail(self, request: HTMXRequest, customer_id: RecordId) -> Template:
        user = user_of(request)
        customer = await service.get_customer(user, customer_id)
        contacts = await service.contacts_of(customer_id)
        context: dict[str, Any] = {
            "customer": customer,
            "contact_form": {},
            "contact_errors": {},
            "project_form": {},
            "project_errors": {},
            "fields": FIELDS,
            "contacts": contacts,
            "projects": await service.projects_of(customer_id),
            "history": await history.history_of(customer_id),
            "owners": await accounts.assignable_accounts() if user.is_supervisor else [],
            "project_statuses": list(ProjectStatus),
            "active_nav": "customers",
        }
        context.update(await followups.section_context(user, customer, contacts=contacts))
        context.update(await feedback.customer_section_context(user, customer))
        context["conversations"] = await chat.conversations_of(customer_id)
        return render("customers/detail.html", **context)

    # -- click-to-edit fields -------------------------------------------------------------------------------

    @get("/{customer_id:int}/fields/{field_name:str}")
    async def show_field(self, request: HTMXRequest, customer_id: RecordId, field_name: FromPath[str]) -> Template:
        _spec_or_404(field_name)
        customer = await service.get_customer(user_of(request), customer_id)
        return render("customers/_field.html", **await _field_context(customer, field_name))

    @get("/{customer_id:int}/fields/{field_name:str}/edit")
    async def edit_field(self, request: HTMXRequest, customer_id: RecordId, field_name: FromPath[str]) -> Template:
        _spec_or_404(field_name)
        user = user_of(request)
        if FIELDS[field_name].supervisor_only and not user.is_supervisor:
            raise PermissionDeniedException()
        customer = await service.get_customer(user, customer_id)
        context = await _field_context(customer, field_name)
        if not wants_fragment(request, f"field-{field_name}"):
            return render("customers/edit_field.html", **context, value=None, error=None)
        return render("customers/_field_edit.html", **context, value=None, error=None)

    @put("/{customer_id:int}/fields/{field_name:str}")
    async def save_field(self, request: HTMXRequest, customer_id: RecordId, field_name: FromPath[str]) -> Response[Any]:
        return await self._save_field(request, customer_id, field_name)

    @post("/{customer_id:int}/fields/{field_name:str}")
    async def save_field_form(
        self, request: HTMXRequest, customer_id: RecordId, field_name: FromPath[str]
    ) -> Response[Any]:
        """The same save for a browser without JavaScript, which can only POST."""
        return await self._save_field(request, customer_id, field_name)

    async def _save_field(
        self, request: HTMXRequest, customer_id: RecordId, field_name: FromPath[str]
    ) -> Response[Any]:
        _spec_or_404(field_name)
        user = user_of(request)
        raw = (await form_data(request)).get("value", "")
        try:
            await service.update_field(user, customer_id, field_name, raw)
            customer = await service.get_customer(user, customer_id)
        except FormErrors as error:
            customer = await service.get_customer(user, customer_id)
            context = await _field_context(customer, field_name)
            template = "customers/_field_edit.html" if request.htmx else "customers/edit_field.html"
            return render(template, status_code=422, **context, value=raw, error=error.errors[field_name])
        if not request.htmx:
            return see_other(f"/customers/{customer_id}")
        context = await _field_context(customer, field_name)
        if field_name == "province":
            # The city may have been cleared with the province: refresh it out of band.
            context["also_city"] = await _field_context(customer, "city")
        return render("customers/_field.html", **context)

    # -- actions --------------------------------------------------------------------------------------------

    @post("/{customer_id:int}/convert")
    async def convert(self, request: HTMXRequest, customer_id: RecordId) -> Response[Any]:
        await service.convert_to_member(user_of(request), customer_id)
        return see_other(f"/customers/{customer_id}")

    @post("/{customer_id:int}/owner")
    async def reassign(self, request: HTMXRequest, customer_id: RecordId) -> Response[Any]:
        user = user_of(request)
        raw = (await form_data(request)).get("owner", "").strip()
        owner_id = None if raw in ("", "pool") else (int(raw) if raw.isdigit() and len(raw) < 10 else -1)
        try:
            await service.set_owner(user, customer_id, owner_id)
        except FormErrors as error:
            return render("_notice.html", status_code=422, message=error.errors["owner"], level="error")
        return see_other(f"/customers/{customer_id}")

    @post("/{customer_id:int}/claim")
    async def claim(self, request: HTMXRequest, customer_id: RecordId) -> Response[Any]:
        """Staff take a customer from the public pool."""
        user = user_of(request)
        await service.set_owner(user, customer_id, user.account_id)
        return see_other(f"/customers/{customer_id}")

    @get("/{customer_id:int}/delete")
    async def confirm_delete(self, request: HTMXRequest, customer_id: RecordId) -> Template:
        """The confirmation page a browser without JavaScript sees (htmx asks with hx-confirm instead)."""
        customer = await service.get_customer(user_of(request), customer_id)
        return render("customers/confirm_delete.html", customer=customer, active_nav="customers")

    @post("/{customer_id:int}/delete")
    async def delete(self, request: HTMXRequest, customer_id: RecordId) -> Response[Any]:
        await service.soft_delete(user_of(request), customer_id)
        return go_to(request, "/customers")

    @get("/deleted")
    async def trash(self, request: HTMXRequest) -> Template:
        if not user_of(request).is_admin:
            raise PermissionDeniedException()
        return render("customers/deleted.html", customers=await service.deleted_customers(), active_nav="customers")

    @post("/{customer_id:int}/restore")
    async def restore(self, request: HTMXRequest, customer_id: RecordId) -> Response[Any]:
        await service.restore(user_of(request), customer_id)
        return see_other(f"/customers/{customer_id}")

    # -- contacts -------------------------------------------------------------------------------------------

    async def _contacts_section(
        self,
        request: HTMXRequest,
        customer_id: RecordId,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        customer = await service.get_customer(user_of(request), customer_id)
        return render(
            "customers/_contacts.html",
            status_code=status_code,
            customer=customer,
            contacts=await service.contacts_of(customer_id),
            contact_form=form or {},
            contact_errors=errors or {},
        )

    @post("/{customer_id:int}/contacts")
    async def add_contact(self, request: HTMXRequest, customer_id: RecordId) -> Response[Any]:
        form = await form_data(request)
        try:
            await service.add_contact(user_of(request), customer_id, form)
        except FormErrors as error:
            return await self._contacts_section(request, customer_id, form, error.errors, 422)
        if not request.htmx:
            return see_other(f"/customers/{customer_id}#contacts")
        return await self._contacts_section(request, customer_id)

    @get("/{customer_id:int}/contacts/{contact_id:int}")
    async def show_contact(self, request: HTMXRequest, customer_id: RecordId, contact_id: RecordId) -> Template:
        contact = await service.get_contact(user_of(request), customer_id, contact_id)
        return render("customers/_contact_row.html", customer={"id": customer_id}, contact=contact)

    @get("/{customer_id:int}/contacts/{contact_id:int}/edit")
    async def edit_contact(self, request: HTMXRequest, customer_id: RecordId, contact_id: RecordId) -> Template:
        contact = await service.get_contact(user_of(request), customer_id, contact_id)
        form = {**contact, "mobile": contact["mobile_display"]}
        template = "customers/_contact_row_edit.html" if request.htmx else "customers/edit_row.html"
        return render(
            template,
            fragment="customers/_contact_row_edit.html",
            customer={"id": customer_id},
            contact=contact,
            form=form,
            errors={},
        )

    @put("/{customer_id:int}/contacts/{contact_id:int}")
    async def save_contact(self, request: HTMXRequest, customer_id: RecordId, contact_id: RecordId) -> Response[Any]:
        return await self._save_contact(request, customer_id, contact_id)

    @post("/{customer_id:int}/contacts/{contact_id:int}")
    async def save_contact_form(
        self, request: HTMXRequest, customer_id: RecordId, contact_id: RecordId
    ) -> Response[Any]:
        return await self._save_contact(request, customer_id, contact_id)

    async def _save_contact(self, request: HTMXRequest, customer_id: RecordId, contact_id: RecordId) -> Response[Any]:
        user = user_of(request)
        form = await form_data(request)
        try:
            await service.update_contact(user, customer_id, contact_id, form)
            contact = await service.get_contact(user, customer_id, contact_id)
        except FormErrors as error:
            contact = await service.get_contact(user, customer_id, contact_id)
            template = "customers/_contact_row_edit.html" if request.htmx else "customers/edit_row.html"
            return render(
                template,
                status_code=422,
                fragment="customers/_contact_row_edit.html",
                customer={"id": customer_id},
                contact=contact,
                form=form,
                errors=error.errors,
            )
        if not request.htmx:
            return see_other(f"/customers/{customer_id}#contacts")
        return render("customers/_contact_row.html", customer={"id": customer_id}, contact=contact)

    @post("/{customer_id:int}/contacts/{contact_id:int}/delete")
    async def delete_contact(self, request: HTMXRequest, customer_id: RecordId, contact_id: RecordId) -> Response[Any]:
        await service.delete_contact(user_of(request), customer_id, contact_id)
        if not request.htmx:
            return see_other(f"/customers/{customer_id}#contacts")
        return await self._contacts_section(request, customer_id)

    # -- projects -------------------------------------------------------------------------------------------

    async def _projects_section(
        self,
        request: HTMXRequest,
        customer_id: RecordId,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        customer = await service.get_customer(user_of(request), customer_id)
        return render(
            "customers/_projects.html",
            status_code=status_code,
            customer=customer,
            projects=await service.projects_of(customer_id),
            project_statuses=list(ProjectStatus),
            project_form=form or {},
            project_errors=errors or {},
        )

    @post("/{customer_id:int}/projects")
    async def add_project(self, request: HTMXRequest, customer_id: RecordId) -> Response[Any]:
        form = await form_data(request)
        try:
            await service.add_project(user_of(request), customer_id, form)
        except FormErrors as error:
            return await self._projects_section(request, customer_id, form, error.errors, 422)
        if not request.htmx:
            return see_other(f"/customers/{customer_id}#projects")
        return await self._projects_section(request, customer_id)

    @get("/{customer_id:int}/projects/{project_id:int}")
    async def show_project(self, request: HTMXRequest, customer_id: RecordId, project_id: RecordId) -> Template:
        project = await service.get_project(user_of(request), customer_id, project_id)
        return render("customers/_project_row.html", customer={"id": customer_id}, project=project)

    @get("/{customer_id:int}/projects/{project_id:int}/edit")
    async def edit_project(self, request: HTMXRequest, customer_id: RecordId, project_id: RecordId) -> Template:
        project = await service.get_project(user_of(request), customer_id, project_id)
        template = "customers/_project_row_edit.html" if request.htmx else "customers/edit_row.html"
        return render(
            template,
            fragment="customers/_project_row_edit.html",
            customer={"id": customer_id},
            project=project,
            form=service.project_form_values(project),
            errors={},
            project_statuses=list(ProjectStatus),
        )

    @put("/{customer_id:int}/projects/{project_id:int}")
    async def save_project(self, request: HTMXRequest, customer_id: RecordId, project_id: RecordId) -> Response[Any]:
        return await self._save_project(request, customer_id, project_id)

    @post("/{customer_id:int}/projects/{project_id:int}")
    async def save_project_form(
        self, request: HTMXRequest, customer_id: RecordId, project_id: RecordId
    ) -> Response[Any]:
        return await self._save_project(request, customer_id, project_id)

    async def _save_project(self, request: HTMXRequest, customer_id: RecordId, project_id: RecordId) -> Response[Any]:
        user = user_of(request)
        form = await form_data(request)
        try:
            await service.update_project(user, customer_id, project_id, form)
            project = await service.get_project(user, customer_id, project_id)
        except FormErrors as error:
            project = await service.get_project(user, customer_id, project_id)
            template = "customers/_project_row_edit.html" if request.htmx else "customers/edit_row.html"
            return render(
                template,
                status_code=422,
                fragment="customers/_project_row_edit.html",
                customer={"id": customer_id},
                project=project,
                form=form,
                errors=error.errors,
                project_statuses=list(ProjectStatus),
            )
        if not request.htmx:
            return see_other(f"/customers/{customer_id}#projects")
        return render("customers/_project_row.html", customer={"id": customer_id}, project=project)

    @post("/{customer_id:int}/projects/{project_id:int}/delete")
    async def delete_project(self, request: HTMXRequest, customer_id: RecordId, project_id: RecordId) -> Response[Any]:
        await service.delete_project(user_of(request), customer_id, project_id)
        if not request.htmx:
            return see_other(f"/customers/{customer_id}#projects")
        return await self._projects_section(request, customer_id)
