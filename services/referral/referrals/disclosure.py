"""Which fields of a referral, its history and its notes a caller sees: the one rule every view renders through.

A referral's free text (its reason and outcome, the reason and outcome of each transition, the notes) and the
need's evidence may describe a family's health or welfare: only the two sides of the referral see them, its
posyandu side (the posyandu's kader, an admin) and its assigned agency. The member's full NIK and name
(`member_details`, read from the household service) go to the assigned agency alone. Anyone else who may see the
referral (a pembina of its region) gets every other field, and these as null. Who may see a referral at all is
`access.readable_referrals`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from services.referral.notes.schemas import NotePublic
from services.referral.referrals.access import side_of
from services.referral.referrals.lifecycle import Side, Status
from services.referral.referrals.schemas import ReferralPublic, TransitionPublic
from services.referral.tables import Referral, ReferralNote, ReferralTransition
from shared.auth import Principal
from shared.events.topics import SpmField

#: The fields of each view that only the two sides see (the audit rows name those a read disclosed).
REFERRAL_PRIVATE = ("reason", "outcome", "evidence")
TRANSITION_PRIVATE = ("reason", "outcome")
NOTE_PRIVATE = ("text",)

View = TypeVar("View", ReferralPublic, TransitionPublic, NotePublic)
Public = TypeVar("Public", bound=ReferralPublic)


@dataclass(frozen=True)
class Disclosure:
    """What one caller sees of one referral."""

    side: Side | None

    @classmethod
    def of(cls, principal: Principal, referral: Referral) -> Disclosure:
        return cls(side_of(principal, referral))

    @property
    def free_text(self) -> bool:
        """The free text and the evidence: for the two sides."""
        return self.side is not None

    @property
    def member_details(self) -> bool:
        """The member's full NIK and name: for the assigned agency."""
        return self.side is Side.AGENCY

    def shown(self, private: Iterable[str]) -> list[str]:
        """Which of a view's private fields this caller gets (for the audit row)."""
        return list(private) if self.free_text else []

    @overload
    def referral(self, r: Referral) -> ReferralPublic: ...

    @overload
    def referral(self, r: Referral, model: type[Public], **extra: Any) -> Public: ...

    def referral(self, r: Referral, model: type[ReferralPublic] = ReferralPublic, **extra: Any) -> ReferralPublic:
        view = model(
            id=r.id, need_id=r.need_id, household_id=r.household_id, member_id=r.member_id,
            member_nik_masked=r.member_nik_masked, posyandu_id=r.posyandu_id, village_code=r.village_code,
            spm_field=SpmField(r.spm_field), category=r.category, urgency=r.urgency, origin=r.origin,
            status=Status(r.status), agency_id=r.agency_id, unrouted=r.agency_id is None,
            reason=r.reason, outcome=r.outcome, evidence=r.evidence,
            respond_by=r.respond_by, complete_by=r.complete_by, responded_at=r.responded_at, closed_at=r.closed_at,
            overdue=r.overdue_at is not None and r.closed_at is None, overdue_at=r.overdue_at,
            escalated_at=r.escalated_at, escalated_to_agency_id=r.escalated_to_agency_id,
            need_resolved_at=r.need_resolved_at, version=r.version, created_by=r.created_by,
            created_at=r.created_at, updated_at=r.updated_at, **extra)
        hidden = [*([] if self.free_text else REFERRAL_PRIVATE),
                  *([] if self.member_details else ["member_details"])]
        return view.model_copy(update={name: None for name in hidden if name in type(view).model_fields})

    def transitions(self, rows: Iterable[ReferralTransition]) -> list[TransitionPublic]:
        return [self._hide(TransitionPublic.model_validate(t, from_attributes=True), TRANSITION_PRIVATE)
                for t in rows]

    def notes(self, rows: Iterable[ReferralNote]) -> list[NotePublic]:
        return [self._hide(NotePublic.model_validate(n, from_attributes=True), NOTE_PRIVATE) for n in rows]

    def _hide(self, view: View, private: tuple[str, ...]) -> View:
        return view if self.free_text else view.model_copy(update=dict.fromkeys(private))
