"""`python -m services.household republish`: announce the current state of every household again (README
"Household snapshot republish"), as `POST /api/v1/households/republish` does."""

from __future__ import annotations

import argparse
import asyncio

from services.household.republish import RepublishReport, republish
from services.household.settings import HouseholdSettings
from shared.clock import today_by


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chunk-size", type=int, default=None, metavar="N",
                        help="households per transaction (default: REPUBLISH_CHUNK_SIZE)")


async def run_republish(settings: HouseholdSettings, chunk_size: int | None) -> RepublishReport:
    from shared.db import create_engine, create_sessionmaker

    engine = create_engine(settings)
    try:
        return await republish(create_sessionmaker(engine), today=today_by(settings.clock),
                               chunk_size=chunk_size or settings.republish_chunk_size)
    finally:
        await engine.dispose()


def run(args: argparse.Namespace, settings: HouseholdSettings) -> None:
    if args.chunk_size is not None and not 1 <= args.chunk_size <= 10_000:
        raise SystemExit("--chunk-size must be between 1 and 10000.")
    print(asyncio.run(run_republish(settings, args.chunk_size)).model_dump_json(indent=2))


COMMAND = ("publish the current state of every household again as snapshot events (through the outbox)",
           add_arguments, run)
