"""`python -m services.household import-households FILE`: the bulk import from a file, with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from services.household.imports.parsing import Format, read_items
from services.household.imports.schemas import ImportReport
from services.household.settings import HouseholdSettings
from shared.auth import Principal, Role
from shared.errors import Problem

CHUNK_BYTES = 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="NDJSON or CSV, one member per row, rows of one KK adjacent")
    parser.add_argument("--format", choices=["csv", "ndjson"], help="default: from the file's suffix")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--as-admin", action="store_true", help="import at any posyandu")
    who.add_argument("--as-kader", metavar="POSYANDU_ID", type=uuid.UUID, action="append",
                     help="import as the kader of this posyandu (repeatable)")


def _format(path: Path, chosen: str | None) -> Format:
    if chosen == "csv" or (chosen is None and path.suffix.lower() == ".csv"):
        return "csv"
    if chosen == "ndjson" or path.suffix.lower() in (".ndjson", ".jsonl"):
        return "ndjson"
    raise SystemExit(f"Cannot tell the format of {path.name}; pass --format csv or --format ndjson.")


async def _chunks(path: Path, advance: Callable[[int], None]) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            advance(len(chunk))
            yield chunk


async def run_import(settings: HouseholdSettings, path: Path, fmt: Format, principal: Principal, *,
                     size: int) -> ImportReport:
    """Imports the file in one transaction against the service's database, as the API would."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    from services.household.imports.service import import_households
    from shared.db import create_engine, create_sessionmaker

    engine = create_engine(settings)
    try:
        with Progress(TextColumn("[bold]importing"), BarColumn(), DownloadColumn(),
                      TextColumn("{task.fields[rows]} rows, {task.fields[households]} households"),
                      TimeElapsedColumn()) as progress:
            task = progress.add_task("import", total=size, rows=0, households=0)

            def on_progress(report: ImportReport) -> None:
                progress.update(task, rows=report.rows, households=report.households_imported)

            async with create_sessionmaker(engine)() as session, session.begin():
                return await import_households(
                    session=session, principal=principal, on_progress=on_progress,
                    items=read_items(_chunks(path, lambda n: progress.advance(task, n)), fmt))
    finally:
        await engine.dispose()


def run(args: argparse.Namespace, settings: HouseholdSettings) -> None:
    from rich.console import Console

    console = Console()
    sub = f"cli:{getpass.getuser()}"
    principal = (Principal(sub=sub, role=Role.ADMIN) if args.as_admin
                 else Principal(sub=sub, role=Role.KADER, posyandu_ids=frozenset(args.as_kader)))
    try:
        report = asyncio.run(run_import(settings, args.path, _format(args.path, args.format), principal,
                                        size=args.path.stat().st_size))
    except Problem as exc:
        for problem in exc.errors or []:
            console.print(f"[red]{problem.get('field')}[/red]: {problem.get('message')}")
        raise SystemExit(f"{exc.detail}") from None
    for error in report.errors:
        console.print(f"row {error.row} [red]{error.field or '-'}[/red]: {error.message}")
    if report.error_count > len(report.errors):
        console.print(f"... and {report.error_count - len(report.errors)} more errors")
    console.print(report.model_dump_json(indent=2, exclude={"errors"}))


COMMAND = ("import households from an NDJSON or CSV file (one member per row)", add_arguments, run)
