"""The `kehu` command: migrate, create accounts, generate demo data, serve, and keep search in step."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys

from rich.console import Console

console = Console()


async def migrate() -> None:
    """Bring the database schema up to date and seed the option lists. Safe to run again."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from app import db
    from app.options.service import seed_defaults

    await db.prepare()
    result = await run_forwards(app_name="all")
    if not result.success:
        raise SystemExit(f"migration failed: {result.message}")
    added = await seed_defaults()
    if added:
        console.print(f"seeded {added} option list entries")
    await db.analyze()
    await db.close()


async def createuser(username: str, password: str | None, name: str, role: str) -> None:
    from app.accounts.service import AccountError, create_account
    from app.accounts.tables import Role

    shown = password is None
    password = password or secrets.token_urlsafe(12)
    try:
        await create_account(username=username, password=password, name=name or username, role=Role(role))
    except AccountError as error:
        raise SystemExit(f"{error.field}: {error.message}") from error
    console.print(f"created {role} [bold]{username}[/bold]")
    if shown:
        console.print(f"password: [bold]{password}[/bold]  (shown once; change it after logging in)")


async def bootstrap(customers: int) -> None:
    """What `make run` needs on a fresh database: the schema, a first admin, and demo customers when empty."""
    from app.accounts.tables import Account
    from app.customers.tables import Customer
    from app.demo import generate

    await migrate()
    if not await Account.exists():
        await createuser("admin", None, "系统管理员", "admin")
    if not await Customer.exists():
        await generate(customers=customers, console=console)


async def worker() -> None:
    """The `worker` process: drain the search outbox, keep the value tiers recomputed, scan for duplicates and
    run the spreadsheet imports (resuming one a stopped worker left), until stopped."""
    import logging

    from app import db
    from app.analysis.tiers import run_schedule
    from app.duplicates.service import run_schedule as run_duplicate_scans
    from app.imports.service import run_worker as run_imports
    from search.sync import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    await db.prepare()
    console.print("worker started: search outbox, value tiers, duplicate scan and imports")
    try:
        await asyncio.gather(run_worker(), run_schedule(), run_duplicate_scans(), run_imports())
    finally:
        await db.close()


async def recompute_tiers() -> None:
    from app import db
    from app.analysis.tiers import recompute_tiers as recompute

    await db.prepare()
    try:
        result = await recompute()
    finally:
        await db.close()
    console.print(
        f"value tiers: A {result.a:,}, B {result.b:,}, C {result.c:,}, untiered {result.untiered:,}, "
        f"set by hand {result.pinned:,}; {result.changed:,} customers changed"
    )


async def find_duplicates() -> None:
    from app import db
    from app.duplicates.finder import scan

    await db.prepare()
    try:
        result = await scan()
    finally:
        await db.close()
    console.print(
        f"duplicates: {result.customers:,} customers scanned, {result.pairs:,} possible duplicates "
        f"in {result.seconds:.1f} s"
    )


async def reindex() -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from app import db
    from app.config import get_settings
    from search import engine
    from search.sync import reindex as rebuild

    await db.prepare()
    try:
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as progress:
            task = progress.add_task("indexing", total=None)
            counts = await rebuild(lambda done, total: progress.update(task, completed=done, total=total))
    except engine.Unavailable as error:
        raise SystemExit(f"Meilisearch is not reachable at {get_settings().meili_url}: {error}") from error
    finally:
        await db.close()
    console.print("indexed: " + ", ".join(f"{name} {count:,}" for name, count in counts.items()))


async def search_status() -> None:
    from rich.table import Table

    from app import db
    from search.sync import status

    await db.prepare()
    try:
        report = await status()
    finally:
        await db.close()
    console.print(f"Meilisearch: {'reachable' if report.available else 'UNREACHABLE ' + report.error}")
    console.print(
        f"outbox: {report.outbox_depth:,} pending"
        + (f", oldest from {report.oldest_pending:%Y-%m-%d %H:%M:%S} UTC" if report.oldest_pending else "")
    )
    if report.last_error:
        console.print(f"last error: {report.last_error}")
    table = Table("index", "documents", "database", "")
    for name, expected in report.database_counts.items():
        found = report.index_counts.get(name)
        table.add_row(
            name, "—" if found is None else f"{found:,}", f"{expected:,}", "ok" if found == expected else "behind"
        )
    console.print(table)
    if not report.in_step:
        raise SystemExit(1)


