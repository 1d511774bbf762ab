"""Shared fixtures: the repository's paths, a real Kafka broker, unique topics, and reading topics back."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from support import REPO


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


LOCAL_BROKER = "127.0.0.1:9092"


def kafka_answers(address: str) -> bool:
    """Whether a Kafka broker answers a metadata request at ``address`` within a few seconds."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    quiet = logging.getLogger("reluwatch.tests.kafka-probe")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    admin = AdminClient({"bootstrap.servers": address, "logger": quiet})
    try:
        admin.list_topics(timeout=5)
        return True
    except KafkaException:
        return False


@pytest.fixture(scope="session")
def brokers() -> str:
    """KAFKA_BROKERS; else whatever Kafka answers on 127.0.0.1:9092 (another checkout's, or
    `make kafka-up`'s); else the local broker of deploy/kafka-local, started. The TypeScript suite
    finds its broker the same way (test/support/broker.ts)."""
    env = os.environ.get("KAFKA_BROKERS", "").strip()
    if env:
        return env
    if kafka_answers(LOCAL_BROKER):
        return LOCAL_BROKER
    out = subprocess.run(
        [str(REPO / "deploy/kafka-local/kafka.sh"), "up"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return out.stdout.strip().splitlines()[-1]
