"""Settings read from the environment, with defaults that work on a fresh machine."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("KEHU_VAR_DIR", ROOT / "var"))


def _secret_key() -> str:
    """The signing key for sessions and CSRF: from the environment, else one generated once into var/."""
    if key := os.environ.get("KEHU_SECRET_KEY"):
        return key
    path = VAR / "secret_key"
    if not path.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=lambda: os.environ.get("DATABASE_URL", ""))
    meili_url: str = field(default_factory=lambda: os.environ.get("MEILI_URL", "http://127.0.0.1:7700"))
    meili_master_key: str = field(default_factory=lambda: os.environ.get("MEILI_MASTER_KEY", ""))
    secret_key: str = field(default_factory=_secret_key)
    chat_origins: list[str] = field(default_factory=lambda: _csv(os.environ.get("KEHU_CHAT_ORIGINS", "")))
    language: str = field(default_factory=lambda: os.environ.get("KEHU_LANGUAGE", "zh-CN"))
    # Served over plain HTTP on an intranet by default; set to 1 behind TLS so cookies are Secure.
    secure_cookies: bool = field(default_factory=lambda: os.environ.get("KEHU_SECURE_COOKIES", "") == "1")
    # A customer with no follow-up or project for this many days counts as inactive (不积极).
    active_days: int = field(default_factory=lambda: int(os.environ.get("KEHU_ACTIVE_DAYS", "90")))
    login_attempts_per_minute: int = field(
        default_factory=lambda: int(os.environ.get("KEHU_LOGIN_ATTEMPTS_PER_MINUTE", "10"))
    )
    # Website chat limits, per visitor token and per IP address (a 429 beyond them).
    chat_starts_per_token_hour: int = field(default_factory=lambda: _int("KEHU_CHAT_STARTS_PER_TOKEN_HOUR", 5))
    chat_starts_per_ip_hour: int = field(default_factory=lambda: _int("KEHU_CHAT_STARTS_PER_IP_HOUR", 30))
    chat_messages_per_minute: int = field(default_factory=lambda: _int("KEHU_CHAT_MESSAGES_PER_MINUTE", 20))
    chat_requests_per_minute: int = field(default_factory=lambda: _int("KEHU_CHAT_REQUESTS_PER_MINUTE", 120))
    chat_requests_per_ip_minute: int = field(default_factory=lambda: _int("KEHU_CHAT_REQUESTS_PER_IP_MINUTE", 1200))
    # A PostgreSQL connection pool per process. Off only where one process runs the app on several event loops.
    database_pool: bool = field(default_factory=lambda: os.environ.get("KEHU_DATABASE_POOL", "1") != "0")
    debug: bool = field(default_factory=lambda: os.environ.get("KEHU_DEBUG", "") == "1")

    @property
    def sqlite_path(self) -> Path:
        return VAR / "kehu.sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
