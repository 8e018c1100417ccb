"""The container image recipe (Dockerfile, .dockerignore), linted as far as offline tools allow."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, in order."""
    found: list[list[tuple[str, str]]] = []
    for keyword, arguments in instructions():
        if keyword == "FROM":
            found.append([])
        assert found, "the Dockerfile must start with FROM"
        found[-1].append((keyword, arguments))
    return found


def ignored() -> set[str]:
    return {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")}


def test_base_images_are_pinned_python_311_slim() -> None:
    bases = [arguments.split()[0] for keyword, arguments in instructions() if keyword == "FROM"]
    assert len(bases) >= 2, "multi-stage: build tools stay out of the runtime image"
    for base in bases:
        image, _, tag = base.partition(":")
        assert image == "python", base
        assert tag.startswith("3.11-slim"), base
        assert tag != "latest"


def test_runtime_stage_runs_as_uid_10001_and_never_as_root() -> None:
    runtime = stages()[-1]
    users = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert users, "the runtime stage must switch to an unprivileged user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001", "must match the pods' runAsUser"


def test_runtime_stage_sets_python_for_containers() -> None:
    env = " ".join(arguments for keyword, arguments in stages()[-1] if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    # The services listen on loopback unless HOST says otherwise; a container must be reachable from outside.
    assert "HOST=0.0.0.0" in env


def test_nothing_is_fetched_with_add_and_pip_keeps_no_cache() -> None:
    for keyword, arguments in instructions():
        assert keyword != "ADD", f"use COPY (ADD fetches URLs and unpacks archives): ADD {arguments}"
        if keyword == "RUN" and "pip install" in arguments:
            assert "--no-cache-dir" in arguments, arguments


def test_the_command_is_exec_form_without_a_shell() -> None:
    commands = [(k, a) for k, a in instructions() if k in ("CMD", "ENTRYPOINT")]
    assert commands
    for keyword, arguments in commands:
        argv = json.loads(arguments)  # exec form is a JSON array; shell form would not parse
        assert isinstance(argv, list), keyword
        assert argv[0] not in ("sh", "/bin/sh", "bash", "/bin/bash"), keyword
    assert json.loads(commands[-1][1]) == ["python", "-m", "services.registry", "serve"]


def test_copied_sources_exist_and_are_not_ignored() -> None:
    for keyword, arguments in stages()[0]:
        if keyword == "COPY" and not arguments.startswith("--from"):
            source = arguments.split()[0]
            assert (REPO / source).exists(), source
            assert source not in ignored(), source


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    assert {".venv", ".data", ".git"} <= ignored()


def test_the_installed_package_carries_migrations_and_data(tmp_path: Path) -> None:
    """The image runs `pip install .`: the wheel must hold what `migrate` and the services read at run time."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(tmp_path), str(root)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("posyandu_spm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for service in ("registry",):
        assert f"services/{service}/migrations/env.py" in names
        assert f"services/{service}/migrations/script.py.mako" in names
        assert f"services/{service}/asyncapi.json" in names
        assert any(n.startswith(f"services/{service}/migrations/versions/") for n in names)
    assert "services/registry/demo/regions.csv" in names
    assert not any(n.startswith(("tests/", ".venv/", ".data/")) for n in names)
