"""The access log's entry: the audit entry of every service, with where the read happened and the reader's
organisation."""

from __future__ import annotations

import uuid

from pydantic import Field

from shared.audit import AuditEntry


class AccessLogEntry(AuditEntry):
    #: The service in which the read happened (`household` for this service's own reads).
    service: str
    #: The reader's agency (an opd) and posyandu (a kader), as the reading service knew them; this service's own
    #: audit rows do not record them (None, []).
    actor_agency_id: uuid.UUID | None = None
    actor_agency_name: str | None = None
    actor_posyandu_ids: list[uuid.UUID] = Field(default_factory=list)
