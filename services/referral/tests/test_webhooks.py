"""Per-agency webhooks against a real HTTP receiver on loopback: Standard Webhooks signatures (checked with the
`standardwebhooks` library), only the agency's own referrals with the details it may read, retries that keep each
referral's order and deliver every event once per id, secret rotation with overlap, the delivery log and replay,
the failure budget, the SSRF rules of production, and 404 for another agency.

Kabupaten Mamuju (7602) and Kota Dumai (1472) with the field trantibumlinmas are this module's own (the escalation
tests hold perumahan-rakyat in Mamuju).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.referral.settings import ReferralSettings
from services.referral.tests.factories import create_referral, known_agency, known_household, known_posyandu
from services.referral.webhooks.schemas import WEBHOOK_EVENT_TYPES
from tests.support import tokens
from tests.support.waiting import eventually

FIELD, CATEGORY = "trantibumlinmas", "trantibumlinmas.fire-hazard"
MAMUJU_DESA = "7602011002"  # Binanga, Kabupaten Mamuju, Sulawesi Barat
DUMAI_KELURAHAN = "1472011006"  # Purnama, Kota Dumai, Riau
SUBSCRIPTIONS = "/api/v1/webhooks/subscriptions"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request per path; a path may fail its first N requests."""

    port: int
    requests: dict[str, list[Received]] = field(default_factory=lambda: collections.defaultdict(list))
    failures_left: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def accepted(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests[path] if r.status == 204]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with state.lock:
                failing = state.failures_left.get(self.path, 0) > 0
                if failing:
                    state.failures_left[self.path] -= 1
                status = 500 if failing else 204
                state.requests[self.path].append(Received({k.lower(): v for k, v in self.headers.items()}, body,
                                                          status))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast(referral_settings: ReferralSettings, monkeypatch: pytest.MonkeyPatch) -> ReferralSettings:
    """The running service's settings with a retry schedule in tenths of seconds (the worker reads them each turn)."""
    monkeypatch.setattr(referral_settings, "webhook_retry_schedule_seconds", (0.1,) * 7)
    monkeypatch.setattr(referral_settings, "webhook_retry_jitter", 0.0)
    monkeypatch.setattr(referral_settings, "webhook_poll_interval_seconds", 0.05)
    return referral_settings


@dataclass
class Site:
    mamuju: str  # the regency agency of the field in Mamuju
    dumai: str  # the same field's agency in Dumai
    mamuju_household: dict[str, Any]
    dumai_household: dict[str, Any]


_site: list[Site] = []


@pytest.fixture
async def site(registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
               referral_db: asyncpg.Connection) -> Site:
    if not _site:
        mamuju = await known_agency(registry, referral_db, "7602", [FIELD])
        dumai = await known_agency(registry, referral_db, "1472", [FIELD])
        homes = [await known_household(household, referral_db, await known_posyandu(registry, household_db, desa), desa)
                 for desa in (MAMUJU_DESA, DUMAI_KELURAHAN)]
        _site.append(Site(mamuju, dumai, *homes))
    return _site[0]


def _path() -> str:
    return f"/hook/{uuid.uuid4().hex}"


