"""Events on the internal `posyandu.audit.v1`: another service's read of a household's personal data.

The household service keeps one access log per household (UU PDP right of access): its own reads it audits
itself, the other services' reads reach it as these events, published through the reader's outbox (so none is
lost) and recorded by the household service through its inbox (so a redelivery is recorded once). The subject
and key are the household id. No agency reads this topic: it names officials and the families they looked at.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from shared.events.catalogue import register
from shared.events.personal_data import NotPersonal, Personal
from shared.events.topics import AUDIT_TOPIC

Text = Annotated[str, Field(max_length=500)]
Name = Annotated[str, Field(max_length=200)]


class HouseholdReadData(BaseModel):
    """Who read what of a household, when, why, and in which request: an audit entry of the reading service."""

    household_id: NotPersonal[uuid.UUID]
    read_at: NotPersonal[datetime]
    #: The reader's subject (`sub`): it identifies an official.
    actor: Personal[Name]
    actor_role: NotPersonal[Name]
    #: The reader's organisation: the agency (opd), or the posyandu (kader) the token names.
    actor_agency_id: NotPersonal[uuid.UUID | None] = None
    actor_agency_name: NotPersonal[Name | None] = None
    actor_posyandu_ids: NotPersonal[list[uuid.UUID]] = Field(default_factory=list, max_length=100)
    resource_type: NotPersonal[Name]
    resource_id: NotPersonal[Name]
    #: Which parts of the resource the reader was shown (names of fields, not their values).
    fields: NotPersonal[list[Name]] = Field(default_factory=list, max_length=50)
    #: Why, in the reading service's words; free text, so treated as personal data.
    purpose: Personal[Text]
    request_id: NotPersonal[Name | None] = None


HOUSEHOLD_READ = register("posyandu.audit.household-read.v1", HouseholdReadData, publisher="referral",
                          topic=AUDIT_TOPIC,
                          summary="A caller of another service read a household's personal data (internal: for the "
                                  "household's access log).")
