"""The referral service's endpoint modules translate HTTP only: the use case (access, change, events, audit) is the
service function's, so no endpoint module writes the audit log or the outbox, or builds a query itself."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[1]
#: What only a service function may use: the audit log, the outbox, the household's read log, SQL.
FORBIDDEN = ("shared.audit", "shared.outbox", "services.referral.household_reads", "sqlalchemy", "sqlmodel")


def _uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                   else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        found += [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
        if isinstance(node, ast.Attribute) and node.attr in ("execute", "scalar", "add", "flush", "delete") \
                and isinstance(node.value, ast.Name) and node.value.id == "session":
            found.append(f"session.{node.attr}")
    return found


def test_endpoint_modules_translate_http_only() -> None:
    modules = sorted(SERVICE.rglob("endpoints.py"))
    assert len(modules) >= 5, modules
    offenders = {str(p.relative_to(SERVICE)): uses for p in modules if (uses := _uses(p))}
    assert offenders == {}


def test_the_check_catches_an_audit_write_and_a_query(tmp_path: Path) -> None:
    offending = tmp_path / "endpoints.py"
    offending.write_text("from shared.audit import record_read\nimport sqlalchemy as sa\n\n"
                         "async def route(session):\n    await session.execute(sa.select(1))\n")
    assert _uses(offending) == ["shared.audit", "sqlalchemy", "session.execute"]
