"""The platform tables, each in the database of every service that uses it: outbox (and its broker offsets), inbox,
idempotency keys, the audit log and dead letters.

They live in one MetaData; each service's migrations include the ones it has (PLATFORM_TABLES, or the subset its
tables.py names) beside the service's own tables. Their DDL is in shared/platform_migrations.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import new_metadata

platform_metadata = new_metadata()

outbox = sa.Table(
    "outbox",
    platform_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
)
# The relay reads only unpublished rows: a partial index keeps that cheap however long the history.
sa.Index("ix_outbox_unpublished", outbox.c.id, postgresql_where=outbox.c.published_at.is_(None))
# Sent rows are kept for their topic's retention; the purge finds the expired ones of a topic by this index.
sa.Index("ix_outbox_sent", outbox.c.topic, outbox.c.published_at, postgresql_where=outbox.c.published_at.isnot(None))

#: Per topic partition, the end offset the broker acknowledged to the relay (the offset of its last record + 1). A
#: broker that now reports less, or lacks the partition, lost records it had acknowledged: the relay sends the
#: retained rows of that topic again (shared/outbox.py).
outbox_offsets = sa.Table(
    "outbox_offsets",
    platform_metadata,
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("kafka_partition", sa.Integer, primary_key=True),
    sa.Column("end_offset", sa.BigInteger, nullable=False),
)

inbox = sa.Table(
    "inbox",
    platform_metadata,
    sa.Column("consumer_group", sa.Text, primary_key=True),
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# The retention clean-up finds an event type's expired rows by this index (shared/retention.py).
sa.Index("ix_inbox_event_type_processed_at", inbox.c.event_type, inbox.c.processed_at)

idempotency_keys = sa.Table(
    "idempotency_keys",
    platform_metadata,
    sa.Column("principal", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("response", JSONB),
    sa.Column("headers", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# The retention clean-up finds expired keys by this index.
sa.Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

audit_log = sa.Table(
    "audit_log",
    platform_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("actor_role", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("resource_type", sa.Text, nullable=False),
    sa.Column("resource_id", sa.Text, nullable=False),
    #: The person or household the data is about, so a data subject can ask who read their data.
    sa.Column("subject_ref", sa.Text),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text),
    sa.Column("fields", JSONB),
)
sa.Index("ix_audit_log_resource", audit_log.c.resource_type, audit_log.c.resource_id)
sa.Index("ix_audit_log_subject_ref", audit_log.c.subject_ref)
sa.Index("ix_audit_log_actor", audit_log.c.actor, audit_log.c.at)
# The retention clean-up finds (and archives in order) expired rows by this index.
sa.Index("ix_audit_log_at", audit_log.c.at)

#: Every record the consumer runner parked in `posyandu.dlq.<group>`, written in the same step as the DLQ topic
#: (the topic stays the contract for external tools; this table holds what an operator decided about each record).
#: `state` is `pending` until the record is replayed (`replayed`, with the replay's outcome) or discarded with a
#: reason (`discarded`, kept). One row per source record: a redelivered poison record is recorded once.
dead_letters = sa.Table(
    "dead_letters",
    platform_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("consumer_group", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("kafka_partition", sa.Integer, nullable=False),
    sa.Column("kafka_offset", sa.BigInteger, nullable=False),
    sa.Column("key", sa.LargeBinary),
    #: The record's value as it arrived (personal data: read only through the audited inspect).
    sa.Column("payload", sa.LargeBinary, nullable=False),
    #: Null when the record is not a valid CloudEvent.
    sa.Column("event_id", UUID(as_uuid=True)),
    sa.Column("event_type", sa.Text),
    sa.Column("event_time", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("state", sa.Text, nullable=False, server_default="pending"),
    sa.Column("replay_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("replayed_at", sa.DateTime(timezone=True)),
    sa.Column("replay_outcome", sa.Text),
    sa.Column("discarded_at", sa.DateTime(timezone=True)),
    sa.Column("discarded_by", sa.Text),
    sa.Column("discard_reason", sa.Text),
    sa.UniqueConstraint("consumer_group", "topic", "kafka_partition", "kafka_offset"),
    sa.CheckConstraint("state IN ('pending', 'replayed', 'discarded')", name="state"),
)
sa.Index("ix_dead_letters_state", dead_letters.c.state, dead_letters.c.consumer_group, dead_letters.c.id)

#: Every platform table: what a service that publishes, consumes and takes creates with an Idempotency-Key has. A
#: service with fewer names its own in its tables.py (reporting) and passes them to its spec, CLI and migrations.
PLATFORM_TABLES = ("outbox", "outbox_offsets", "inbox", "idempotency_keys", "audit_log", "dead_letters")


def platform_metadata_of(names: tuple[str, ...]) -> MetaData:
    """A MetaData of these platform tables only, with their indexes and constraints (what a service's migrations
    compare its database with)."""
    unknown = set(names) - set(PLATFORM_TABLES)
    if unknown:
        raise ValueError(f"not platform tables: {sorted(unknown)}")
    chosen = new_metadata()
    for name in names:
        platform_metadata.tables[name].to_metadata(chosen)
    return chosen
