"""The household service's REST API, for the one read that needs it: the member's full NIK for the assigned agency.

Events never carry a full NIK, so the agency's detail read asks the household service with the agency's own
token and the request's id (the household service authorizes it by the open referral, and audits the read too,
under the same request id). An unreachable or refusing household service degrades the answer (masked data
only), never fails it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import httpx

from services.referral.referrals.schemas import MemberDetails
from shared.observability import request_id_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemberLookup:
    details: MemberDetails | None
    #: Why details is None.
    unavailable: str | None = None


class HouseholdApi:
    """A client of `GET {base_url}/api/v1/households/{id}`; give it a transport to talk to an in-process app."""

    def __init__(self, base_url: str, *, timeout: float = 5.0, transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.transport = transport

    async def member(self, *, household_id: uuid.UUID, member_id: uuid.UUID, authorization: str) -> MemberLookup:
        """The member's NIK and name as the household service shows them to this caller."""
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout,
                                         transport=self.transport) as client:
                # The caller's request id goes along, so the household's audit row of this read joins ours.
                response = await client.get(f"/api/v1/households/{household_id}",
                                            headers={"Authorization": authorization, **request_id_headers()})
        except httpx.HTTPError as exc:
            log.warning("household service unreachable", extra={"error": repr(exc)})
            return MemberLookup(None, "the household service is unreachable; the NIK is shown masked")
        if response.status_code != 200:
            return MemberLookup(None, f"the household service answered {response.status_code}; "
                                      "the NIK is shown masked")
        for member in response.json().get("members", []):
            if member.get("id") == str(member_id):
                return MemberLookup(MemberDetails(member_id=member_id, nik=member.get("nik"), name=member["name"]))
        return MemberLookup(None, "the member is no longer in the household")
