"""Architecture: services talk only through events and HTTP, never by importing one another."""

from __future__ import annotations

import ast
import re
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


def names_imported_from(path: Path, module: str) -> set[str]:
    """The names a file imports from `module` (`from module import a, b`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == module
            for alias in node.names}


def test_services_write_events_only_through_publish() -> None:
    """One way to write the outbox (shared/outbox.py): `publish`, or `publish_many` for a batch, or the rows
    `publish_many` writes (`outbox_rows`: the catalogue's topic and key, and the relay's wake after commit) for a
    use case that inserts them in its own statement (registration), or one event's row as an INSERT gated on the
    statement's state change (`insert_outbox_row` with its `outbox_parameters`: a referral's creation); the raw
    `enqueue` (any topic, any key) is the relay's own and its tests'."""
    allowed = {"publish", "publish_many", "outbox_rows", "insert_outbox_row", "outbox_parameters"}
    raw = [f"{path.relative_to(ROOT)} imports {name}" for path in sorted((ROOT / "services").rglob("*.py"))
           for name in names_imported_from(path, "shared.outbox") - allowed]
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


# --- Test trees: no test tree imports another's factories --------------------------------------------------------
#
# The test trees are `tests/` (the cross-service tests) and each `services/<svc>/tests/`. The test code every tree may
# import is `tests.support` (shared helpers and factories) and the root `conftest` (the session's stack). Beyond that a
# tree imports only its own helper modules (a service's `tests/factories.py`, a `conftest`), and nothing imports a test
# module (`test_*.py`): what two test files share belongs in a helper module.

#: The test code every tree may import.
SHARED_TEST_CODE = "tests.support"


def tree_of(module: str) -> str | None:
    """The test tree a module belongs to: "tests", "services.<svc>.tests", or None (no test code)."""
    parts = module.split(".")
    if parts[0] == "tests":
        return "tests"
    if parts[0] == "services" and "tests" in parts:
        return ".".join(parts[:parts.index("tests") + 1])
    return None


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imported_names(path: Path) -> set[str]:
    """Every module a file imports, with the test modules among `from package import name` (`package.test_x`)."""
    names = imported_modules(path)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {f"{node.module}.{alias.name}" for alias in node.names if alias.name.startswith("test_")}
    return names


def foreign_test_imports(module: str, names: set[str]) -> list[str]:
    """What a test module imports of another test tree, or of a test module."""
    found = []
    for name in sorted(names):
        tree = tree_of(name)
        if any(part.startswith("test_") for part in name.split(".")):
            found.append(f"{module} imports the test module {name}")
        elif tree not in (None, tree_of(module)) and not name.startswith(SHARED_TEST_CODE):
            found.append(f"{module} imports {name} of the test tree {tree}")
    return found


def all_test_files() -> list[Path]:
    files = sorted((ROOT / "tests").rglob("*.py"))
    for service in SERVICES:
        files += sorted((ROOT / "services" / service / "tests").rglob("*.py"))
    return files


def test_no_test_tree_imports_another_trees_test_code_or_a_test_module() -> None:
    files = all_test_files()
    assert {tree_of(module_of(p)) for p in files} >= {"tests", "services.referral.tests"}
    assert [line for path in files for line in foreign_test_imports(module_of(path), imported_names(path))] == []


def test_the_checker_catches_a_foreign_factory_and_a_test_module(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from services.referral.tests.factories import known_agency\n"
                     "from services.household.tests import test_import\n"
                     "import tests.faults.conftest\n"
                     "from services.household.tests.factories import register\n"
                     "from tests.support.waiting import eventually\n"
                     "from conftest import Stack\n")
    in_household = "services.household.tests.test_probe"
    assert foreign_test_imports(in_household, imported_names(probe)) == [
        f"{in_household} imports the test module services.household.tests.test_import",
        f"{in_household} imports services.referral.tests.factories of the test tree services.referral.tests",
        f"{in_household} imports tests.faults.conftest of the test tree tests",
    ]
    # From the cross-service tree every service's test package is another tree's; its own `tests.faults` is not.
    assert foreign_test_imports("tests.test_probe", imported_names(probe)) == [
        "tests.test_probe imports services.household.tests of the test tree services.household.tests",
        "tests.test_probe imports services.household.tests.factories of the test tree services.household.tests",
        "tests.test_probe imports the test module services.household.tests.test_import",
        "tests.test_probe imports services.referral.tests.factories of the test tree services.referral.tests",
    ]


# --- Endpoints translate HTTP; the use case (the service function) does the side effects --------------------------

#: What only a use case writes, by the qualified name of the writer: the audit log (shared/audit.py), the outbox
#: (shared/outbox.py). A need refresh is any function named `refresh_needs`, wherever it lives.
SIDE_EFFECT_WRITERS = {
    "shared.audit.record": "writes the audit log", "shared.audit.record_read": "writes the audit log",
    "shared.audit.record_reads": "writes the audit log",
    "shared.outbox.publish": "writes the outbox", "shared.outbox.publish_many": "writes the outbox",
    "shared.outbox.enqueue": "writes the outbox",
    "shared.outbox.outbox_entry": "writes the outbox"}
NEED_REFRESH = "refresh_needs"

#: The endpoint modules that still write the audit log or refresh needs themselves: none since the use-case rework of
#: issue 17. Exact: the test fails when a module is missing here and when one listed no longer does it.
KNOWN_ENDPOINT_SIDE_EFFECTS: set[str] = set()


def referenced_names(tree: ast.AST) -> set[str]:
    """The qualified names a module refers to: what it imports by name, and `module.attribute` uses of what it
    imports as a module (`from shared import audit` then `audit.record(...)` refers to `shared.audit.record`)."""
    local: dict[str, str] = {}
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:  # `import a.b` binds `a`; `import a.b as c` binds `c` to `a.b`
                top = alias.name.split(".")[0]
                local[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                local[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                names.add(f"{node.module}.{alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain: list[str] = []
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                chain.insert(0, inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in local:
                names.add(".".join([local[inner.id], *chain]))
            if node.attr == NEED_REFRESH:  # a call through any object: `needs.refresh_needs(...)`
                names.add(NEED_REFRESH)
    return names


def side_effects(source: str) -> set[str]:
    """What an endpoint module does that belongs to the use case."""
    found = set()
    for name in referenced_names(ast.parse(source)):
        if name in SIDE_EFFECT_WRITERS:
            found.add(SIDE_EFFECT_WRITERS[name])
        elif name.rsplit(".", 1)[-1] == NEED_REFRESH:
            found.add("refreshes needs")
    return found


def test_endpoints_leave_the_audit_log_the_outbox_and_needs_to_the_use_case() -> None:
    """An endpoint module (`services/*/**/endpoints.py`) parses the request, calls one service function and renders
    its result. It never writes the audit log (`record`/`record_read`/`record_reads` of shared/audit.py), never
    writes the outbox (`publish`, `enqueue`, `outbox_entry` of shared/outbox.py) and never refreshes a household's
    needs (`refresh_needs`) itself: the service function does, so CLI commands and consumers calling it do them too."""
    endpoints = sorted(p for p in (ROOT / "services").rglob("endpoints.py") if "tests" not in p.parts)
    assert len(endpoints) > 10, "no endpoint modules found"
    doing = {str(p.relative_to(ROOT)): sorted(side_effects(p.read_text())) for p in endpoints}
    doing = {module: effects for module, effects in doing.items() if effects}
    assert set(doing) == KNOWN_ENDPOINT_SIDE_EFFECTS, (
        f"endpoint modules that do the use case's side effects: {doing}; "
        f"listed but clean now (remove them from KNOWN_ENDPOINT_SIDE_EFFECTS): "
        f"{sorted(KNOWN_ENDPOINT_SIDE_EFFECTS - set(doing))}")


def test_the_side_effect_checker_sees_each_way_of_calling() -> None:
    assert side_effects("from shared.audit import record_read\n") == {"writes the audit log"}
    assert side_effects("from shared.audit import record_reads\n") == {"writes the audit log"}
    assert side_effects("from shared import audit\nasync def f(s, p): await audit.record(s, p)\n") \
        == {"writes the audit log"}
    assert side_effects("import shared.outbox\nasync def f(s): await shared.outbox.publish(s)\n") \
        == {"writes the outbox"}
    assert side_effects("from shared.outbox import enqueue as put\n") == {"writes the outbox"}
    assert side_effects("from services.household.needs.service import refresh_needs\n") == {"refreshes needs"}
    assert side_effects("from services.household.needs import service\n"
                        "async def f(s, h): await service.refresh_needs(s, h)\n") == {"refreshes needs"}
    assert side_effects("from shared.audit import audit_router\nfrom shared.outbox import OutboxRelay\n"
                        "from services.household.households import service\n"
                        "async def f(s): await service.register(s)\n") == set()


# --- One access rule per aggregate: a query, not a predicate beside it ---------------------------------------------

#: A read predicate decides in Python whether a caller may read one loaded row (`may_see(principal, referral)`,
#: `read_basis(session, principal, household)`).
READ_PREDICATE = re.compile(r"^_?(read_basis|(may|can)_(read|see|view)\w*)$")

#: The modules that hold a read predicate beside a query of the same aggregate, with the aggregate: none since the
#: access rework of issue 17. Exact, so it cannot go stale.
KNOWN_ACCESS_PAIRS: set[str] = set()


def access_pairs(source: str) -> set[str]:
    """The table models for which a module defines both a read predicate and an access query.

    Precisely: among the module's top-level functions that take a parameter annotated `Principal`, a *read
    predicate* also takes a parameter annotated with a table model (a name the module imports from a service's
    `tables` module) and is named `read_basis`, `may_read*`, `may_see*`, `may_view*`, `can_read*`, `can_see*` or
    `can_view*`; an *access query* takes no such row and refers to a table model's columns (`Household.posyandu_id`).
    A pair is a table model that is the row of a read predicate and the subject of an access query in the same module.
    """
    tree = ast.parse(source)
    tables = {alias.asname or alias.name for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and node.module.startswith("services.") and node.module.endswith(".tables") for alias in node.names}
    predicates: set[str] = set()
    queries: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        annotations = {ast.unparse(a.annotation) for a in arguments if a.annotation is not None}
        if "Principal" not in annotations:
            continue
        rows = annotations & tables
        if rows and READ_PREDICATE.match(node.name):
            predicates |= rows
        elif not rows:
            queries |= {n.value.id for n in ast.walk(node) if isinstance(n, ast.Attribute)
                        and isinstance(n.value, ast.Name) and n.value.id in tables}
    return predicates & queries


def test_each_read_access_rule_is_written_once_as_a_query() -> None:
    """No module in services/ holds a Python read predicate beside the SQL access query of the same aggregate (the
    rule of `access_pairs`): single reads, lists and exports all start from the one query (Polar's
    `get_readable_statement`), so the rule cannot drift between two copies."""
    modules = sorted(p for p in (ROOT / "services").rglob("*.py")
                     if "tests" not in p.parts and "migrations" not in p.parts)
    pairs = {f"{p.relative_to(ROOT)}: {table}" for p in modules for table in access_pairs(p.read_text())}
    assert pairs == KNOWN_ACCESS_PAIRS, (
        f"read predicates beside their query: {sorted(pairs - KNOWN_ACCESS_PAIRS)}; listed but gone now (remove "
        f"them from KNOWN_ACCESS_PAIRS): {sorted(KNOWN_ACCESS_PAIRS - pairs)}")


def test_the_access_checker_finds_a_predicate_beside_its_query() -> None:
    pair = ("from services.household.tables import Household\nfrom shared.auth import Principal\n"
            "def may_see(principal: Principal, household: Household) -> bool: ...\n"
            "def list_scope(principal: Principal): return Household.posyandu_id.in_(principal.posyandu_ids)\n")
    assert access_pairs(pair) == {"Household"}
    query_only = pair.replace("def may_see(principal: Principal, household: Household) -> bool: ...\n", "")
    assert access_pairs(query_only) == set()
    # A write predicate and a load-or-404 built on the query are no second copy of the read rule.
    assert access_pairs(pair.replace("may_see", "may_write")) == set()
    other_aggregate = pair.replace("def list_scope(principal: Principal): return Household.posyandu_id",
                                   "def list_scope(principal: Principal): return Referral.posyandu_id").replace(
        "import Household\n", "import Household, Referral\n")
    assert access_pairs(other_aggregate) == set()
