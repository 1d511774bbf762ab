"""Publishes ActivationSnapshots to Kafka without ever holding up a training step.

``publish()`` validates and encodes in the caller's thread, appends to a bounded queue and returns; a
sender thread moves the queue into an idempotent confluent-kafka producer. When the broker is slow or
down the queue fills and the oldest snapshot is dropped (and counted) to make room: the trainer never
waits for Kafka. Keys are partitioned with murmur2, as the Java client and the TypeScript SDK do, so
a layer lands in the same partition whichever language published it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from .codec import encode_snapshot
from .snapshot import FiringCounts, Snapshot

log = logging.getLogger("reluwatch.publisher")

COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
# The names and values `reluwatch consume --sasl-mechanism` takes, and what librdkafka calls them.
SASL_MECHANISMS = {"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"}
# The process's start, in ms since the epoch: the default incarnation, newer after every restart.
_PROCESS_START_MS = int(time.time() * 1000)


@dataclass(frozen=True)
class PublisherStats:
    """``offered = sent + dropped + failed + queued + in_flight`` at any time."""

    offered: int
    """Valid snapshots handed to publish()."""
    sent: int
    """Snapshots the broker acknowledged."""
    dropped: int
    """Evicted from the full queue to make room for a newer one."""
    failed: int
    """Not delivered: a delivery error after the producer's retries, or left unsent by close()."""
    invalid: int
    """Refused by publish() with a ContractError."""
    queued: int
    """Waiting in the publisher's queue."""
    in_flight: int
    """Handed to the producer, not yet acknowledged."""


class CountsPublisher(Protocol):
    """What the probes publish through: a ``Publisher``, or anything with its ``publish``."""

    incarnation: int

    def publish(
        self,
        layer: str,
        counts: FiringCounts,
        step: int,
        *,
        micro_batch: int = 0,
        unit_offset: int = 0,
        layer_units: int | None = None,
        rank: int | None = None,
        time_ms: int | None = None,
    ) -> None: ...

    def close(self, timeout: float = 30.0) -> object: ...


@dataclass(frozen=True)
class Security:
    """TLS and SASL, with the names and meanings of ``reluwatch consume``'s settings (docs/deploy.md):
    any CA, certificate or key file implies ``ssl``; ``sasl_mechanism`` needs a user name and a
    password, and the password falls back to ``RELUWATCH_SASL_PASSWORD`` so it stays out of code."""

    ssl: bool = False
    ssl_ca_file: str | None = None
    ssl_cert_file: str | None = None
    ssl_key_file: str | None = None
    ssl_reject_unauthorized: bool = True
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    def librdkafka(self) -> dict[str, Any]:
        """The librdkafka properties these settings stand for; empty for a plaintext connection."""
        tls = self.ssl or any((self.ssl_ca_file, self.ssl_cert_file, self.ssl_key_file))
        config: dict[str, Any] = {}
        if tls:
            for name, key in (
                ("ssl_ca_file", "ssl.ca.location"),
                ("ssl_cert_file", "ssl.certificate.location"),
                ("ssl_key_file", "ssl.key.location"),
            ):
                path = getattr(self, name)
                if path is None:
                    continue
                if not os.path.isfile(path):
                    raise ValueError(f"{name}: no such file {path!r}")
                config[key] = path
            if not self.ssl_reject_unauthorized:
                config["enable.ssl.certificate.verification"] = False
                config["ssl.endpoint.identification.algorithm"] = "none"
        if self.sasl_mechanism is not None:
            mechanism = SASL_MECHANISMS.get(self.sasl_mechanism.lower())
            if mechanism is None:
                raise ValueError(
                    f"sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}, got {self.sasl_mechanism!r}"
                )
            password = self.sasl_password or os.environ.get("RELUWATCH_SASL_PASSWORD")
            if not self.sasl_username or not password:
                raise ValueError(
                    "sasl_mechanism needs sasl_username and sasl_password (or RELUWATCH_SASL_PASSWORD)"
                )
            config.update(
                {"sasl.mechanism": mechanism, "sasl.username": self.sasl_username, "sasl.password": password}
            )
        elif self.sasl_username or self.sasl_password:
            raise ValueError("sasl_username and sasl_password need sasl_mechanism")
        if tls or self.sasl_mechanism is not None:
            config["security.protocol"] = ("SASL_" if self.sasl_mechanism is not None else "") + (
                "SSL" if tls else "PLAINTEXT"
            )
        return config


