"""Helpers for tests against the real broker and the TypeScript consumer."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]


def unique_topic(prefix: str) -> str:
    return f"test.py-{prefix}.{uuid.uuid4().hex[:8]}"


def create_topic(brokers: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30).values():
        future.result(timeout=60)


def read_topic(brokers: str, topic: str, timeout: float = 60.0) -> list[tuple[int, bytes, bytes]]:
    """Every message on the topic now, as (partition, key, value): up to the high watermarks."""
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"{topic}.reader.{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        pending: dict[int, int] = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                pending[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in pending])
        out: list[tuple[int, bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: partitions {sorted(pending)} not read to their end")
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.partition() in pending and msg.offset() < pending[msg.partition()]:
                out.append((msg.partition(), msg.key(), msg.value()))
                if msg.offset() + 1 >= pending[msg.partition()]:
                    del pending[msg.partition()]
        return out
    finally:
        consumer.close()
