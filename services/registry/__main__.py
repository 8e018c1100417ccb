"""Command line of the registry: serve, migrate, asyncapi, import-regions."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from services.registry.app import asyncapi
from services.registry.settings import RegistrySettings
from shared.cli import run_cli


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
                report = await import_regions(session, rows, list_version=list_version, full=full,
                                              clock=settings.clock)
    finally:
        await engine.dispose()
    console.print(report.model_dump_json(indent=2))


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path)
    parser.add_argument("--list-version", default="kepmendagri-300.2.2-2138-2025")
    parser.add_argument("--full", action="store_true", help="retire regions the list no longer holds")


def _import(args: argparse.Namespace, settings: RegistrySettings) -> None:
    text = args.path.read_text(encoding="utf-8-sig")
    asyncio.run(_import_regions(settings, text, args.list_version, args.full))


if __name__ == "__main__":
    run_cli(service="registry", service_dir=Path(__file__).parent, settings_factory=RegistrySettings,
            asyncapi=asyncapi, extra={"import-regions": ("import an official region list (CSV kode,nama)",
                                                         _import_arguments, _import)})
