"""Make the project importable by these tests even when the virtualenv's editable install is stale; a broker of a
test's own (the fault tests' fixture) for the services these tests run as processes."""

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from tests.faults.conftest import broker  # noqa: E402, F401  (a fixture: imported to register it here)
