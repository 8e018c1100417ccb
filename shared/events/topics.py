"""Kafka topic names: the one list used by the code, the AsyncAPI documents and the Kubernetes topics."""

from enum import StrEnum


class SpmField(StrEnum):
    """The six fields of the minimum service standards (SPM), exactly as the public contract spells them."""

    PENDIDIKAN = "pendidikan"
    KESEHATAN = "kesehatan"
    PEKERJAAN_UMUM = "pekerjaan-umum"
    PERUMAHAN_RAKYAT = "perumahan-rakyat"
    TRANTIBUMLINMAS = "trantibumlinmas"
    SOSIAL = "sosial"


REGISTRY_TOPIC = "posyandu.registry.v1"
HOUSEHOLD_TOPIC = "posyandu.household.v1"


def referral_topic(field: SpmField | str) -> str:
    """The topic that carries the referral events of one SPM field."""
    return f"posyandu.referral.{SpmField(field).value}.v1"


REFERRAL_TOPICS: dict[SpmField, str] = {field: referral_topic(field) for field in SpmField}

#: Internal: the other services' reads of a household's personal data, for the household's access log. Keyed by
#: household id. No agency gets an ACL on it, and reporting does not consume it (it names officials and families).
AUDIT_TOPIC = "posyandu.audit.v1"

#: Every topic of the public contract (DESIGN.md §2) an event of the catalogue can be published to; reporting
#: consumes them all.
ALL_TOPICS: tuple[str, ...] = (REGISTRY_TOPIC, HOUSEHOLD_TOPIC, *REFERRAL_TOPICS.values())
#: Topics between the services only, outside the public contract: no agency reads them, reporting neither.
INTERNAL_TOPICS: tuple[str, ...] = (AUDIT_TOPIC,)

#: How many days Kafka keeps each topic's records (None: forever), as deploy/k8s/base/kafka/topics.yaml sets
#: `retention.ms`. The outbox keeps sent events as long, so that a broker that lost them gets them back.
RETENTION_DAYS: dict[str, int | None] = {REGISTRY_TOPIC: None, HOUSEHOLD_TOPIC: 30,
                                         **dict.fromkeys(REFERRAL_TOPICS.values(), 365),
                                         # Transport only: the household service keeps the access log itself.
                                         AUDIT_TOPIC: 30}


def dead_letter_topic(consumer_group: str) -> str:
    """Where a consumer group parks the records it could not process."""
    return f"posyandu.dlq.{consumer_group}"

#: How many days Kafka keeps each dead-letter topic's records (deploy/k8s/base/kafka/topics.yaml): a dead letter can
#: be replayed through the inbox that long after it was parked.
DEAD_LETTER_RETENTION_DAYS = 30
