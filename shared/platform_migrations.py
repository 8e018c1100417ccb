"""Schema changes to the platform tables (shared/tables.py) that every service's migration history applies alike.

Each service keeps its own Alembic history, so a change to a platform table is a revision in each; the operations
live here once, and each service's revision only calls them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

_SENT = sa.text("published_at IS NOT NULL")


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


def add_retention_indexes() -> None:
    """Built CONCURRENTLY (outside the migration's transaction): on a production audit log of years, a plain CREATE
    INDEX would block every request's audit insert for as long as the build takes."""
    with op.get_context().autocommit_block():
        for name, table, columns in _RETENTION_INDEXES:
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
