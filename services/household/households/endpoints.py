"""HTTP routes for households and their members."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.household.access import ReadBasis, list_scope, readable_household
from services.household.dates import age_in_years
from services.household.households import service
from services.household.households.schemas import (
    HouseholdCreate,
    HouseholdMove,
    HouseholdPublic,
    HouseholdUpdate,
    MemberCreate,
    MemberPublic,
    MemberUpdate,
)
from services.household.identifiers import mask_kk, mask_nik
from services.household.needs.service import refresh_needs
from services.household.profiles.schemas import Disability, Relationship, Sex
from services.household.tables import Household, Member
from shared.audit import record_read
from shared.auth import Principal, PrincipalDep, Role, Writer
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.region_codes import REGION_PREFIX_PATTERN
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/households", tags=["households"])



def member_public(m: Member, basis: ReadBasis, today: date) -> MemberPublic:
    full = basis.full_nik
    return MemberPublic(id=m.id, household_id=m.household_id, nik=(m.nik if full else mask_nik(m.nik)) if m.nik
                        else None, nik_masked=not full and m.nik is not None, name=m.name, sex=Sex(m.sex),
                        birth_date=m.birth_date, age_years=age_in_years(m.birth_date, today),
                        life_cycle_group=service.life_cycle_group(m.birth_date, today),
                        relationship=Relationship(m.relationship), pregnant=m.pregnant,
                        expected_delivery_date=m.expected_delivery_date, disability=Disability(m.disability),
                        nik_region_mismatch=m.nik_region_mismatch, status=m.status, version=m.version)


def household_public(h: Household, members: list[Member], basis: ReadBasis) -> HouseholdPublic:
    today = date.today()
    return HouseholdPublic(
        id=h.id, kk_number=h.kk_number if basis.full_nik else mask_kk(h.kk_number), village_code=h.village_code,
        posyandu_id=h.posyandu_id, address=h.address, rt=h.rt, rw=h.rw, latitude=h.latitude, longitude=h.longitude,
        status=h.status, needs_reassignment=h.needs_reassignment, version=h.version, created_at=h.created_at,
        updated_at=h.updated_at, members=[member_public(m, basis, today) for m in members])


async def _detail(session: SessionDep, principal: Principal, household_id: uuid.UUID, *, purpose: str | None = None,
                  status_code: int = 200) -> Response:
    household, basis = await readable_household(session, principal, household_id)
    members = await service.members_of(session, household.id)
    await record_read(session, principal, resource_type="household", resource_id=str(household.id),
                      subject_ref=str(household.id), purpose=purpose or basis.purpose,
                      fields=["kk_number", "members", *(["nik"] if basis.full_nik else [])])
    return json_response(household_public(household, members, basis), status_code,
                         headers={"ETag": etag(household.version), "Location": f"/api/v1/households/{household.id}"})


@router.post("", status_code=201, response_model=HouseholdPublic, summary="Register a household with its members",
             responses={409: {"description": "KK number or NIK already registered"}})
async def register_household(payload: HouseholdCreate, session: SessionDep, principal: Writer,
                             idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        household, members = await service.register(session=session, principal=principal, payload=payload)
        await refresh_needs(session, household, registered=members)
        return await _detail(session, principal, household.id, purpose="registration by the kader", status_code=201)

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /households",
                            payload=payload, create=create)


@router.get("", response_model=Page[HouseholdPublic],
            summary="Search households you may see (by KK, NIK, member name, village, posyandu)")
async def list_households(
    session: SessionDep,
    principal: PrincipalDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    kk: Annotated[str | None, Query(pattern=r"^[0-9]{16}$")] = None,
    nik: Annotated[str | None, Query(pattern=r"^[0-9]{16}$")] = None,
    name: Annotated[str | None, Query(min_length=2, max_length=100)] = None,
    village: Annotated[str | None, Query(pattern=REGION_PREFIX_PATTERN)] = None,
    posyandu: uuid.UUID | None = None,
) -> Any:
    after = decode_cursor(cursor, uuid.UUID)
    rows = await service.search(session=session, scope=list_scope(principal), kk=kk, nik=nik, name=name,
                                village=village, posyandu=posyandu, after=after[0] if after else None, limit=limit)
    households, next_cursor = page_of(rows, limit, lambda h: (h.id,))
    items = []
    for household in households:
        _, basis = await readable_household(session, principal, household.id)
        items.append(household_public(household, await service.members_of(session, household.id), basis))
        await record_read(session, principal, resource_type="household", resource_id=str(household.id),
                          subject_ref=str(household.id), purpose=f"search: {basis.purpose}", fields=["members"])
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{household_id}", response_model=HouseholdPublic, summary="A household with its members (audited)")
async def get_household(household_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Response:
    return await _detail(session, principal, household_id)


@router.patch("/{household_id}", response_model=HouseholdPublic, summary="Update a household (honours If-Match)")
async def update_household(household_id: uuid.UUID, payload: HouseholdUpdate, session: SessionDep,
                           principal: Writer, if_match: IfMatch = None) -> Response:
    household = await service.update(session=session, principal=principal, household_id=household_id,
                                     payload=payload, if_match=if_match)
    return await _detail(session, principal, household.id, purpose="update by the kader")


@router.post("/{household_id}/move", response_model=HouseholdPublic, summary="Move a household to another posyandu")
async def move_household(household_id: uuid.UUID, payload: HouseholdMove, session: SessionDep, principal: Writer,
                         if_match: IfMatch = None) -> Response:
    household = await service.move(session=session, principal=principal, household_id=household_id,
                                   payload=payload, if_match=if_match)
    members = await service.members_of(session, household.id)
    basis = ReadBasis("move", full_nik=household.posyandu_id in principal.posyandu_ids)
    return json_response(household_public(household, members, basis), headers={"ETag": etag(household.version)})


@router.post("/{household_id}/members", status_code=201, response_model=MemberPublic, summary="Add a member")
async def add_member(household_id: uuid.UUID, payload: MemberCreate, session: SessionDep, principal: Writer,
                     idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        household, member = await service.add_member(session=session, principal=principal,
                                                     household_id=household_id, payload=payload)
        await refresh_needs(session, household)
        basis = ReadBasis("write", full_nik=principal.role is Role.KADER)
        return json_response(member_public(member, basis, date.today()), 201, headers={"ETag": etag(member.version)})

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /households/{household_id}/members", payload=payload, create=create)


@router.patch("/{household_id}/members/{member_id}", response_model=MemberPublic, summary="Update a member")
async def update_member(household_id: uuid.UUID, member_id: uuid.UUID, payload: MemberUpdate, session: SessionDep,
                        principal: Writer, if_match: IfMatch = None) -> Response:
    household, member = await service.update_member(session=session, principal=principal, household_id=household_id,
                                                    member_id=member_id, payload=payload, if_match=if_match)
    await refresh_needs(session, household)
    basis = ReadBasis("write", full_nik=principal.role is Role.KADER)
    return json_response(member_public(member, basis, date.today()), headers={"ETag": etag(member.version)})
