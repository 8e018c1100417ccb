"""Every route of the referral service that takes an id gets its object from one load-or-404 dependency per
aggregate: the role is checked first (403), then a missing object is a 404 problem, whatever the method."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support import tokens

MISSING = {
    "routing rule": "/api/v1/routing-rules/2147483647",
    "SLA override": "/api/v1/sla/overrides/2147483647",
    "webhook subscription": f"/api/v1/webhooks/subscriptions/{uuid.uuid4()}",
    "referral": f"/api/v1/referrals/{uuid.uuid4()}",
}
BODIES = {
    "routing rule": {"spm_field": "kesehatan", "agency_level": "regency"},
    "SLA override": {"urgency": "high", "respond_within": 1, "complete_within": 2},
}


@pytest.mark.parametrize("aggregate", sorted(BODIES))
async def test_a_missing_configuration_object_is_a_404_for_every_method(aggregate: str,
                                                                       referral: httpx.AsyncClient) -> None:
    url = MISSING[aggregate]
    for method, body in (("GET", None), ("PUT", BODIES[aggregate]), ("DELETE", None)):
        response = await referral.request(method, url, headers={**tokens.admin(), "If-Match": '"1"'}, json=body)
        assert response.status_code == 404, (method, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        # Not an admin: refused for the role, before the object is looked for.
        refused = await referral.request(method, url, headers=tokens.pembina("15"), json=body)
        assert refused.status_code == 403, (method, refused.text)


async def test_a_missing_referral_or_subscription_is_a_404_for_every_route(referral: httpx.AsyncClient) -> None:
    admin = tokens.admin()
    subscription = MISSING["webhook subscription"]
    for method, path, body in (
            ("GET", MISSING["referral"], None), ("GET", MISSING["referral"] + "/history", None),
            ("GET", MISSING["referral"] + "/notes", None), ("POST", MISSING["referral"] + "/notes", {"text": "x"}),
            ("POST", MISSING["referral"] + "/accept", None),
            ("GET", subscription, None), ("DELETE", subscription, None), ("POST", subscription + "/enable", None),
            ("POST", subscription + "/rotate-secret", None), ("GET", subscription + "/deliveries", None),
            ("POST", subscription + "/replay", {"since": "2026-01-01T00:00:00Z"})):
        response = await referral.request(method, path, headers=admin, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
