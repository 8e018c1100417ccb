"""`python -m services.household import-households FILE`: the bulk import from a file, with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import time
import uuid
from pathlib import Path

from services.household.imports.parsing import Format
from services.household.imports.schemas import ImportReport
from services.household.settings import HouseholdSettings
from shared.auth import Principal, Role
from shared.errors import Problem


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


async def run_import(settings: HouseholdSettings, path: Path, fmt: Format, principal: Principal) -> ImportReport:
    """Imports the file as its job against the service's database, as the API would: chunk by chunk, resuming the
    same file's job where an earlier run stopped."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from services.household.imports.jobs import ImportFile, job_id, run_job
    from shared.db import create_engine, create_sessionmaker

    file = await ImportFile.of(path)
    Console(stderr=True).print(f"import job {job_id(principal, file.sha256)} (sha256 {file.sha256}, "
                               f"{file.lines} lines)")
    engine = create_engine(settings)
    try:
        with Progress(TextColumn("[bold]importing"), BarColumn(), DownloadColumn(),
                      TextColumn("{task.fields[rows]} rows, {task.fields[rate]} rows/s, "
                                 "{task.fields[households]} households, {task.fields[errors]} errors"),
                      TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn()) as progress:
            task = progress.add_task("import", total=file.size, rows=0, rate=0, households=0, errors=0)
            started = time.monotonic()
            first_rows: list[int] = []

            def on_progress(report: ImportReport) -> None:
                first_rows[:] = first_rows or [report.rows]
                rate = (report.rows - first_rows[0]) / max(time.monotonic() - started, 1e-6)
                progress.update(task, rows=report.rows, rate=round(rate), households=report.households_imported,
                                errors=report.error_count)

            return await run_job(create_sessionmaker(engine), principal, file, fmt, on_progress=on_progress,
                                 advance=lambda n: progress.advance(task, n))
    finally:
        await engine.dispose()


def run(args: argparse.Namespace, settings: HouseholdSettings) -> None:
    from rich.console import Console

    console = Console()
    sub = f"cli:{getpass.getuser()}"
    principal = (Principal(sub=sub, role=Role.ADMIN) if args.as_admin
                 else Principal(sub=sub, role=Role.KADER, posyandu_ids=frozenset(args.as_kader)))
    try:
        report = asyncio.run(run_import(settings, args.path, _format(args.path, args.format), principal))
    except Problem as exc:
        for problem in exc.errors or []:
            console.print(f"[red]{problem.get('field')}[/red]: {problem.get('message')}")
        raise SystemExit(f"{exc.detail}") from None
    for error in report.errors:
        console.print(f"row {error.row} [red]{error.field or '-'}[/red]: {error.message}")
    if report.error_count > len(report.errors):
        console.print(f"... and {report.error_count - len(report.errors)} more errors")
    if report.rows_skipped:
        console.print(f"{report.rows_skipped} rows skipped: already processed by job {report.job_id}")
    console.print(report.model_dump_json(indent=2, exclude={"errors", "skipped"}))


COMMAND = ("import households from an NDJSON or CSV file (one member per row)", add_arguments, run)
