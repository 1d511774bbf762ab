"""reluwatch.Publisher against the real broker: delivery, partitions shared with the TypeScript SDK,
drop-oldest when the broker is away, delivery errors, and settings passed to librdkafka."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import KafkaException, Producer

from reluwatch import FiringCounts, Publisher, PublisherConnectError, Security, decode_snapshot
from reluwatch.publisher import producer_config
from support import create_topic, read_topic, unique_topic

# Nothing listens on port 1: connections are refused at once.
NOWHERE = "127.0.0.1:1"


def counts(units: int = 4, samples: int = 8) -> FiringCounts:
    return FiringCounts(samples, np.arange(units, dtype=np.uint32) % (samples + 1))


def test_config_has_murmur2_idempotence_and_passes_settings_through() -> None:
    config = producer_config(
        ["b1:9092", "b2:9092"],
        "zstd",
        "trainer-7",
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "ssl.ca.location": "/ca.pem"},
    )
    assert config["bootstrap.servers"] == "b1:9092,b2:9092"
    assert config["partitioner"] == "murmur2_random"
    assert config["enable.idempotence"] is True
    assert config["compression.type"] == "zstd"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["ssl.ca.location"] == "/ca.pem"
    with pytest.raises(ValueError, match="compression must be one of"):
        producer_config("b", "brotli", "c", {})


def test_security_settings_take_the_consumers_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "client.pem", "client.key"))
    for f in (ca, cert, key):
        f.write_text("-")
    monkeypatch.delenv("RELUWATCH_SASL_PASSWORD", raising=False)
    assert Security().librdkafka() == {}
    assert Security(
        ssl_ca_file=str(ca), sasl_mechanism="scram-sha-256", sasl_username="trainer", sasl_password="pw"
    ).librdkafka() == {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(ca),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "trainer",
        "sasl.password": "pw",
    }
    # A client certificate alone implies TLS, as --ssl-cert-file does.
    assert Security(ssl_cert_file=str(cert), ssl_key_file=str(key)).librdkafka() == {
        "security.protocol": "SSL",
        "ssl.certificate.location": str(cert),
        "ssl.key.location": str(key),
    }
    monkeypatch.setenv("RELUWATCH_SASL_PASSWORD", "from-env")
    plain = Security(sasl_mechanism="PLAIN", sasl_username="trainer").librdkafka()
    assert (plain["security.protocol"], plain["sasl.mechanism"], plain["sasl.password"]) == (
        "SASL_PLAINTEXT",
        "PLAIN",
        "from-env",
    )
    insecure = Security(ssl=True, ssl_reject_unauthorized=False).librdkafka()
    assert insecure["enable.ssl.certificate.verification"] is False
    assert insecure["security.protocol"] == "SSL"


def test_security_settings_are_checked_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELUWATCH_SASL_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="sasl_mechanism must be one of plain, scram-sha-256"):
        Publisher(NOWHERE, "t", "run", sasl_mechanism="kerberos", sasl_username="u", sasl_password="p")
    with pytest.raises(ValueError, match="needs sasl_username and sasl_password"):
        Publisher(NOWHERE, "t", "run", sasl_mechanism="scram-sha-512", sasl_username="u")
    with pytest.raises(ValueError, match="need sasl_mechanism"):
        Publisher(NOWHERE, "t", "run", sasl_username="u", sasl_password="p")
    with pytest.raises(ValueError, match="ssl_ca_file: no such file"):
        Publisher(NOWHERE, "t", "run", ssl_ca_file="/nonexistent/ca.pem")


def test_connect_to_no_broker_gives_up_after_its_timeout() -> None:
    publisher = Publisher(NOWHERE, "t", "run")
    started = time.monotonic()
    with pytest.raises(
        PublisherConnectError, match=r"BROKER_UNREACHABLE: no broker in 127\.0\.0\.1:1"
    ) as err:
        publisher.connect(timeout=2.0)
    # Bounded by the timeout, not by librdkafka's own retries (message_timeout_ms is minutes).
    assert time.monotonic() - started < 30
    assert err.value.code == "BROKER_UNREACHABLE"
    assert "\n" not in str(err.value)
    publisher.close(timeout=1.0)


@pytest.mark.broker
def test_connect_returns_once_the_topic_is_served(brokers: str) -> None:
    topic = unique_topic("connect")
    create_topic(brokers, topic, 1)
    with Publisher(brokers, topic, "run") as publisher:
        publisher.connect(timeout=20.0)


def test_librdkafka_gets_the_settings_unchanged() -> None:
    with pytest.raises(KafkaException, match="No such configuration property"):
        Publisher(NOWHERE, "t", "run", ssl_no_such_setting="x")


@pytest.mark.broker
def test_snapshots_arrive_keyed_by_layer_with_run_rank_and_incarnation(brokers: str) -> None:
    topic = unique_topic("publisher")
    create_topic(brokers, topic, 3)
    with Publisher(brokers, topic, run_id="run-py", rank=3, incarnation=42) as publisher:
        for step in (0, 50):
            for layer in ("fc1", "fc2"):
                publisher.publish(layer, counts(), step, micro_batch=1)
        assert publisher.flush(60) == 0
        stats = publisher.stats()
    assert (stats.offered, stats.sent, stats.dropped, stats.failed, stats.queued) == (4, 4, 0, 0, 0)
    got = read_topic(brokers, topic)
    snaps = [(key.decode(), decode_snapshot(value)) for _, key, value in got]
    assert sorted((k, s.step) for k, s in snaps) == [
        ("run-py/fc1", 0), ("run-py/fc1", 50), ("run-py/fc2", 0), ("run-py/fc2", 50)
    ]  # fmt: skip
    assert {(s.rank, s.incarnation, s.micro_batch, s.samples) for _, s in snaps} == {(3, 42, 1, 8)}
    # One layer, one partition: both steps of a layer are in the same one.
    assert len({(k, p) for (p, _, _), (k, _) in zip(got, snaps, strict=True)}) == 2


@pytest.mark.broker
def test_every_key_lands_in_the_partition_the_typescript_sdk_picks(brokers: str, repo: Path) -> None:
    layers = [f"blocks.{i}.mlp.act" for i in range(100)]
    py_topic, ts_topic, crc_topic = (
        unique_topic(n) for n in ("partitions-py", "partitions-ts", "partitions-crc")
    )
    for t in (py_topic, ts_topic, crc_topic):
        create_topic(brokers, t, 8)

    with Publisher(brokers, py_topic, run_id="run-partitions") as publisher:
        for layer in layers:
            publisher.publish(layer, counts(1, 1), 0)
    node = shutil.which("node")
    assert node, "node is not on PATH (make puts it there)"
    out = subprocess.run(
        [
            node,
            "--import",
            "tsx",
            "test/support/publish-snapshots.ts",
            brokers,
            ts_topic,
            "run-partitions",
            *layers,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["sent"] == 100
    # librdkafka's default partitioner, for contrast: what the old snippet did.
    plain = Producer({"bootstrap.servers": brokers})
    for layer in layers:
        plain.produce(crc_topic, key=f"run-partitions/{layer}", value=b"x")
    assert plain.flush(60) == 0

    def partitions(topic: str) -> dict[bytes, int]:
        return {key: p for p, key, _ in read_topic(brokers, topic)}

    py, ts, crc = partitions(py_topic), partitions(ts_topic), partitions(crc_topic)
    assert len(py) == len(ts) == 100
    assert py == ts
    assert len(set(py.values())) == 8
    assert sum(crc[k] != py[k] for k in py) > 50


def publish_handed(publisher: Publisher, steps: range) -> None:
    """Publishes one snapshot per step, each once the sender thread has handed the previous one to
    librdkafka (a burst could overflow a small queue before the sender wakes)."""
    for step in steps:
        publisher.publish("fc", counts(), step)
        deadline = time.monotonic() + 60
        while publisher.stats().queued:
            assert time.monotonic() < deadline, publisher.stats()
            time.sleep(0.01)


@pytest.mark.broker
def test_a_full_queue_drops_the_oldest_and_publish_never_waits_for_the_broker() -> None:
    # No broker: librdkafka takes 10 snapshots into its own queue, the publisher holds 5 more.
    publisher = Publisher(
        NOWHERE, "t", "run", queue_capacity=5, queue_buffering_max_messages=10, message_timeout_ms=600_000
    )
    publish_handed(publisher, range(10))
    assert publisher.stats().in_flight == 10
    for step in range(10, 50):
        publisher.publish("fc", counts(), step)
    stats = publisher.stats()
    # (The sender may hold a few of the queued ones in hand, retrying them: in_flight + queued is exact.)
    assert (stats.offered, stats.in_flight + stats.queued, stats.dropped) == (50, 15, 35)
    assert publisher.flush(0.5) == 15
    stats = publisher.close(timeout=1)
    assert (stats.offered, stats.dropped, stats.sent, stats.failed) == (50, 35, 0, 15)
    assert stats.queued == stats.in_flight == 0
    with pytest.raises(RuntimeError, match="closed"):
        publisher.publish("fc", counts(), 51)


@pytest.mark.broker
def test_delivery_errors_are_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "reluwatch.publisher")
    publisher = Publisher(NOWHERE, "t", "run", message_timeout_ms=300)
    for step in range(15):
        publisher.publish("fc", counts(), step)
    assert publisher.flush(60) == 0
    stats = publisher.close()
    assert (stats.offered, stats.failed, stats.sent, stats.dropped) == (15, 15, 0, 0)
    warnings = [r for r in caplog.records if "cannot deliver snapshots" in r.getMessage()]
    assert len(warnings) == 1
    assert "timed out" in warnings[0].getMessage().lower()


@pytest.mark.broker
def test_sasl_settings_reach_the_client(brokers: str) -> None:
    # The shared broker speaks PLAINTEXT: a SASL handshake fails, so the snapshot is not delivered.
    publisher = Publisher(
        brokers,
        unique_topic("sasl"),
        "run",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="trainer",
        sasl_password="secret",
        message_timeout_ms=3000,
    )
    publisher.publish("fc", counts(), 0)
    assert publisher.flush(60) == 0
    assert publisher.close().failed == 1
