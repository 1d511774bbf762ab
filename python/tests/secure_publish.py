"""Publishes snapshots given as base64 lines of single-object Avro, for test/integration/security.test.ts:
the Publisher's TLS and SASL settings are its command line's (the names of ``reluwatch consume``'s), the
password comes from RELUWATCH_SASL_PASSWORD as the consumer's does. Prints the delivery stats as JSON;
when the Publisher cannot connect, prints its one-line reason on stderr and exits 2."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys

from reluwatch import Publisher, PublisherConnectError, decode_snapshot


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--ssl-ca-file")
    parser.add_argument("--sasl-mechanism")
    parser.add_argument("--sasl-username")
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    args = parser.parse_args()
    with open(args.input, encoding="ascii") as lines:
        snapshots = [decode_snapshot(base64.b64decode(line)) for line in lines if line.strip()]
    publisher = Publisher(
        args.brokers,
        args.topic,
        run_id=snapshots[0].run_id,
        ssl_ca_file=args.ssl_ca_file,
        sasl_mechanism=args.sasl_mechanism,
        sasl_username=args.sasl_username,
    )
    try:
        publisher.connect(args.connect_timeout)
    except PublisherConnectError as err:
        publisher.close(timeout=1.0)
        print(err, file=sys.stderr)
        return 2
    for snapshot in snapshots:
        publisher.publish_snapshot(snapshot)
    publisher.flush(120.0)
    print(json.dumps(dataclasses.asdict(publisher.close())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
