"""Piccolo's engine, chosen from DATABASE_URL: PostgreSQL when it says so, else SQLite in var/."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

from app.config import get_settings
from app.db import PooledSQLiteEngine


def _engine() -> PostgresEngine | PooledSQLiteEngine:
    settings = get_settings()
    if settings.is_postgres:
        url = urlparse(settings.database_url)
        return PostgresEngine(
            config={
                "host": url.hostname or "127.0.0.1",
                "port": url.port or 5432,
                "user": unquote(url.username or ""),
                "password": unquote(url.password or ""),
                "database": url.path.lstrip("/"),
            }
        )
    path = settings.sqlite_path
    if settings.database_url.startswith("sqlite:///"):
        path = settings.database_url.removeprefix("sqlite:///")
    else:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    # timeout is sqlite3's busy timeout: wait for a concurrent writer instead of failing at once.
    return PooledSQLiteEngine(path=str(path), timeout=15)


DB = _engine()

APP_REGISTRY = AppRegistry(
    apps=[
        "piccolo.apps.user.piccolo_app",
        "app.accounts.piccolo_app",
        "app.core.piccolo_app",
        "app.options.piccolo_app",
        "app.customers.piccolo_app",
        "app.followups.piccolo_app",
        "app.feedback.piccolo_app",
        "app.chat.piccolo_app",
        "app.analysis.piccolo_app",
        "app.duplicates.piccolo_app",
        "app.imports.piccolo_app",
    ]
)
