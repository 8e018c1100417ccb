"""The command line every service has: `python -m services.<name> serve | migrate | asyncapi | ...`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from shared.migrate import upgrade
from shared.observability import MULTIPROCESS_DIR_ENV
from shared.retention import run_retention
from shared.settings import ServiceSettings
from shared.tables import PLATFORM_TABLES

#: Extra commands of a service: name -> (help, add its arguments, run it with the parsed args and settings).
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace, Any], None]]


def server_options(service: str, settings: ServiceSettings) -> dict[str, Any]:
    """How `serve` runs uvicorn: on HOST (loopback by default) and PORT, with WEB_CONCURRENCY worker processes."""
    return {"app": f"services.{service}.app:create_app", "factory": True, "host": settings.host,
            "port": settings.port or 8000, "log_config": None, "access_log": False, "timeout_graceful_shutdown": 20,
            "workers": settings.web_concurrency}


@contextlib.contextmanager
def worker_metrics(service: str, settings: ServiceSettings) -> Iterator[None]:
    """Several workers share one metrics directory (fresh for this server, so no earlier run's figures count, and
    removed when it stops): the workers are spawned inside this and read it from their environment."""
    if settings.web_concurrency <= 1:
        yield
        return
    with tempfile.TemporaryDirectory(prefix=f"posyandu-{service}-metrics-") as directory:
        os.environ[MULTIPROCESS_DIR_ENV] = directory
        yield


def run_cli(*, service: str, service_dir: Path, settings_factory: Callable[[], ServiceSettings],
            asyncapi: Callable[[], dict[str, Any]], extra: dict[str, Command] | None = None,
            platform_tables: tuple[str, ...] = PLATFORM_TABLES) -> None:
    """`platform_tables`: those the service's database has (shared/tables.py), which `retention` cleans."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service (and its outbox relay and consumers)")
    commands.add_parser("migrate", help="apply the database migrations, then exit")
    commands.add_parser("asyncapi", help="print the AsyncAPI document of the service's events")
    retention = commands.add_parser("retention", help="the clean-up of expired outbox, inbox, idempotency and audit "
                                                      "rows (shared/retention.py)")
    retention_action = retention.add_subparsers(dest="action", required=True)
    retention_run = retention_action.add_parser("run", help="one clean-up now (skipped while another replica's runs); "
                                                            "prints what it deleted as JSON")
    retention_run.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    for name, (help_text, add_arguments, _) in (extra or {}).items():
        add_arguments(commands.add_parser(name, help=help_text))
    args = parser.parse_args()
    settings = settings_factory()
    if args.command == "serve":
        with worker_metrics(service, settings):
            uvicorn.run(**server_options(service, settings))
    elif args.command == "migrate":
        upgrade(service_dir, settings.database_url)
    elif args.command == "asyncapi":
        print(json.dumps(asyncapi(), indent=2, sort_keys=True))
    elif args.command == "retention":
        report = asyncio.run(run_retention(settings, service, platform_tables, dry_run=args.dry_run))
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        (extra or {})[args.command][2](args, settings)
