"""`make token` (python -m deploy.local.token): the token it prints is accepted for exactly the claims given."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from shared.settings import DEV_JWT_SECRET
from tests.support.factories import household_body, known_posyandu
from tests.support.tokens import bearer

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.local.token", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, check=False)


def minted(*args: str) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token, "only the token goes to stdout"
    return token


async def test_a_kader_token_writes_at_its_posyandu_only(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                         household_db: asyncpg.Connection) -> None:
    mine, other = await known_posyandu(registry, household_db), await known_posyandu(registry, household_db)
    token = minted("--role", "kader", "--posyandu", mine, "--sub", "siti@posyandu-kenanga")
    claims = jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"], claims["posyandu_ids"]) == ("siti@posyandu-kenanga", "kader", [mine])
    assert 11 * 3600 < claims["exp"] - claims["iat"] <= 12 * 3600, "local tokens are short-lived"
    created = await household.post("/api/v1/households", json=household_body(mine), headers=bearer(token))
    assert created.status_code == 201, created.text
    elsewhere = await household.post("/api/v1/households", json=household_body(other), headers=bearer(token))
    assert elsewhere.status_code == 403

    pembina_here = bearer(minted("--role", "pembina", "--region", "3171"))
    pembina_there = bearer(minted("--role", "pembina", "--region", "3172"))
    url = f"/api/v1/households/{created.json()['id']}"
    assert (await household.get(url, headers=pembina_here)).status_code == 200
    assert (await household.get(url, headers=pembina_there)).status_code == 404


async def test_an_opd_token_reads_its_own_agency_inbox_only(referral: httpx.AsyncClient) -> None:
    agency, other = str(uuid.uuid4()), str(uuid.uuid4())
    token = bearer(minted("--role", "opd", "--agency", agency, "--fields", "kesehatan,sosial"))
    assert (await referral.get(f"/api/v1/agencies/{agency}/referrals", headers=token)).status_code == 200
    assert (await referral.get(f"/api/v1/agencies/{other}/referrals", headers=token)).status_code == 404


async def test_admin_and_service_tokens_are_accepted(household: httpx.AsyncClient) -> None:
    for role in ("admin", "service"):
        response = await household.get("/api/v1/households", headers=bearer(minted("--role", role)))
        assert response.status_code != 401, response.text


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "superuser"], "--role: unknown role"),
    (["--role", "kader"], "--posyandu: required"),
    (["--role", "kader", "--posyandu", "not-a-uuid"], "--posyandu"),
    (["--role", "opd", "--agency", str(uuid.uuid4())], "--fields: required"),
    (["--role", "opd", "--agency", "42", "--fields", "kesehatan"], "--agency"),
    (["--role", "opd", "--agency", str(uuid.uuid4()), "--fields", "kesehatan,astrologi"], "--fields"),
    (["--role", "pembina", "--region", "317"], "--region: not a region code"),
    (["--role", "pembina", "--region", "\u0663\u0661"], "--region: not a region code"),  # Arabic-Indic digits
    (["--role", "admin", "--region", "31"], "--region: not a claim of the admin role"),
    (["--role", "admin", "--sub", " "], "--sub"),
    (["--role", "admin", "--hours", "720"], "--hours"),
])
def test_refused_inputs_exit_non_zero_with_a_message(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert message in result.stderr, result.stderr


def test_the_makefile_passes_the_variables_on() -> None:
    """`make token ROLE=... AGENCY=...` runs the same command (dry run: make would otherwise build the venv)."""
    agency = str(uuid.uuid4())
    result = subprocess.run(["make", "-n", "-s", "token", "ROLE=opd", f"AGENCY={agency}",
                             "FIELDS=kesehatan,sosial", "SUB=dinkes"], capture_output=True, text=True, cwd=ROOT,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    command = result.stdout[result.stdout.index("-m deploy.local.token"):]
    assert '--role "opd"' in command and f'--agency "{agency}"' in command
    assert '--fields "kesehatan,sosial"' in command and '--sub "dinkes"' in command
    assert "--posyandu" not in command and "--region" not in command