async def import_file(path: str, origin: str, channel: str, owner: str, policy: str, template: str, actor: str) -> None:
    """`kehu import FILE`: the same import as the web page's, run here with a progress bar."""
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from app import db
    from app.accounts.service import load_user
    from app.accounts.tables import Account, Role
    from app.customers.service import FormErrors
    from app.imports import reader
    from app.imports import service as imports
    from app.options.tables import OptionItem

    await db.prepare()
    try:
        query = Account.select(Account.user).where(Account.user.active.eq(True))
        account = await (
            query.where(Account.user.username == actor) if actor else query.where(Account.role == Role.admin)
        ).first()
        user = await load_user(account["user"]) if account else None
        if user is None:
            raise SystemExit(f"no active account {actor!r}" if actor else "no active admin: pass --as USERNAME")
        content = await asyncio.to_thread(Path(path).read_bytes)
        try:
            batch_id = await imports.upload(user, Path(path).name, content)
        except reader.FileRejected as error:
            raise SystemExit(f"{path}: {error}") from None
        batch = await imports.get_batch(user, batch_id)
        mapping = batch["mapping"]
        if template:
            saved = await imports.template_by_name(template)
            if saved is None:
                raise SystemExit(f"no template named {template!r}")
            mapping = imports.mapping_from_template(batch["headers"], saved)
        form = {f"column-{index}": name for index, name in enumerate(mapping)}
        form.update(origin=origin, policy=policy)
        if channel:
            found = (
                await OptionItem.select(OptionItem.id)
                .where(
                    OptionItem.kind == "source_channel",
                    (OptionItem.label == channel) | (OptionItem.label_en == channel),
                )
                .first()
            )
            if found is None:
                raise SystemExit(f"no source channel {channel!r}")
            form["source_channel"] = str(found["id"])
        if owner == "pool":
            form["owner"] = "pool"
        elif owner:
            found = await Account.select(Account.id).where(Account.user.username == owner).first()
            if found is None:
                raise SystemExit(f"no account {owner!r}")
            form["owner"] = str(found["id"])
        for header, name in zip(batch["headers"], mapping, strict=True):
            console.print(f"  {header} → {name or '(not imported)'}")
        try:
            await imports.start(user, batch_id, form, in_process=True)
        except FormErrors as error:
            raise SystemExit("; ".join(f"{key}: {message}" for key, message in error.errors.items())) from None
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as progress:
            task = progress.add_task("importing", total=None)
            await imports.run_batch(
                batch_id, progress=lambda done, total: progress.update(task, completed=done, total=total)
            )
        batch = await imports.get_batch(user, batch_id)
        console.print(
            f"import {batch_id} {batch['status']}: {batch['created_count']:,} created, {batch['updated_count']:,} "
            f"updated, {batch['skipped_count']:,} skipped, {batch['invalid_count']:,} refused"
        )
        if batch["message"]:
            console.print(batch["message"])
        for issue in await imports.issues_of(batch_id, limit=20):
            console.print(f"  row {issue['row_number']} {issue['column']}: {issue['reason']}")
        if batch["status"] != "done":
            raise SystemExit(1)
    finally:
        await db.close()


def serve(host: str, port: int, workers: int, reload: bool) -> None:
    import uvicorn

    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=False,
        log_level="info",
        # A line per request is off by default: the chat widgets' polls alone would write hundreds a second.
        access_log=os.environ.get("KEHU_ACCESS_LOG", "") == "1",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kehu", description="Kehu (客户) CRM")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="create or upgrade the database schema")

    create = commands.add_parser("createuser", help="create a login")
    create.add_argument("username")
    create.add_argument("--role", choices=["staff", "supervisor", "admin"], default="staff")
    create.add_argument("--name", default="", help="display name, e.g. 王芳")
    create.add_argument(
        "--password", default=os.environ.get("KEHU_PASSWORD"), help="default: $KEHU_PASSWORD, else generated"
    )

    demo = commands.add_parser("demo", help="generate realistic Chinese demo data")
    demo.add_argument("--customers", type=int, default=300)
    demo.add_argument("--followups-per-customer", type=float, default=None)
    demo.add_argument("--seed", type=int, default=None)

    boot = commands.add_parser("bootstrap", help="migrate; first admin and demo data when the database is empty")
    boot.add_argument("--customers", type=int, default=300)

    run = commands.add_parser("serve", help="serve the web application")
    run.add_argument("--host", default=os.environ.get("KEHU_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("KEHU_PORT", "8000")))
    run.add_argument("--workers", type=int, default=int(os.environ.get("KEHU_WORKERS", "1")))
    run.add_argument("--reload", action="store_true")

    commands.add_parser(
        "worker", help="keep the search index in step and the value tiers recomputed (the Procfile's worker)"
    )
    commands.add_parser("recompute-tiers", help="recompute every customer's value tier and RFM segment now")
    commands.add_parser("find-duplicates", help="scan every customer for possible duplicates now")
    commands.add_parser("reindex", help="rebuild the search indexes from the database and swap them in")
    commands.add_parser("search-status", help="outbox depth, last error, and index vs database counts")

    bring = commands.add_parser("import", help="import customers from an XLSX or CSV file (progress bar)")
    bring.add_argument("file")
    bring.add_argument("--origin", choices=["external", "own"], default="external")
    bring.add_argument("--channel", default="", help="source channel for rows without one, e.g. 展会")
    bring.add_argument("--owner", default="", help="USERNAME of the owner, or 'pool'; default: the importer")
    bring.add_argument("--policy", choices=["skip", "update", "create"], default="skip", help="for duplicates")
    bring.add_argument("--template", default="", help="a saved column template's name")
    bring.add_argument("--as", dest="actor", default="", help="USERNAME importing (default: the first admin)")

    args = parser.parse_args(argv)
    if args.command == "migrate":
        asyncio.run(migrate())
    elif args.command == "createuser":
        asyncio.run(createuser(args.username, args.password, args.name, args.role))
    elif args.command == "demo":
        from app.demo import generate

        asyncio.run(
            generate(
                customers=args.customers,
                followups_per_customer=args.followups_per_customer,
                seed=args.seed,
                console=console,
            )
        )
    elif args.command == "bootstrap":
        asyncio.run(bootstrap(args.customers))
    elif args.command == "worker":
        asyncio.run(worker())
    elif args.command == "recompute-tiers":
        asyncio.run(recompute_tiers())
    elif args.command == "find-duplicates":
        asyncio.run(find_duplicates())
    elif args.command == "reindex":
        asyncio.run(reindex())
    elif args.command == "search-status":
        asyncio.run(search_status())
    elif args.command == "import":
        asyncio.run(
            import_file(args.file, args.origin, args.channel, args.owner, args.policy, args.template, args.actor)
        )
    elif args.command == "serve":
        serve(args.host, args.port, args.workers, args.reload)


if __name__ == "__main__":
    main(sys.argv[1:])
