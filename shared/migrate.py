"""Run a service's Alembic migrations from code (the CLI, the local stack and the tests use this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config


def alembic_config(service_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(service_dir / "migrations"))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = database_url
    return config


def upgrade(service_dir: Path, database_url: str, revision: str = "head") -> None:
    """Migrate to `revision`. Blocking: from async code call it with asyncio.to_thread."""
    command.upgrade(alembic_config(service_dir, database_url), revision)