async def _subscribe(referral: httpx.AsyncClient, agency: str, url: str, **body: Any) -> dict[str, Any]:
    response = await referral.post(SUBSCRIPTIONS, headers=tokens.opd(agency, [FIELD]),
                                   json={"url": url, "event_types": list(WEBHOOK_EVENT_TYPES), **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["secret"].startswith("whsec_")
    return created


async def _deliveries(referral: httpx.AsyncClient, agency: str, subscription_id: str) -> list[dict[str, Any]]:
    response = await referral.get(f"{SUBSCRIPTIONS}/{subscription_id}/deliveries", params={"limit": 500},
                                  headers=tokens.opd(agency, [FIELD]))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _settled(referral: httpx.AsyncClient, agency: str, subscription_id: str, count: int) -> list[dict[str, Any]]:
    """Wait until `count` deliveries exist and none is pending; the log, oldest first."""
    async def done() -> list[dict[str, Any]] | None:
        rows = await _deliveries(referral, agency, subscription_id)
        return rows[::-1] if len(rows) >= count and all(r["status"] != "pending" for r in rows) else None

    return await eventually(done, "the webhook deliveries to settle", timeout=30)


async def _act(referral: httpx.AsyncClient, agency: str, referral_id: str, action: str) -> None:
    response = await referral.post(f"/api/v1/referrals/{referral_id}/{action}", json={},
                                   headers=tokens.opd(agency, [FIELD]))
    assert response.status_code == 200, response.text


async def test_a_regency_agency_receives_only_its_referrals_with_details_and_signatures_verify(
        referral: httpx.AsyncClient, site: Site, receiver: Receiver, fast: ReferralSettings) -> None:
    mamuju_path, dumai_path = _path(), _path()
    mamuju = await _subscribe(referral, site.mamuju, receiver.url(mamuju_path))
    dumai = await _subscribe(referral, site.dumai, receiver.url(dumai_path))

    made = await create_referral(referral, site.mamuju_household, spm_field=FIELD, category=CATEGORY)
    assert made["agency_id"] == site.mamuju
    await _act(referral, site.mamuju, made["id"], "accept")
    log = await _settled(referral, site.mamuju, mamuju["id"], 2)
    assert [d["status"] for d in log] == ["succeeded", "succeeded"]

    received = receiver.accepted(mamuju_path)
    payloads = [Webhook(mamuju["secret"]).verify(r.body, r.headers) for r in received]
    assert [p["type"] for p in payloads] == ["posyandu.referral.created.v1", "posyandu.referral.status-changed.v1"]
    assert [r.headers["webhook-id"] for r in received] == [d["event_id"] for d in log]
    assert all(p["data"]["id"] == made["id"] for p in payloads)
    # The details the assigned agency may read (disclosure.py): the reason, the masked NIK; the status moves.
    assert payloads[0]["data"]["reason"] == "Batuk lebih dari dua minggu"
    assert payloads[0]["data"]["member_nik_masked"] == made["member_nik_masked"]
    assert [p["data"]["status"] for p in payloads] == ["requested", "accepted"]
    assert all(_hand_verified(mamuju["secret"], r) for r in received)  # README's check without a library
    with pytest.raises(WebhookVerificationError):  # another subscription's secret does not verify
        Webhook(dumai["secret"]).verify(received[0].body, received[0].headers)

    # Dumai's own referral reaches Dumai only; Mamuju's never reached Dumai.
    theirs = await create_referral(referral, site.dumai_household, spm_field=FIELD, category=CATEGORY)
    assert theirs["agency_id"] == site.dumai
    dumai_log = await _settled(referral, site.dumai, dumai["id"], 1)
    assert [Webhook(dumai["secret"]).verify(r.body, r.headers)["data"]["id"] for r in receiver.accepted(dumai_path)] \
        == [theirs["id"]] == [d["referral_id"] for d in dumai_log]
    assert len(await _deliveries(referral, site.mamuju, mamuju["id"])) == 2


def _hand_verified(secret: str, received: Received) -> bool:
    """The signature by the published algorithm, computed by hand (README.md's example without a library)."""
    h = received.headers
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + received.body,
                                         hashlib.sha256).digest())
    return any(hmac.compare_digest(expected, sig.split(",", 1)[1].encode())
               for sig in h["webhook-signature"].split(" ") if sig.startswith("v1,"))


async def test_a_receiver_that_fails_five_times_gets_every_event_once_per_id_in_order_per_referral(
        referral: httpx.AsyncClient, site: Site, receiver: Receiver, fast: ReferralSettings) -> None:
    path = _path()
    receiver.failures_left[path] = 5
    subscription = await _subscribe(referral, site.mamuju, receiver.url(path))
    referrals = [await create_referral(referral, site.mamuju_household, spm_field=FIELD, category=CATEGORY)
                 for _ in range(2)]
    for action in ("accept", "start"):
        for made in referrals:
            await _act(referral, site.mamuju, made["id"], action)
    log = await _settled(referral, site.mamuju, subscription["id"], 6)

    assert all(d["status"] == "succeeded" for d in log)
    assert sum(r.status == 500 for r in receiver.requests[path]) == 5
    assert sum(len(d["attempts"]) for d in log) == 6 + 5  # every failure was retried
    accepted = receiver.accepted(path)
    ids = [r.headers["webhook-id"] for r in accepted]
    assert len(ids) == len(set(ids)) == 6 and set(ids) == {d["event_id"] for d in log}
    for made in referrals:
        statuses = [body["data"]["status"] for body in (Webhook(subscription["secret"]).verify(r.body, r.headers)
                                                        for r in accepted) if body["data"]["id"] == made["id"]]
        assert statuses == ["requested", "accepted", "in-progress"]