class PublisherConnectError(ConnectionError):
    """``Publisher.connect()`` could not reach the topic. ``code`` is the one ``reluwatch consume``
    reports for the same cause (docs/errors.md): ``KAFKA_AUTH_FAILED``, ``KAFKA_TLS_FAILED``,
    ``BROKER_UNREACHABLE`` or ``TOPIC_NOT_FOUND``; the message is one line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _refusal_cause(text: str, code: int | None = None) -> str | None:
    """The error code of a refusal no retry can fix, or None for a transient condition."""
    text = text.lower()
    if code == KafkaError._AUTHENTICATION or "sasl authentication" in text:
        return "KAFKA_AUTH_FAILED"
    if code == KafkaError._SSL or "ssl handshake failed" in text or "certificate verify failed" in text:
        return "KAFKA_TLS_FAILED"
    return None


class _LibrdkafkaLog:
    """librdkafka's log lines, less its repeats of a refusal: librdkafka logs one at every reconnect,
    while the Publisher reports it once, with its code."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def log(self, level: int, msg: str, *args: object) -> None:
        if _refusal_cause(msg % args if args else msg) is None:
            self._logger.log(level, msg, *args)


def producer_config(
    brokers: str | list[str],
    compression: str,
    client_id: str,
    kafka_config: dict[str, Any],
    security: Security | None = None,
) -> dict[str, Any]:
    """The confluent-kafka configuration: reluwatch's fixed choices, the security settings, then the
    caller's librdkafka settings, given with dots or underscores (``socket_timeout_ms`` is
    ``socket.timeout.ms``)."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
    config: dict[str, Any] = {
        "bootstrap.servers": brokers if isinstance(brokers, str) else ",".join(brokers),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        # Java-compatible murmur2 for keyed messages, like kafkajs's default partitioner; librdkafka's
        # own default (CRC32) would put a layer in another partition than the TypeScript SDK does.
        "partitioner": "murmur2_random",
        "compression.type": compression,
        "linger.ms": 20,
        # librdkafka's own queue only holds what is about to be sent; the backlog waits in the
        # publisher's queue, where the oldest snapshot can be dropped for a newer one.
        "queue.buffering.max.messages": 1000,
    }
    if security is not None:
        config.update(security.librdkafka())
    for key, value in kafka_config.items():
        config[key.replace("_", ".")] = value
    return config


class Publisher:
    """An idempotent Kafka producer of one run's snapshots, from one rank.

    ``incarnation`` (default: this process's start time in ms) must be the same on every rank of one
    start of the job and grow at each restart; ``reluwatch.torch.ReluProbe`` agrees on one across a
    ``torch.distributed`` job by itself. TLS and SASL take the names of ``reluwatch consume``'s settings
    (``ssl``, ``ssl_ca_file``, ``sasl_mechanism``, ...: see ``Security``). Other keyword arguments go to
    librdkafka unchanged except for ``_`` becoming ``.``: ``message_timeout_ms``,
    ``queue_buffering_max_messages``. ``connect()`` checks the brokers, the credentials and the topic.
    """

    def __init__(
        self,
        brokers: str | list[str],
        topic: str,
        run_id: str,
        rank: int = 0,
        incarnation: int | None = None,
        compression: str = "zstd",
        *,
        queue_capacity: int = 10_000,
        client_id: str = "reluwatch-publisher",
        ssl: bool = False,
        ssl_ca_file: str | None = None,
        ssl_cert_file: str | None = None,
        ssl_key_file: str | None = None,
        ssl_reject_unauthorized: bool = True,
        sasl_mechanism: str | None = None,
        sasl_username: str | None = None,
        sasl_password: str | None = None,
        **kafka_config: Any,
    ) -> None:
        if not topic:
            raise ValueError("Publisher needs a topic")
        if queue_capacity < 1:
            raise ValueError(f"queue_capacity must be >= 1, got {queue_capacity}")
        self.topic = topic
        self.run_id = run_id
        self.rank = rank
        self.incarnation = process_start_incarnation() if incarnation is None else incarnation
        security = Security(
            ssl=ssl,
            ssl_ca_file=ssl_ca_file,
            ssl_cert_file=ssl_cert_file,
            ssl_key_file=ssl_key_file,
            ssl_reject_unauthorized=ssl_reject_unauthorized,
            sasl_mechanism=sasl_mechanism,
            sasl_username=sasl_username,
            sasl_password=sasl_password,
        )
        self._config = producer_config(brokers, compression, client_id, kafka_config, security)
        self._brokers = self._config["bootstrap.servers"]
        self._config["error_cb"] = self._on_client_error
        # librdkafka's own log lines (connection failures, retries) go to Python logging, not stderr.
        self._config.setdefault("logger", _LibrdkafkaLog(logging.getLogger("reluwatch.kafka")))
        self._producer = Producer(self._config)
        self._capacity = queue_capacity
        self._queue: deque[tuple[str, bytes]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._counts = dict.fromkeys(("offered", "sent", "dropped", "failed", "invalid"), 0)
        self._handed = 0  # produced into librdkafka and not yet reported
        self._failing = False
        # The first refusal no retry fixes (bad credentials, an untrusted certificate): code, reason.
        self._refused: tuple[str, str] | None = None
        self._connecting = False
        self._closed = False
        self._stop = False
        self._sender = threading.Thread(target=self._run, name="reluwatch-publisher", daemon=True)
        self._sender.start()

    # -- the caller's side ------------------------------------------------------------------------

    def connect(self, timeout: float = 30.0) -> None:
        """Waits up to ``timeout`` s until a broker has accepted the connection (TLS and SASL included)
        and served the topic's metadata; raises ``PublisherConnectError`` otherwise, at once when the
        broker refuses the credentials or the certificate. Optional: ``publish()`` never waits for it.
        """
        with self._lock:
            self._connecting = True
        try:
            self._await_topic(timeout)
        finally:
            with self._lock:
                self._connecting = False

    def _await_topic(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            with self._lock:
                refused = self._refused
            if refused is not None:
                raise PublisherConnectError(refused[0], f"{self._brokers}: {refused[1]}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublisherConnectError(
                    "BROKER_UNREACHABLE",
                    f"no broker in {self._brokers} answered within {timeout:g} s ({last})",
                )
            try:
                # Short waits, so a refusal reported meanwhile by the sender thread's poll ends this early.
                metadata = self._producer.list_topics(self.topic, timeout=min(1.0, remaining))
            except KafkaException as err:
                last = err.args[0].str() if err.args else str(err)
                continue
            topic = metadata.topics.get(self.topic)
            if topic is not None and topic.error is None:
                return
            if topic is not None and topic.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise PublisherConnectError(
                    "TOPIC_NOT_FOUND", f"topic {self.topic!r} does not exist on {self._brokers}"
                )
            last = topic.error.str() if topic is not None else "no metadata for the topic"

    def publish(
        self,
        layer: str,
        counts: FiringCounts,
        step: int,
        *,
        micro_batch: int = 0,
        unit_offset: int = 0,
        layer_units: int | None = None,
        rank: int | None = None,
        time_ms: int | None = None,
    ) -> None:
        """Queues the counts of one layer (or shard) at one step; returns at once.

        A contract violation (say fires above samples) raises ContractError. Non-finite sums are
        sent as they are: the consumer counts them and keeps the snapshot's fires.
        """
        self.publish_snapshot(
            Snapshot(
                run_id=self.run_id,
                layer=layer,
                rank=self.rank if rank is None else rank,
                step=step,
                time=int(time.time() * 1000) if time_ms is None else time_ms,
                unit_offset=unit_offset,
                unit_count=counts.units,
                layer_units=counts.units + unit_offset if layer_units is None else layer_units,
                samples=counts.samples,
                stats=counts,
                micro_batch=micro_batch,
                incarnation=self.incarnation,
            )
        )

    def publish_snapshot(self, snapshot: Snapshot) -> None:
        """Validates, encodes and queues a complete snapshot (raw payloads too); returns at once."""
        if self._closed:
            raise RuntimeError("publish() on a closed Publisher")
        try:
            value = encode_snapshot(snapshot)
        except ValueError:
            with self._lock:
                self._counts["invalid"] += 1
            raise
        with self._lock:
            self._counts["offered"] += 1
            if len(self._queue) >= self._capacity:
                self._queue.popleft()
                self._counts["dropped"] += 1
            self._queue.append((snapshot.key, value))
            self._wake.notify()

    def stats(self) -> PublisherStats:
        with self._lock:
            return PublisherStats(**self._counts, queued=len(self._queue), in_flight=self._handed)

    def flush(self, timeout: float = 30.0) -> int:
        """Waits up to ``timeout`` s for everything queued to be acknowledged; returns how many are not."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = len(self._queue) + self._handed
            if pending == 0 or time.monotonic() >= deadline:
                return pending
            time.sleep(0.01)

    def close(self, timeout: float = 30.0) -> PublisherStats:
        """Stops accepting snapshots, delivers what it can within ``timeout`` s, and counts the rest as
        failed. Safe to call twice."""
        if self._closed:
            return self.stats()
        self._closed = True
        self.flush(timeout)
        with self._lock:
            self._stop = True
            self._counts["failed"] += len(self._queue)
            self._queue.clear()
            self._wake.notify()
        self._sender.join()
        if self._handed:
            # Whatever librdkafka still holds is reported through the delivery callback as purged.
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            self._producer.flush(5.0)
        stats = self.stats()
        if stats.failed or stats.dropped:
            log.warning(
                "publisher closed: %d sent, %d dropped, %d failed", stats.sent, stats.dropped, stats.failed
            )
        return stats

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the sender thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._queue and not self._stop:
                    self._wake.wait(0.05)
                if self._stop:
                    break
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), 1000))]
                self._handed += len(batch)
            unsent = self._produce(batch)
            if unsent:
                with self._lock:
                    self._handed -= len(unsent)
                    # Back at the front, oldest first; the queue's bound still holds.
                    room = self._capacity - len(self._queue)
                    self._counts["dropped"] += max(0, len(unsent) - room)
                    self._queue.extendleft(reversed(unsent[-room:] if room > 0 else []))
            self._producer.poll(0.05 if unsent else 0)
        self._producer.poll(0)

    def _produce(self, batch: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """Hands the batch to librdkafka; returns what did not fit in its queue."""
        for i, (key, value) in enumerate(batch):
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
            except BufferError:
                return batch[i:]
            except KafkaException as err:
                log.error("cannot produce to %s: %s", self.topic, err)
                with self._lock:
                    self._handed -= len(batch) - i
                    self._counts["failed"] += len(batch) - i
                return []
        return []

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        with self._lock:
            self._handed -= 1
            if err is None:
                self._counts["sent"] += 1
                recovered, self._failing = self._failing, False
                first_failure = False
            else:
                self._counts["failed"] += 1
                first_failure, self._failing = not self._failing, True
                recovered = False
        if first_failure:
            log.warning("cannot deliver snapshots to %s: %s (counted in failed)", self.topic, err)
        elif recovered:
            log.info("snapshot delivery to %s recovered", self.topic)

    def _on_client_error(self, err: KafkaError) -> None:
        cause = _refusal_cause(err.str(), err.code())
        if cause is not None:
            with self._lock:
                first, self._refused = self._refused is None, self._refused or (cause, err.str())
                reported_by_connect = self._connecting
            # Retrying will not fix it, and deliveries only fail after message_timeout_ms: say so now,
            # unless connect() is waiting and raises it.
            if first and not reported_by_connect:
                log.error("%s: %s: %s", cause, self._brokers, err.str())
            return
        # Transient broker trouble is reported here as well as per message; the per-message count is
        # what matters, so these only reach the debug log.
        log.debug("kafka client: %s", err)


def process_start_incarnation() -> int:
    """The default incarnation: this process's start time in ms, or RELUWATCH_INCARNATION when set."""
    env = os.environ.get("RELUWATCH_INCARNATION")
    return int(env) if env else _PROCESS_START_MS
