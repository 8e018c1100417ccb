"""Architecture: services talk only through events and HTTP, never by importing one another."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def foreign_imports(service: str) -> list[str]:
    found = []
    for path in (ROOT / "services" / service).rglob("*.py"):
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] != service:
                found.append(f"{path.relative_to(ROOT)} imports {module}")
            if parts[0] == "tests" and "tests" not in path.parts:
                found.append(f"{path.relative_to(ROOT)} imports test code {module}")
    return found


def test_no_service_imports_another_service() -> None:
    assert SERVICES, "no services found"
    assert [line for s in SERVICES for line in foreign_imports(s)] == []


def test_the_checker_catches_a_cross_service_import(tmp_path: Path) -> None:
    offending = tmp_path / "bad.py"
    offending.write_text("from services.household.api import router\nimport services.referral.app\n")
    assert imported_modules(offending) == {"services.household.api", "services.referral.app"}


def test_shared_never_imports_a_service() -> None:
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "shared").rglob("*.py") if "tests" not in p.parts
                 for m in imported_modules(p) if m.split(".")[0] == "services"]
    assert offenders == []


def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def imported_names(path: Path, module: str) -> set[str]:
    """The names a file imports from `module` (`from module import a, b`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == module
            for alias in node.names}


def test_services_write_events_only_through_publish() -> None:
    """One way to write the outbox (shared/outbox.py): `publish`, or `publish_many` for a batch; the raw
    `enqueue` (any topic, any key) is the relay's own and its tests'."""
    raw = [f"{path.relative_to(ROOT)} imports {name}" for path in sorted((ROOT / "services").rglob("*.py"))
           for name in imported_names(path, "shared.outbox") - {"publish", "publish_many"}]
    assert raw == []


def test_consumers_are_projections_of_typed_data() -> None:
    """Each consumer module declares its handlers on a Projection (shared/projection.py), whose handlers receive
    the data the catalogue parsed: none builds a handler table or parses an event's data by hand."""
    found = []
    for path in sorted((ROOT / "services").glob("*/consumers/*.py")):
        text = path.read_text()
        if path.name in ("__init__.py", "codes.py"):
            continue
        if "(Projection):" not in text:
            found.append(f"{path.relative_to(ROOT)} declares no Projection")
        if "model_validate(event.data)" in text or "HANDLERS" in text:
            found.append(f"{path.relative_to(ROOT)} parses events or registers handlers by hand")
    assert found == []
