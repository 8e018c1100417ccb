"""`python -m services.<svc> dead-letters list|show|replay|discard`: the dead-letter API's use cases from a shell,
against the service's database, as an admin named `cli:<login>` in the audit log. Output is JSON, one object a line.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import orjson

from shared import dead_letters as dl
from shared.auth import Principal, Role
from shared.errors import Problem
from shared.settings import ServiceSettings


def _aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no UTC offset (e.g. 2026-12-01T08:00:00+07:00)")
    return parsed


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", help="consumer group")
    parser.add_argument("--event-type")
    parser.add_argument("--error", help="case-insensitive substring of the error")
    parser.add_argument("--since", type=_aware, help="dead-lettered at or after (ISO 8601 with offset)")
    parser.add_argument("--until", type=_aware, help="dead-lettered before (ISO 8601 with offset)")
    parser.add_argument("--limit", type=int, default=100, choices=range(1, 501), metavar="1-500")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list dead letters, newest first (no bodies)")
    _filters(listing)
    listing.add_argument("--state", choices=[s.value for s in dl.State])
    show = actions.add_parser("show", help="one dead letter with its body (the read is audited)")
    show.add_argument("id", type=int)
    replay = actions.add_parser("replay", help="replay one dead letter, or with --all the pending ones matching")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?")
    target.add_argument("--all", action="store_true", help="every pending dead letter matching the filters")
    _filters(replay)
    discard = actions.add_parser("discard", help="discard a pending dead letter with a reason (kept, audited)")
    discard.add_argument("id", type=int)
    discard.add_argument("--reason", required=True)


def _print(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")


async def run_action(args: argparse.Namespace, settings: ServiceSettings, handlers: dl.GroupHandlers) -> None:
    from shared.db import create_engine, create_sessionmaker

    principal = Principal(sub=f"cli:{getpass.getuser()}", role=Role.ADMIN)
    groups = list(handlers)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if args.action == "list":
                flt = dl.Filter(args.group, dl.State(args.state) if args.state else None, args.event_type,
                                args.error, args.since, args.until)
                for row in (await dl.list_dead_letters(session, groups, flt, limit=args.limit))[:args.limit]:
                    _print(row)
            elif args.action == "show":
                row = await dl.inspect(session, principal, groups, args.id, purpose="dead-letter inspection (CLI)")
                event, raw = dl.body_of(row)
                _print({**{k: v for k, v in row.items() if k not in ("key", "payload")}, "event": event, "raw": raw})
            elif args.action == "replay" and args.all:
                flt = dl.Filter(args.group, None, args.event_type, args.error, args.since, args.until)
                for result in await dl.replay_matching(session, principal, handlers, flt, limit=args.limit):
                    _print(asdict(result))
            elif args.action == "replay":
                _print(asdict(await dl.replay(session, principal, handlers, args.id)))
            else:
                row = await dl.discard(session, principal, groups, args.id, reason=args.reason)
                _print({k: v for k, v in row.items() if k not in ("key", "payload")})
    finally:
        await engine.dispose()


def command(handlers: Callable[[Any], dl.GroupHandlers]) -> tuple[str, Callable[[argparse.ArgumentParser], None],
                                                                  Callable[[argparse.Namespace, Any], None]]:
    """The `dead-letters` command of a service's CLI (shared/cli.py), given its groups' handlers for its settings."""

    def run(args: argparse.Namespace, settings: ServiceSettings) -> None:
        try:
            asyncio.run(run_action(args, settings, handlers(settings)))
        except Problem as exc:
            raise SystemExit(f"{exc.title}: {exc.detail}") from exc

    return "list, inspect, replay or discard dead-lettered records", add_arguments, run
