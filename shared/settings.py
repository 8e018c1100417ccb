"""Settings every service reads from its environment (pydantic-settings)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The HS256 secret of the local stack and the tests; refused in production.
DEV_JWT_SECRET = "posyandu-local-development-secret-do-not-use-in-production"  # noqa: S105 (public on purpose)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceSettings(BaseSettings):
    """Database, broker, auth and HTTP settings shared by all services."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    environment: Literal["local", "test", "production"] = "local"
    log_level: str = "INFO"
    # Loopback by default: the local stack's tokens are signed with a published secret, so a service must not be
    # reachable from the network unless asked. A container sets HOST=0.0.0.0 (its own network namespace).
    host: str = Field(default="127.0.0.1", pattern=r"^[0-9A-Za-z.:-]+$", max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    # Worker processes of `serve` (uvicorn workers), each with its own pool, relay and consumers, as replicas have:
    # one process uses at most one core, so a pod with N cores' CPU limit runs N.
    web_concurrency: int = Field(default=1, ge=1, le=32)

    database_url: str = "postgresql://postgres@localhost:5432/postgres"
    # The most connections a process holds; each is opened when the load first needs it, then kept.
    database_pool_size: int = Field(default=20, ge=1, le=200)
    # asyncpg's statement cache breaks behind a transaction-mode pooler (PgBouncer): 0 turns it off.
    database_statement_cache_size: int = Field(default=100, ge=0)
    # Bounds on waiting for the database, so that a server or path that goes silent fails requests (503) instead of
    # hanging them. The command timeout is per statement: keep it above the slowest legitimate one (the reporting
    # national queries, the household import's bulk statements).
    database_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    database_command_timeout_seconds: float = Field(default=60.0, gt=0)
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # A pooled connection idle this long is pinged on checkout (a path can die while it sits in the pool); one back
    # from a request that just ended is used as is: a ping on every checkout cost each request a round trip.
    database_ping_after_idle_seconds: float = Field(default=1.0, ge=0)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    # The embedded broker answers a fetch only when this wait expires: keep it low locally.
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=1, le=10_000)
    # A subscription that may lag (a projection such as reporting's, not a hop of the referral loop) lets the
    # broker wait this long, or for this many bytes, before it answers: each round applies more events in one
    # transaction, and the consumer and the broker poll less (bench/analysis.md, "Projections fetch in rounds").
    projection_fetch_max_wait_ms: int = Field(default=100, ge=1, le=10_000)
    projection_fetch_min_bytes: int = Field(default=1_048_576, ge=1)
    kafka_request_timeout_ms: int = Field(default=15_000, ge=1_000)

    # Unset: the development secret outside production, none in production (which refuses it).
    auth_jwt_secret: str | None = None
    auth_jwks_url: str | None = None
    auth_algorithms: str = "HS256"
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_jwks_refresh_seconds: int = Field(default=300, ge=10)
    # A token with an unknown `kid` forces a JWKS refetch at most this often (rotation vs. hammering the IdP).
    auth_jwks_refetch_cooldown_seconds: float = Field(default=30.0, ge=0)

    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Sent rows are kept this many days for every topic; unset, as long as each topic keeps its records in Kafka
    # (shared/events/topics.py RETENTION_DAYS). A broker that lost its data gets the kept rows again.
    outbox_retention_days: float | None = Field(default=None, gt=0)
    consumer_max_attempts: int = Field(default=5, ge=1, le=50)

    # Retention (shared/retention.py): how often one replica cleans the platform tables, in batches this large,
    # pausing between batches, never waiting longer than the lock timeout for a table lock.
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    retention_batch_size: int = Field(default=1000, ge=1, le=50_000)
    retention_batch_pause_seconds: float = Field(default=0.05, ge=0, le=60)
    retention_lock_timeout_ms: int = Field(default=1000, ge=1, le=600_000)
    # A retry with the same Idempotency-Key later than this is a new create: a month covers a kader's phone that
    # queued a create at the monthly posyandu day and syncs at the next one.
    idempotency_key_retention_days: float = Field(default=30.0, gt=0)
    # Audit rows (who read or changed personal data) are kept five years, then archived (if a directory is set) and
    # deleted: a policy default for the data controller under UU 27/2022 (README, "Retention of the platform
    # tables").
    audit_retention_days: float = Field(default=1826.0, gt=0)
    audit_archive_dir: str | None = None

    @property
    def algorithms(self) -> list[str]:
        return [a.strip() for a in self.auth_algorithms.split(",") if a.strip()]

    @model_validator(mode="after")
    def _refuse_unsafe_auth(self) -> ServiceSettings:
        if self.auth_jwt_secret is None and self.environment != "production":
            self.auth_jwt_secret = DEV_JWT_SECRET
        if self.auth_jwt_secret == DEV_JWT_SECRET and not _is_loopback(self.host):
            raise ValueError(f"the development secret is public: a service accepting it must listen on loopback "
                             f"only, not HOST={self.host}; set AUTH_JWT_SECRET or AUTH_JWKS_URL")
        if self.environment == "production":
            if self.auth_jwt_secret == DEV_JWT_SECRET or (self.auth_jwt_secret and not self.auth_jwks_url
                                                          and len(self.auth_jwt_secret) < 32):
                raise ValueError("production needs AUTH_JWKS_URL (or a strong AUTH_JWT_SECRET), "
                                 "never the development secret")
            if "HS256" in self.algorithms and self.auth_jwks_url:
                raise ValueError("production with a JWKS URL must not accept HS256 tokens")
        if not self.auth_jwt_secret and not self.auth_jwks_url:
            raise ValueError("set AUTH_JWKS_URL or AUTH_JWT_SECRET")
        return self
