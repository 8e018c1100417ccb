"""`make token ROLE=...`: a bearer token for the local stack, for any role, posyandu, agency, field or region.

    python -m deploy.local.token --role opd --agency <uuid> --fields kesehatan,sosial
    python -m deploy.local.token --role kader --posyandu <uuid>[,<uuid>...]
    python -m deploy.local.token --role pembina --region 3171

Prints only the token (so that `TOKEN=$(make -s token ...)` works). It is signed with the development secret
the local stack's services verify (deploy/local/stack.py); production refuses that secret, so such a token is
worthless there. The claims are checked by the services' own rules (shared.auth.TokenClaims) before signing:
a token this prints is one the services accept.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from shared.auth import Role, TokenClaims, mint_token
from shared.events.topics import SpmField
from shared.settings import DEV_JWT_SECRET

#: Local tokens are short-lived: they are printed on a terminal and signed with a published secret.
LOCAL_TOKEN_HOURS = 12
MAX_TOKEN_HOURS = 24

#: The option that sets each claim, to name it in an error.
OPTION_OF_CLAIM = {"sub": "--sub", "role": "--role", "posyandu_ids": "--posyandu", "agency_id": "--agency",
                   "fields": "--fields", "region_prefix": "--region", "exp": "--hours"}
#: The claims each role takes, all required (a claim the role ignores is refused, not silently signed).
CLAIMS_OF_ROLE = {Role.KADER: {"posyandu_ids"}, Role.OPD: {"agency_id", "fields"}, Role.PEMBINA: {"region_prefix"},
                  Role.ADMIN: set(), Role.SERVICE: set()}

REGION_HINT = "not a region code (2, 4, 6 or 10 ASCII digits 0-9, e.g. 31, 3171, 317101, 3171011001)"


class TokenRequestError(ValueError):
    """The options do not describe a token the services would accept; the message says which and why."""


def _list(value: str | None) -> list[str] | None:
    return None if value is None else [item.strip() for item in value.split(",") if item.strip()]


def local_token(role: str, *, sub: str | None = None, posyandu: Sequence[str] | None = None,
                agency: str | None = None, fields: Sequence[str] | None = None, region: str | None = None,
                hours: int = LOCAL_TOKEN_HOURS) -> str:
    """A token signed with the local secret, for claims the services accept; TokenRequestError otherwise."""
    try:
        checked_role = Role(role)
    except ValueError:
        raise TokenRequestError(f"--role: unknown role {role!r}; one of: {', '.join(r.value for r in Role)}") from None
    if not 1 <= hours <= MAX_TOKEN_HOURS:
        raise TokenRequestError(f"--hours: between 1 and {MAX_TOKEN_HOURS}")
    claims: dict[str, Any] = {"posyandu_ids": None if posyandu is None else list(posyandu), "agency_id": agency,
                             "fields": None if fields is None else list(fields), "region_prefix": region}
    given = {name for name, value in claims.items() if value is not None}
    if stray := sorted(given - CLAIMS_OF_ROLE[checked_role]):
        raise TokenRequestError(f"{', '.join(OPTION_OF_CLAIM[c] for c in stray)}: not a claim of the {role} role")
    if missing := sorted(CLAIMS_OF_ROLE[checked_role] - given):
        raise TokenRequestError(f"{', '.join(OPTION_OF_CLAIM[c] for c in missing)}: required for the {role} role")
    sub = f"{role}-local" if sub is None else sub
    try:
        TokenClaims.model_validate({"sub": sub, "role": role, "exp": hours * 3600,
                                    **{k: v for k, v in claims.items() if v is not None}})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            option = OPTION_OF_CLAIM.get(str(error["loc"][0]), "options") if error["loc"] else "options"
            message = (REGION_HINT if option == "--region" and error["type"] == "string_pattern_mismatch"
                       else error["msg"].removeprefix("Value error, "))
            problems.append(f"{option}: {message}")
        raise TokenRequestError("; ".join(problems)) from None
    return mint_token(DEV_JWT_SECRET, checked_role, sub=sub, expires_in=hours * 3600, **claims)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.token", description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", required=True, help=", ".join(r.value for r in Role))
    parser.add_argument("--sub", help="the subject (who the audit log names); default <role>-local")
    parser.add_argument("--posyandu", help="kader: comma-separated posyandu ids (GET /api/v1/posyandu)")
    parser.add_argument("--agency", help="opd: the agency id (GET /api/v1/agencies)")
    parser.add_argument("--fields", help=f"opd: comma-separated SPM fields ({', '.join(f.value for f in SpmField)})")
    parser.add_argument("--region", help="pembina: a 2, 4, 6 or 10-digit region code")
    parser.add_argument("--hours", type=int, default=LOCAL_TOKEN_HOURS,
                        help=f"lifetime (default {LOCAL_TOKEN_HOURS}, at most {MAX_TOKEN_HOURS})")
    args = parser.parse_args(argv)
    try:
        token = local_token(args.role, sub=args.sub, posyandu=_list(args.posyandu), agency=args.agency,
                            fields=_list(args.fields), region=args.region, hours=args.hours)
    except TokenRequestError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
