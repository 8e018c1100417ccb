"""The referral lifecycle (FHIR Task states): which action moves which state, and which side may take it.

`received` is optional: an agency may accept or reject straight from `requested` (the acknowledgement is for
agencies that triage before deciding). A reassignment hands the referral to another agency of the same field
and puts it back to `requested` with fresh deadlines.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Status(StrEnum):
    DRAFT = "draft"
    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


CLOSED = frozenset({Status.REJECTED, Status.COMPLETED, Status.FAILED, Status.CANCELLED})
OPEN = frozenset(Status) - CLOSED


class Side(StrEnum):
    POSYANDU = "posyandu"
    AGENCY = "agency"


class Action(StrEnum):
    SUBMIT = "submit"
    RECEIVE = "receive"
    ACCEPT = "accept"
    REJECT = "reject"
    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"
    REASSIGN = "reassign"


class Rule(NamedTuple):
    side: Side
    sources: frozenset[Status]
    target: Status
    #: What the body must carry: `reason`, `outcome` or `agency_id`.
    needs: tuple[str, ...] = ()


_S = Status
RULES: dict[Action, Rule] = {
    Action.SUBMIT: Rule(Side.POSYANDU, frozenset({_S.DRAFT}), _S.REQUESTED),
    Action.RECEIVE: Rule(Side.AGENCY, frozenset({_S.REQUESTED}), _S.RECEIVED),
    Action.ACCEPT: Rule(Side.AGENCY, frozenset({_S.REQUESTED, _S.RECEIVED}), _S.ACCEPTED),
    Action.REJECT: Rule(Side.AGENCY, frozenset({_S.REQUESTED, _S.RECEIVED}), _S.REJECTED, ("reason",)),
    Action.START: Rule(Side.AGENCY, frozenset({_S.ACCEPTED}), _S.IN_PROGRESS),
    Action.COMPLETE: Rule(Side.AGENCY, frozenset({_S.IN_PROGRESS}), _S.COMPLETED, ("outcome",)),
    Action.FAIL: Rule(Side.AGENCY, frozenset({_S.ACCEPTED, _S.IN_PROGRESS}), _S.FAILED, ("reason",)),
    Action.CANCEL: Rule(Side.POSYANDU, frozenset({_S.DRAFT, _S.REQUESTED, _S.RECEIVED, _S.ACCEPTED,
                                                  _S.IN_PROGRESS}), _S.CANCELLED, ("reason",)),
    Action.REASSIGN: Rule(Side.AGENCY, frozenset({_S.REQUESTED, _S.RECEIVED, _S.ACCEPTED}), _S.REQUESTED,
                          ("agency_id", "reason")),
}

#: The agency's first answer: it meets the response deadline.
RESPONSES = frozenset({Action.RECEIVE, Action.ACCEPT, Action.REJECT})


class LifeEventClosure(StrEnum):
    """Why the service itself closes an open referral when the household records a life event (README: "Life
    events"): the referral ends `cancelled` (FHIR: the task is no longer needed), acted by the system, the reason the
    action of its history entry and of its event, so the agency reads it on its field topic."""

    DECEASED = "deceased"
    MOVED_OUT = "moved-out"
    HOUSEHOLD_CLOSED = "household-closed"
