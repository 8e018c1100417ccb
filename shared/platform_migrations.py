"""The platform tables (shared/tables.py) in every service's migration history: their first shape and each change.

Each service keeps its own Alembic history, so a change to a platform table is a revision in each; the operations
live here once, and each service's revision only calls them. The DDL is written out rather than read from
shared/tables.py: a revision is frozen history, and the model moves on. tests/platform/test_platform_schema.py fails
when a service's database at head differs from the model (a change made in one of the two places only).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

_UNSENT = sa.text("published_at IS NULL")
_SENT = sa.text("published_at IS NOT NULL")


def _create_audit_log() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("subject_ref", sa.Text(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "at"], unique=False)
    op.create_index("ix_audit_log_resource", "audit_log", ["resource_type", "resource_id"], unique=False)
    op.create_index("ix_audit_log_subject_ref", "audit_log", ["subject_ref"], unique=False)


def _create_idempotency_keys() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("principal", "scope", "key", name=op.f("pk_idempotency_keys")),
    )


def _create_inbox() -> None:
    op.create_table(
        "inbox",
        sa.Column("consumer_group", sa.Text(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "event_id", name=op.f("pk_inbox")),
    )


def _create_outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["id"], unique=False, postgresql_where=_UNSENT)


#: The platform tables of every service's initial revision, in their first shape (frozen: a later change to one is
#: a function below and a revision per service that calls it), in the order that revision creates them.
_INITIAL_TABLES: dict[str, Callable[[], None]] = {"audit_log": _create_audit_log,
                                                   "idempotency_keys": _create_idempotency_keys,
                                                   "inbox": _create_inbox, "outbox": _create_outbox}


def create_platform_tables(*names: str) -> None:
    """The named platform tables (all four of the initial revision when none are named) as they were first made:
    the outbox, inbox, idempotency keys and audit log with their indexes."""
    for name in names or tuple(_INITIAL_TABLES):
        _INITIAL_TABLES[name]()


def drop_platform_tables(*names: str) -> None:
    """Drop the named platform tables (all four of the initial revision when none are named) with their indexes."""
    for name in reversed(names or tuple(_INITIAL_TABLES)):
        op.drop_table(name)


def drop_unused_platform_tables(*names: str) -> None:
    """Drop platform tables a service never uses, with their indexes; refused (the migration fails and changes
    nothing) while one of them holds a row, since that row would be lost and means the service did use the table."""
    if not op.get_context().as_sql:
        bind = op.get_bind()
        used = [name for name in names
                if bind.execute(sa.text(f'SELECT EXISTS (SELECT FROM "{name}")')).scalar()]
        if used:
            raise RuntimeError(f"refusing to drop the platform tables {used}: they hold rows")
    for name in names:
        op.drop_table(name)


def add_outbox_offsets() -> None:
    """The end offset the broker acknowledged per topic partition (so a relay sees a broker that lost its data),
    and an index by topic and send time for the purge of sent rows past their topic's retention."""
    op.create_table(
        "outbox_offsets",
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("end_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "kafka_partition", name=op.f("pk_outbox_offsets")),
    )
    op.create_index("ix_outbox_sent", "outbox", ["topic", "published_at"], unique=False, postgresql_where=_SENT)


def drop_outbox_offsets() -> None:
    op.drop_index("ix_outbox_sent", table_name="outbox", postgresql_where=_SENT)
    op.drop_table("outbox_offsets")


#: The indexes the retention clean-up's age predicates use (shared/retention.py); the outbox's is ix_outbox_sent.
_RETENTION_INDEXES = (("ix_inbox_event_type_processed_at", "inbox", ["event_type", "processed_at"]),
                      ("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"]),
                      ("ix_audit_log_at", "audit_log", ["at"]))


def add_retention_indexes(*tables: str) -> None:
    """Of the named tables (all three when none are named). Built CONCURRENTLY (outside the migration's
    transaction): on a production audit log of years, a plain CREATE INDEX would block every request's audit insert
    for as long as the build takes."""
    with op.get_context().autocommit_block():
        for name, table, columns in _RETENTION_INDEXES:
            if not tables or table in tables:
                op.create_index(name, table, columns, unique=False, postgresql_concurrently=True, if_not_exists=True)


def drop_retention_indexes() -> None:
    with op.get_context().autocommit_block():
        for name, table, _ in _RETENTION_INDEXES:
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


def add_dead_letters() -> None:
    """The dead letters the consumer runner parked, with what an operator decided about each (shared/tables.py)."""
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("consumer_group", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=True),
        sa.Column("event_type", sa.Text(), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("replay_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replay_outcome", sa.Text(), nullable=True),
        sa.Column("discarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("discarded_by", sa.Text(), nullable=True),
        sa.Column("discard_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'replayed', 'discarded')", name=op.f("ck_dead_letters_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("consumer_group", "topic", "kafka_partition", "kafka_offset",
                            name=op.f("uq_dead_letters_consumer_group_topic_kafka_partition_kafka_offset")),
    )
    op.create_index("ix_dead_letters_state", "dead_letters", ["state", "consumer_group", "id"], unique=False)


def drop_dead_letters() -> None:
    op.drop_index("ix_dead_letters_state", table_name="dead_letters")
    op.drop_table("dead_letters")
