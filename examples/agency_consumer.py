"""A minimal agency (OPD) integration: read one SPM field's referral topic and print each referral.

The starting point for connecting an agency's own system. It uses its own consumer group (`agency.<name>`), so it
reads every referral of the field independently of any other reader, and commits its offsets only after a
record was handled (at least once: the CloudEvent `id` is the dedup key if your handler writes somewhere).
Events carry references, category, urgency, status and deadlines, no personal data (every agency of the field
may read the topic); the assigned agency reads the details (the member's NIK and name, the reason, the need's
evidence) through `GET /api/v1/referrals/{referral_id}` with its token (`Accept: application/fhir+json` for FHIR).

    python examples/agency_consumer.py --field kesehatan --name dinkes-3171 --bootstrap-servers 127.0.0.1:9092
    # against a Strimzi Kafka with the agency's KafkaUser:
    python examples/agency_consumer.py --field kesehatan --name dinkes-3171 \\
        --bootstrap-servers posyandu-kafka-bootstrap:9093 --security-protocol SASL_SSL \\
        --sasl-mechanism SCRAM-SHA-512 --sasl-username dinkes-3171 --ssl-cafile ca.crt   # password: KAFKA_SASL_PASSWORD

Every flag can also come from the environment (`KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_SECURITY_PROTOCOL`,
`KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`, `KAFKA_SSL_CAFILE`, `AGENCY_NAME`,
`SPM_FIELD`). It needs only `aiokafka`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer

FIELDS = ("pendidikan", "kesehatan", "pekerjaan-umum", "perumahan-rakyat", "trantibumlinmas", "sosial")


def parse_args() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--field", choices=FIELDS, default=env("SPM_FIELD"), required=env("SPM_FIELD") is None)
    parser.add_argument("--name", default=env("AGENCY_NAME"), required=env("AGENCY_NAME") is None,
                        help="the agency's short name; the consumer group is agency.<name>")
    parser.add_argument("--bootstrap-servers", default=env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--security-protocol", default=env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
                        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"))
    parser.add_argument("--sasl-mechanism", default=env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"))
    parser.add_argument("--sasl-username", default=env("KAFKA_SASL_USERNAME"))
    parser.add_argument("--sasl-password", default=env("KAFKA_SASL_PASSWORD"),
                        help="better given as KAFKA_SASL_PASSWORD than on the command line")
    parser.add_argument("--ssl-cafile", default=env("KAFKA_SSL_CAFILE"))
    parser.add_argument("--from-beginning", action="store_true",
                        help="a new group starts at the earliest record (default: only new referrals)")
    parser.add_argument("--fetch-max-wait-ms", type=int, default=int(env("KAFKA_FETCH_MAX_WAIT_MS", "100")))
    return parser.parse_args()


def consumer_for(args: argparse.Namespace) -> AIOKafkaConsumer:
    options: dict[str, Any] = {"bootstrap_servers": args.bootstrap_servers,
                               "security_protocol": args.security_protocol}
    if args.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=args.ssl_cafile)
    if args.security_protocol.startswith("SASL"):
        options.update(sasl_mechanism=args.sasl_mechanism, sasl_plain_username=args.sasl_username,
                       sasl_plain_password=args.sasl_password)
    return AIOKafkaConsumer(f"posyandu.referral.{args.field}.v1", group_id=f"agency.{args.name}",
                            client_id=f"agency.{args.name}", enable_auto_commit=False,
                            auto_offset_reset="earliest" if args.from_beginning else "latest",
                            fetch_max_wait_ms=args.fetch_max_wait_ms, **options)


def describe(event: dict[str, Any]) -> str:
    data = event.get("data", {})
    return (f"{event.get('time')} {event.get('type')} referral={data.get('referral_id')} "
            f"status={data.get('status')} category={data.get('category')} urgency={data.get('urgency')} "
            f"village={data.get('village_code')} agency={data.get('agency_id')} respond_by={data.get('respond_by')} "
            f"complete_by={data.get('complete_by')} member={data.get('member_id')}")


async def main() -> None:
    args = parse_args()
    consumer = consumer_for(args)
    await consumer.start()
    try:
        async for record in consumer:
            try:
                event = json.loads(record.value or b"{}")
            except json.JSONDecodeError:
                print(f"skipping a record that is not JSON at offset {record.offset}")
            else:
                # Replace this print with your system's handling (dedup on event["id"]).
                print(describe(event), flush=True)
            await consumer.commit()
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())
