"""The rows a recorded profile version writes in the need refresh's statement: the version and its audit row."""

from __future__ import annotations

import orjson

from services.household.needs.repository import Also
from services.household.tables import ProfileVersion
from shared.auth import Principal
from shared.observability import request_id_var

# The new version ($19-$24) and its audit row ($25-$30), before the need refresh's own writes (`Also`; $1 is the
# household). The version number was read with the household's row locked, so no other version can take it.
_RECORDED = """
new_version AS (
  INSERT INTO profile_versions (household_id, spm_field, version, data, observed_on, recorded_by, recorded_at)
  VALUES ($1, $19, $20, CAST($21::text AS jsonb), $22, $23, $24)),
audit_row AS (
  INSERT INTO audit_log (actor, actor_role, action, resource_type, resource_id, subject_ref, purpose, request_id,
                         fields)
  VALUES ($25, $26, 'record-profile', $27, $1::text, $1::text, $28, $29, CAST($30::text AS jsonb)))"""


def recorded(version: ProfileVersion, principal: Principal) -> Also:
    """A recorded version's row and its audit row (`record-profile`, the fields it holds), for `refresh_needs`."""
    return Also(_RECORDED, (
        version.spm_field, version.version, orjson.dumps(version.data).decode(), version.observed_on,
        version.recorded_by, version.recorded_at, principal.sub, principal.role.value, f"profile.{version.spm_field}",
        f"{version.spm_field} profile recorded", request_id_var.get(), orjson.dumps(sorted(version.data)).decode()))