async def test_a_rotated_secret_verifies_with_both_during_the_overlap_and_with_the_new_only_after(
        referral: httpx.AsyncClient, site: Site, receiver: Receiver, fast: ReferralSettings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast, "webhook_secret_overlap_seconds", 3.0)
    path = _path()
    subscription = await _subscribe(referral, site.mamuju, receiver.url(path))
    rotated = await referral.post(f"{SUBSCRIPTIONS}/{subscription['id']}/rotate-secret",
                                  headers=tokens.opd(site.mamuju, [FIELD]))
    assert rotated.status_code == 200, rotated.text
    old, new = Webhook(subscription["secret"]), Webhook(rotated.json()["secret"])
    assert rotated.json()["secret"] != subscription["secret"] and rotated.json()["previous_secret_expires_at"]

    made = await create_referral(referral, site.mamuju_household, spm_field=FIELD, category=CATEGORY)
    await _settled(referral, site.mamuju, subscription["id"], 1)
    during = receiver.accepted(path)[0]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert old.verify(during.body, during.headers) == new.verify(during.body, during.headers)

    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    await eventually(lambda: _true_after(expires), "the overlap to end", timeout=10)
    await _act(referral, site.mamuju, made["id"], "accept")
    await _settled(referral, site.mamuju, subscription["id"], 2)
    after = receiver.accepted(path)[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert new.verify(after.body, after.headers)["data"]["status"] == "accepted"
    with pytest.raises(WebhookVerificationError):
        old.verify(after.body, after.headers)


async def _true_after(moment: datetime) -> bool:
    return datetime.now(UTC) > moment


async def test_production_refuses_plain_http_and_private_addresses_at_registration_and_delivery(
        referral: httpx.AsyncClient, site: Site, receiver: Receiver, fast: ReferralSettings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = _path()
    registered_before = await _subscribe(referral, site.mamuju, receiver.url(path))  # loopback http: fine in tests
    monkeypatch.setattr(fast, "environment", "production")
    for url in ("http://example.com/hook", "https://127.0.0.1/hook", "https://localhost:8443/hook",
                "https://10.1.2.3/hook", "https://192.168.0.10/hook", "https://169.254.169.254/latest",
                "https://[::1]/hook", "https://[::ffff:10.0.0.1]/hook", "https://100.64.0.1/hook",
                "https://user:pw@example.com/hook", "ftp://example.com/hook"):
        response = await referral.post(SUBSCRIPTIONS, headers=tokens.opd(site.mamuju, [FIELD]),
                                       json={"url": url, "event_types": ["posyandu.referral.created.v1"]})
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["field"] == "url"

    # At delivery time too (DNS may have changed): the attempt is refused and logged, nothing reaches the host.
    await create_referral(referral, site.mamuju_household, spm_field=FIELD, category=CATEGORY)

    async def refused() -> dict[str, Any] | None:
        rows = await _deliveries(referral, site.mamuju, registered_before["id"])
        return rows[0] if rows and rows[0]["attempts"] else None

    attempt = (await eventually(refused, "a refused attempt", timeout=15))["attempts"][0]
    assert attempt["error"].startswith("refused: the URL must use https") and attempt["status_code"] is None
    assert receiver.requests[path] == []

    # An operator's allow-list admits an internal host (https still required).
    monkeypatch.setattr(fast, "webhook_allowed_hosts", frozenset({"10.1.2.3"}))
    allowed = await referral.post(SUBSCRIPTIONS, headers=tokens.opd(site.mamuju, [FIELD]),
                                  json={"url": "https://10.1.2.3/hook", "event_types": list(WEBHOOK_EVENT_TYPES)})
    assert allowed.status_code == 201, allowed.text
    for subscription_id in (allowed.json()["id"], registered_before["id"]):
        assert (await referral.delete(f"{SUBSCRIPTIONS}/{subscription_id}",
                                      headers=tokens.admin())).status_code == 204


async def test_the_delivery_log_pages_through_attempts_and_replay_sends_again_with_the_same_id(
        referral: httpx.AsyncClient, site: Site, receiver: Receiver, fast: ReferralSettings) -> None:
    path = _path()
    receiver.failures_left[path] = 1
    subscription = await _subscribe(referral, site.mamuju, receiver.url(path))
    made = await create_referral(referral, site.mamuju_household, spm_field=FIELD, category=CATEGORY)
    await _act(referral, site.mamuju, made["id"], "accept")
    log = await _settled(referral, site.mamuju, subscription["id"], 2)
    assert [len(d["attempts"]) for d in log] == [2, 1]
    assert log[0]["attempts"][0]["status_code"] == 500 and log[0]["attempts"][1]["status_code"] == 204

    url = f"{SUBSCRIPTIONS}/{subscription['id']}/deliveries"
    first = await referral.get(url, params={"limit": 1}, headers=tokens.opd(site.mamuju, [FIELD]))
    assert first.status_code == 200 and first.json()["next_cursor"]
    second = await referral.get(url, params={"limit": 1, "cursor": first.json()["next_cursor"]},
                                headers=tokens.opd(site.mamuju, [FIELD]))
    assert [d["id"] for d in first.json()["items"] + second.json()["items"]] == [log[1]["id"], log[0]["id"]]

    replay = await referral.post(f"{SUBSCRIPTIONS}/{subscription['id']}/replay", json={"delivery_id": log[0]["id"]},
                                 headers=tokens.opd(site.mamuju, [FIELD]))
    assert replay.status_code == 200 and replay.json() == {"replayed": 1}
    # The session's referral service sends every test's deliveries: in a whole run a turn can wait out the 10 s
    # timeout of another test's receiver that is gone, so the replays get more than one turn's time.
    await eventually(lambda: _count(receiver, path, 3), "the replayed delivery", timeout=45)
    again = receiver.accepted(path)[2]
    assert again.headers["webhook-id"] == log[0]["event_id"]
    assert Webhook(subscription["secret"]).verify(again.body, again.headers)["type"] == "posyandu.referral.created.v1"

    since = await referral.post(f"{SUBSCRIPTIONS}/{subscription['id']}/replay",
                                json={"since": log[0]["created_at"]}, headers=tokens.opd(site.mamuju, [FIELD]))
    assert since.json() == {"replayed": 2}
    await eventually(lambda: _count(receiver, path, 5), "the replay since a time", timeout=45)
    assert [r.headers["webhook-id"] for r in receiver.accepted(path)[3:]] == [d["event_id"] for d in log]

    for bad in ({}, {"delivery_id": 1, "since": "2026-01-01T00:00:00Z"}, {"since": "2026-01-01T00:00:00"}):
        response = await referral.post(f"{SUBSCRIPTIONS}/{subscription['id']}/replay", json=bad,
                                       headers=tokens.opd(site.mamuju, [FIELD]))
        assert response.status_code == 422, response.text
    missing = await referral.post(f"{SUBSCRIPTIONS}/{subscription['id']}/replay", json={"delivery_id": 2**31 - 1},
                                  headers=tokens.opd(site.mamuju, [FIELD]))
    assert missing.status_code == 404
    bad_cursor = await referral.get(url, params={"cursor": "bm9wZQ"}, headers=tokens.opd(site.mamuju, [FIELD]))
    assert bad_cursor.status_code == 400


async def _count(receiver: Receiver, path: str, count: int) -> bool:
    return len(receiver.accepted(path)) >= count


async def test_the_failure_budget_disables_the_subscription_and_tells_the_admin(
        referral: httpx.AsyncClient, site: Site, receiver: Receiver, fast: ReferralSettings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Budget 1: a message whose every attempt failed (here 3 attempts) is given up and the subscription disabled.
    monkeypatch.setattr(fast, "webhook_retry_schedule_seconds", (0.1, 0.1))
    path = _path()
    receiver.failures_left[path] = 10**6
    subscription = await _subscribe(referral, site.mamuju, receiver.url(path))
    made = await create_referral(referral, site.mamuju_household, spm_field=FIELD, category=CATEGORY)
    log = await _settled(referral, site.mamuju, subscription["id"], 1)
    assert log[0]["status"] == "failed" and len(log[0]["attempts"]) == 3
    shown = (await referral.get(f"{SUBSCRIPTIONS}/{subscription['id']}",
                                headers=tokens.opd(site.mamuju, [FIELD]))).json()
    assert shown["status"] == "disabled" and shown["disabled_at"]
    assert shown["disabled_reason"].startswith(f"every attempt of message {log[0]['event_id']} failed")
    audit = (await referral.get("/api/v1/audit-log", headers=tokens.admin(),
                                params={"resource_type": "webhook-subscription",
                                        "resource_id": subscription["id"]})).json()["items"]
    assert (audit[0]["action"], audit[0]["actor"]) == ("disable", "system")

    # Disabled: new events are not queued for it; enabling resumes.
    await _act(referral, site.mamuju, made["id"], "accept")
    assert len(await _deliveries(referral, site.mamuju, subscription["id"])) == 1
    receiver.failures_left[path] = 0
    enabled = await referral.post(f"{SUBSCRIPTIONS}/{subscription['id']}/enable",
                                  headers=tokens.opd(site.mamuju, [FIELD]))
    assert enabled.status_code == 200 and enabled.json()["status"] == "active"
    await _act(referral, site.mamuju, made["id"], "start")
    assert (await _settled(referral, site.mamuju, subscription["id"], 2))[-1]["status"] == "succeeded"

    # Budget 2: N failed attempts in a row (of any messages), before any message is given up.
    monkeypatch.setattr(fast, "webhook_retry_schedule_seconds", (0.1,) * 7)
    monkeypatch.setattr(fast, "webhook_max_consecutive_failures", 2)
    receiver.failures_left[path] = 10**6
    await create_referral(referral, site.mamuju_household, spm_field=FIELD, category=CATEGORY)

    async def disabled() -> dict[str, Any] | None:
        row: dict[str, Any] = (await referral.get(f"{SUBSCRIPTIONS}/{subscription['id']}",
                                                  headers=tokens.opd(site.mamuju, [FIELD]))).json()
        return row if row["status"] == "disabled" else None

    assert (await eventually(disabled, "the second budget", timeout=15))["disabled_reason"] \
        == "2 failed attempts in a row"


async def test_another_agency_can_neither_read_nor_manage_a_subscription(
        referral: httpx.AsyncClient, site: Site, receiver: Receiver) -> None:
    subscription = await _subscribe(referral, site.mamuju, receiver.url(_path()))
    other = tokens.opd(site.dumai, [FIELD])
    base = f"{SUBSCRIPTIONS}/{subscription['id']}"
    for method, url, body in (("GET", base, None), ("DELETE", base, None), ("POST", f"{base}/rotate-secret", None),
                              ("POST", f"{base}/enable", None), ("GET", f"{base}/deliveries", None),
                              ("POST", f"{base}/replay", {"since": "2026-01-01T00:00:00Z"})):
        response = await referral.request(method, url, json=body, headers=other)
        assert response.status_code == 404, (method, url, response.text)
    listed = (await referral.get(SUBSCRIPTIONS, headers=other)).json()["items"]
    assert subscription["id"] not in [s["id"] for s in listed]
    # A token of the same agency for another field neither (the subscription carries trantibumlinmas referrals).
    other_field = tokens.opd(site.mamuju, ["sosial"])
    assert (await referral.get(base, headers=other_field)).status_code == 404
    assert subscription["id"] not in [s["id"] for s in (await referral.get(SUBSCRIPTIONS,
                                                                          headers=other_field)).json()["items"]]
    none_of_its_fields = await referral.post(SUBSCRIPTIONS, headers=other_field, json={
        "url": receiver.url(_path()), "event_types": ["posyandu.referral.created.v1"]})
    assert none_of_its_fields.status_code == 403
    assert subscription["id"] in [s["id"] for s in (await referral.get(SUBSCRIPTIONS, headers=tokens.opd(
        site.mamuju, [FIELD]))).json()["items"]]
    # An agency registers for itself only; a kader or pembina not at all; an admin names a known agency.
    foreign = await referral.post(SUBSCRIPTIONS, headers=other, json={
        "agency_id": site.mamuju, "url": receiver.url(_path()), "event_types": ["posyandu.referral.created.v1"]})
    assert foreign.status_code == 403
    for token in (tokens.kader([site.mamuju_household["posyandu_id"]]), tokens.pembina("7602")):
        assert (await referral.get(SUBSCRIPTIONS, headers=token)).status_code == 403
    invalid: list[dict[str, Any]] = [
                {"url": receiver.url("/x"), "event_types": ["posyandu.referral.created.v1"]},
                 {"agency_id": str(uuid.uuid4()), "url": receiver.url("/x"),
                  "event_types": ["posyandu.referral.created.v1"]},
                 {"agency_id": site.mamuju, "url": receiver.url("/x"), "event_types": ["posyandu.registry.x.v1"]},
                 {"agency_id": site.mamuju, "url": receiver.url("/x"), "event_types": []}]
    for body_ in invalid:
        response = await referral.post(SUBSCRIPTIONS, headers=tokens.admin(), json=body_)
        assert response.status_code == 422, (body_, response.text)
    admin_made = await referral.post(SUBSCRIPTIONS, headers=tokens.admin(), json={
        "agency_id": site.dumai, "url": receiver.url(_path()), "event_types": ["posyandu.referral.created.v1"]})
    assert admin_made.status_code == 201 and admin_made.json()["agency_id"] == site.dumai
    assert (await referral.get(f"{SUBSCRIPTIONS}/{admin_made.json()['id']}", headers=other)).status_code == 200
