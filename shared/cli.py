"""The command line every service has: `python -m services.<name> serve | migrate | asyncapi | ...`."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from shared.migrate import upgrade
from shared.retention import run_retention
from shared.settings import ServiceSettings

#: Extra commands of a service: name -> (help, add its arguments, run it with the parsed args and settings).
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace, Any], None]]


def server_options(service: str, settings: ServiceSettings) -> dict[str, Any]:
    """How `serve` runs uvicorn: on HOST (loopback by default) and PORT."""
    return {"app": f"services.{service}.app:create_app", "factory": True, "host": settings.host,
            "port": settings.port or 8000, "log_config": None, "access_log": False, "timeout_graceful_shutdown": 20}


def run_cli(*, service: str, service_dir: Path, settings_factory: Callable[[], ServiceSettings],
            asyncapi: Callable[[], dict[str, Any]], extra: dict[str, Command] | None = None) -> None:
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
        uvicorn.run(**server_options(service, settings))
    elif args.command == "migrate":
        upgrade(service_dir, settings.database_url)
    elif args.command == "asyncapi":
        print(json.dumps(asyncapi(), indent=2, sort_keys=True))
    elif args.command == "retention":
        report = asyncio.run(run_retention(settings, service, dry_run=args.dry_run))
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        (extra or {})[args.command][2](args, settings)
