"""Import jobs: a file imported chunk by chunk, each chunk committed with the job's progress, resumable.

A job is one file (its sha256) imported by one scope (an admin, or a kader's set of posyandu); its id is derived
from both, so running the same file again is the same job: a `running` (crashed) or `failed` job resumes after its
last committed chunk, a `completed` one imports nothing and says so per row. The file is parsed again from its
start (the parser keeps what it needs to know about earlier rows) and the items of committed chunks are skipped:
the same bytes give the same items, so nothing is imported twice. Each chunk's transaction locks the job row and
checks that no other run committed in between (then this run stops with a 409), so two runs of one job never
both import a chunk. The job row is created with the first chunk: a file refused before any row (an unusable CSV
header, no rows) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services.household.imports.outcomes import ReportBuilder
from services.household.imports.parsing import Format, Group, Item, read_items
from services.household.imports.schemas import MAX_ERRORS, ImportJobPublic, ImportReport, RowErrorPublic
from services.household.imports.service import chunks, import_items
from services.household.imports.tables import ImportJob
from shared.audit import record_read
from shared.auth import Principal, Role
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.text import NUL

#: uuid5 namespace of job ids (uuid5 of "<scope>:<sha256>").
JOB_NAMESPACE = uuid.UUID("5d0c1c1e-7a43-4e0b-9d55-2f6f4a1e1b12")
READ_BYTES = 1024 * 1024


class ImportJobNotFound(NotFound):
    pass


class ImportJobBusy(Conflict):
    title, slug = "Import job running", "import-job-running"


@dataclass(frozen=True)
class ImportFile:
    """A file on disk to import: its name for the job, its sha256 and its line count (read once, in a thread)."""

    path: Path
    name: str
    sha256: str
    lines: int
    size: int

    @classmethod
    async def of(cls, path: Path, name: str | None = None) -> ImportFile:
        def scan() -> tuple[str, int, int]:
            digest, lines, last = hashlib.sha256(), 0, b""
            with path.open("rb") as file:
                while block := file.read(READ_BYTES):
                    digest.update(block)
                    lines += block.count(b"\n")
                    last = block
            if path.stat().st_size and not last.endswith(b"\n"):
                lines += 1
            return digest.hexdigest(), lines, path.stat().st_size

        sha256, lines, size = await asyncio.to_thread(scan)
        return cls(path, (name or path.name)[:255], sha256, lines, size)

    async def blocks(self, advance: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
        with self.path.open("rb") as file:
            while block := await asyncio.to_thread(file.read, READ_BYTES):
                if advance is not None:
                    advance(len(block))
                yield block


def _scope(principal: Principal) -> list[uuid.UUID] | None:
    return None if principal.role is Role.ADMIN else sorted(principal.posyandu_ids)


def job_id(principal: Principal, sha256: str) -> uuid.UUID:
    scope = _scope(principal)
    return uuid.uuid5(JOB_NAMESPACE, f"{'admin' if scope is None else ','.join(map(str, scope))}:{sha256}")


def _readable(principal: Principal) -> Any:
    """The WHERE clause of the jobs the caller may read: an admin's all; a kader's those whose posyandu are all its
    own (`<@`: never an admin's job, whose posyandu_ids is NULL)."""
    if principal.role is Role.ADMIN:
        return sa.true()
    if principal.role is Role.KADER:
        return col(ImportJob.posyandu_ids).op("<@", is_comparison=True)(sorted(principal.posyandu_ids))
    return sa.false()


def _report_of(job: ImportJob) -> ImportReport:
    return ImportReport(rows=job.rows_done, households_imported=job.households_imported,
                        members_imported=job.members_imported, households_rejected=job.households_rejected,
                        rows_rejected=job.rows_rejected, error_count=job.error_count,
                        errors=[RowErrorPublic.model_validate(e) for e in job.errors], job_id=job.id,
                        status=job.status)


def public(job: ImportJob) -> ImportJobPublic:
    seconds = (job.updated_at - job.run_started_at).total_seconds()
    rate = (job.rows_done - job.run_rows_from) / seconds if seconds > 0 else 0.0
    return ImportJobPublic(**{k: v for k, v in job.model_dump().items() if k in ImportJobPublic.model_fields},
                           rows_per_second=round(rate, 1))


async def readable_job(session: AsyncSession, principal: Principal, id: uuid.UUID) -> ImportJob:
    """A job the caller may read; 404 for a missing one and for one they may not see."""
    job = (await session.execute(select(ImportJob).where(col(ImportJob.id) == id, _readable(principal))
                                 .execution_options(populate_existing=True))).scalars().first()
    if job is None:
        raise ImportJobNotFound(f"No import job {id} that you may read.")
    return job


async def read_job(*, session: AsyncSession, principal: Principal, id: uuid.UUID) -> ImportJobPublic:
    """GET /imports/{id}: a job's progress, the read audited (its errors carry KK numbers)."""
    job = await readable_job(session, principal, id)
    await record_read(session, principal, resource_type="import_job", resource_id=str(job.id),
                      purpose="progress of a bulk import", fields=["errors"])
    return public(job)


class _Run:
    """One run of a job: where it resumes, the report so far, and what it skipped."""

    def __init__(self, principal: Principal, file: ImportFile, job: ImportJob | None) -> None:
        self.principal, self.file = principal, file
        self.id = job.id if job else job_id(principal, file.sha256)
        self.exists = job is not None
        self.items_done = job.items_done if job else 0
        self.builder = ReportBuilder(_report_of(job) if job else ImportReport(job_id=self.id, status="running"))
        self.now = datetime.now(UTC)
        #: The errors the job row holds (rewritten only when more were found).
        self.stored_errors = len(self.builder.report.errors)

    def skip(self, item: Item) -> None:
        report = self.builder.report
        numbers = ([(r.number, r.kk_number) for r in item.rows] if isinstance(item, Group)
                   else [(item.errors[0].row, item.errors[0].kk_number)])
        report.rows_skipped += len(numbers)
        for number, kk in numbers:
            if len(report.skipped) < MAX_ERRORS:
                report.skipped.append(RowErrorPublic(row=number, kk_number=kk, field=None, message=(
                    f"Skipped: already processed by import job {self.id} (an earlier run of this file)")))

    async def commit(self, session: AsyncSession, items: list[Item], *, last: bool) -> None:
        """One chunk and the job's progress, in the session's transaction."""
        report = self.builder.report
        if self.exists:
            job = await session.get(ImportJob, self.id, with_for_update=True, populate_existing=True)
            if job is None or job.items_done != self.items_done or job.status == "completed":
                raise ImportJobBusy(f"Import job {self.id} is being run by another process; watch it at "
                                    f"/api/v1/imports/{self.id}.")
        else:
            created = await session.execute(insert(ImportJob).values(
                id=self.id, file_name=self.file.name, sha256=self.file.sha256, posyandu_ids=_scope(self.principal),
                started_by=self.principal.sub, status="running", rows_total=self.file.lines, rows_done=0,
                households_imported=0, members_imported=0, households_rejected=0, rows_rejected=0, error_count=0,
                errors=[], items_done=0, last_row=0, chunks_committed=0, started_at=self.now,
                updated_at=self.now, run_started_at=self.now, run_rows_from=0).on_conflict_do_nothing()
                .returning(ImportJob.id))  # type: ignore[call-overload]
            if created.scalar_one_or_none() is None:
                raise ImportJobBusy(f"Import job {self.id} was started by another process at the same time.")
        for outcome in await import_items(session, self.principal, items):
            self.builder.add(outcome)
        last_row = max((row for item in items for row in _rows_of(item)), default=0)
        now = datetime.now(UTC)
        values = dict(rows_done=report.rows, households_imported=report.households_imported,
                      members_imported=report.members_imported, households_rejected=report.households_rejected,
                      rows_rejected=report.rows_rejected, error_count=report.error_count,
                      items_done=self.items_done + len(items), updated_at=now,
                      chunks_committed=ImportJob.chunks_committed + (1 if items else 0))
        if last_row:
            values["last_row"] = last_row
        if len(report.errors) != self.stored_errors:
            values["errors"] = [_storable(e) for e in report.errors]
        if last:
            values.update(status="completed", finished_at=now, failure=None)
        await session.execute(sa.update(ImportJob).where(ImportJob.id == self.id).values(values))  # type: ignore[arg-type]
        self.exists, self.items_done = True, self.items_done + len(items)
        self.stored_errors = len(report.errors)


def _storable(error: RowErrorPublic) -> dict[str, object]:
    """A row error as jsonb holds it: a NUL (refused in the row, and quoted back in its KK number) cannot be stored."""
    return {k: v.replace(NUL, "\ufffd") if isinstance(v, str) else v for k, v in error.model_dump().items()}


def _rows_of(item: Item) -> list[int]:
    return [r.number for r in item.rows] if isinstance(item, Group) else [e.row for e in item.errors[:1]]


async def run_job(sessionmaker: async_sessionmaker[AsyncSession], principal: Principal, file: ImportFile,
                  fmt: Format, *, on_progress: Callable[[ImportReport], None] | None = None,
                  advance: Callable[[int], None] | None = None) -> ImportReport:
    """Imports the file as its job (new, resumed, or already completed); the whole file's report."""
    async with sessionmaker() as session:
        job = await session.get(ImportJob, job_id(principal, file.sha256))
    run = _Run(principal, file, job)
    items = read_items(file.blocks(advance), fmt)
    if job is not None and job.status == "completed":
        return await _already_completed(run, items)
    if job is not None:
        await _mark_resumed(sessionmaker, job)
    try:
        index = 0
        pending: list[Item] = []
        async for chunk in chunks(items):
            for item in chunk:
                if index < run.items_done:
                    run.skip(item)
                else:
                    pending.append(item)
                index += 1
            if pending:
                async with sessionmaker() as session, session.begin():
                    await run.commit(session, pending, last=False)
                pending = []
                if on_progress is not None:
                    on_progress(run.builder.report)
        if run.builder.report.rows == 0:
            raise ValidationFailed("The file holds no rows.", errors=[{"field": "body", "message": "no rows"}])
        async with sessionmaker() as session, session.begin():
            await run.commit(session, [], last=True)
    except ImportJobBusy:
        raise
    except BaseException as exc:
        if run.exists:
            await _mark_failed(sessionmaker, run.id, exc)
        raise
    run.builder.report.status = "completed"
    return run.builder.report


async def _already_completed(run: _Run, items: AsyncIterator[Item]) -> ImportReport:
    """A re-run of a completed job: nothing is imported; the first rows are listed as skipped."""
    report = run.builder.report
    async for item in items:
        run.skip(item)
        if len(report.skipped) >= MAX_ERRORS:
            break
    report.rows_skipped = report.rows
    return report


async def _mark_resumed(sessionmaker: async_sessionmaker[AsyncSession], job: ImportJob) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(sa.update(ImportJob).where(ImportJob.id == job.id).values(  # type: ignore[arg-type]
            status="running", failure=None, run_started_at=datetime.now(UTC), run_rows_from=job.rows_done))


async def _mark_failed(sessionmaker: async_sessionmaker[AsyncSession], id: uuid.UUID, exc: BaseException) -> None:
    """Best effort (the database may be what failed): a crashed run stays `running`, which resumes all the same."""
    try:
        async with sessionmaker() as session, session.begin():
            await session.execute(sa.update(ImportJob).where(ImportJob.id == id).values(  # type: ignore[arg-type]
                status="failed", failure=(f"{type(exc).__name__}: {exc}")[:500], updated_at=datetime.now(UTC)))
    except Exception:  # noqa: S110 - the original error is what the caller must see
        pass
