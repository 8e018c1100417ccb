"""Command line of the registry: serve, migrate, import-regions, load-demo."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import uvicorn

from services.registry.settings import RegistrySettings
from shared.migrate import upgrade

SERVICE_DIR = Path(__file__).parent


async def _import_regions(settings: RegistrySettings, text: str, list_version: str, full: bool) -> None:
    from rich.console import Console

    from services.registry.regions.importer import MAX_ERRORS_REPORTED, import_regions, parse_csv
    from shared.db import create_engine, create_sessionmaker

    console = Console()
    with console.status("checking the list"):
        rows, errors = parse_csv(text)
    if errors:
        for error in errors[:MAX_ERRORS_REPORTED]:
            console.print(f"[red]{error['field']}[/red]: {error['message']}")
        raise SystemExit(f"{len(errors)} invalid rows; nothing imported")
    engine = create_engine(settings)
    try:
        with console.status(f"importing {len(rows)} regions"):
            async with create_sessionmaker(engine)() as session, session.begin():
                report = await import_regions(session, rows, list_version=list_version, full=full)
    finally:
        await engine.dispose()
    console.print(report.model_dump_json(indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.registry")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service")
    commands.add_parser("migrate", help="apply the database migrations")
    importing = commands.add_parser("import-regions", help="import an official region list (CSV kode,nama)")
    importing.add_argument("path", type=Path)
    importing.add_argument("--list-version", default="kepmendagri-300.2.2-2138-2025")
    importing.add_argument("--full", action="store_true", help="retire regions the list no longer holds")
    commands.add_parser("asyncapi", help="print the AsyncAPI document of the registry's events")
    args = parser.parse_args()
    settings = RegistrySettings()
    if args.command == "serve":
        uvicorn.run("services.registry.app:create_app", factory=True, host="0.0.0.0", port=settings.port or 8001,
                    log_config=None, access_log=False, timeout_graceful_shutdown=20)
    elif args.command == "migrate":
        upgrade(SERVICE_DIR, settings.database_url)
    elif args.command == "asyncapi":
        from services.registry.app import asyncapi

        print(json.dumps(asyncapi(), indent=2, sort_keys=True))
    elif args.command == "import-regions":
        asyncio.run(_import_regions(settings, args.path.read_text(encoding="utf-8-sig"), args.list_version, args.full))


if __name__ == "__main__":
    main()
