"""Settings: read from `TANGRAM_*` environment variables, overridden by CLI options."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process settings. Build one with `Settings()` (environment) or keyword overrides."""

    model_config = SettingsConfigDict(env_prefix="TANGRAM_", frozen=True, extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Files and the embedded database")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file under data_dir"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None,
        description="Address people reach the server at, for links in e-mails "
        "(default: http://host:port)",
    )
    max_upload_bytes: int = 50 * 1024 * 1024
    # sign-in (engine/identity): sessions, cookies, throttling and argon2 cost
    session_idle_seconds: int = Field(default=2 * 3600, description="Session ends when idle")
    session_max_seconds: int = Field(default=12 * 3600, description="Session ends regardless")
    cookie_secure: bool = Field(default=True, description="False only for http:// development")
    login_window_seconds: int = 15 * 60
    login_max_failures_per_user: int = 5
    login_max_failures_per_client: int = 20
    password_time_cost: int = 3
    password_memory_kib: int = 64 * 1024
    # jobs and outbox (engine/jobs, engine/outbox): worker leases, retries, SMTP, webhooks
    worker_lease_seconds: int = Field(default=60, description="A killed worker's jobs wait this")
    worker_poll_seconds: float = Field(default=1.0, description="Idle wait between queue polls")
    worker_batch_size: int = Field(default=50, description="Jobs claimed per round trip")
    job_retry_base_seconds: float = Field(default=5.0, description="First retry delay; doubles")
    job_retry_max_seconds: float = Field(default=3600.0, description="Longest retry delay")
    # retention (engine/jobs/retention.py): a queued job purges rows older than these
    job_retention_days: float = Field(default=30, description="Done/cancelled jobs kept")
    delivery_retention_days: float = Field(default=30, description="Successful deliveries kept")
    notification_retention_days: float = Field(default=90, description="Read notifications kept")
    retention_interval_seconds: float = Field(default=3600, description="Between purge runs")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "tangram@localhost"
    smtp_timeout_seconds: float = 10.0
    webhook_timeout_seconds: float = Field(default=5.0, description="Per delivery attempt")

    def resolved_database_url(self) -> str:
        """The database URL in force: the explicit one, or `sqlite:///<data_dir>/tangram.db`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tangram.db').resolve()}"

    def resolved_public_url(self) -> str:
        """The absolute address links in e-mails start with (no trailing slash)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def secret(self, name: str) -> str | None:
        """The secret `name` from the environment variable `TANGRAM_SECRET_<NAME>`, if set."""
        return os.environ.get(f"TANGRAM_SECRET_{name.upper()}") or None


__all__ = ["Settings"]
