"""Helpers for tests against the real broker and the TypeScript consumer."""

from __future__ import annotations

import json
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]
PUNCTUATE_MS = 10_000


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


class ConsumerProcess:
    """`reluwatch consume` (the TypeScript service) as a child process, as users run it; its
    HTTP port is read from its JSON log (it listens on port 0)."""

    def __init__(self, brokers: str, topic: str, *flags: str) -> None:
        node = shutil.which("node")
        assert node, "node is not on PATH (make puts the pinned one there)"
        args = [
            node, "--import", "tsx", str(REPO / "src/cli/main.ts"), "consume",
            "--metrics-host", "127.0.0.1", "--metrics-port", "0",
            "--brokers", brokers, "--topic", topic, "--group", f"{topic}.group",
            "--events-topic", f"{topic}.events", "--dead-letter-topic", f"{topic}.dlq", *flags,
        ]  # fmt: skip
        self.logs: list[dict[str, Any]] = []
        self._port: queue.Queue[int] = queue.Queue()
        self.child = subprocess.Popen(
            args,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read_log, daemon=True).start()
        try:
            self.base = f"http://127.0.0.1:{self._port.get(timeout=120)}"
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"consume did not start listening: {self.logs[-20:]}") from None

    def _read_log(self) -> None:
        assert self.child.stderr is not None
        for line in self.child.stderr:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"raw": line.rstrip()}
            self.logs.append(entry)
            if entry.get("event") == "http_listening":
                self._port.put(int(entry["port"]))

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=30) as res:
            body = res.read().decode()
        return body if path == "/metrics" else json.loads(body)

    def counter(self, name: str, labels: str) -> float:
        """One sample of the exposition: counter("reluwatch_snapshots_total", 'result="ok"')."""
        for line in self.get("/metrics").splitlines():
            if line.startswith(f"{name}{{") and labels in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_applied(self, expected: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ok = self.counter("reluwatch_snapshots_total", 'result="ok"')
            if ok >= expected:
                assert ok == expected, f"{ok} snapshots applied, {expected} published"
                return
            if self.child.poll() is not None:
                raise RuntimeError(f"consume exited with {self.child.returncode}: {self.logs[-20:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ok} of {expected} snapshots applied; last log lines {self.logs[-10:]}")
            time.sleep(0.5)

    def wait_idle_flush(self, run: str, idle_flush_ms: int) -> None:
        """Waits until the consumer has classified every layer's still-open bucket: its punctuator
        (every PUNCTUATE_MS, src/service/consumer-service.ts) flushes layers idle for idle_flush_ms."""
        layers = self.get(f"/api/runs/{urllib.parse.quote(run, safe='')}/layers")["layers"]
        last = max(layer["last_snapshot_ms"] for layer in layers)
        wait = (last + idle_flush_ms + PUNCTUATE_MS + 2_000) / 1000 - time.time()
        if wait > 0:
            time.sleep(wait)

    def dead_units(self, run: str, layers: list[str]) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for layer in layers:
            detail = self.get(
                f"/api/runs/{urllib.parse.quote(run, safe='')}/layers/{urllib.parse.quote(layer, safe='')}"
            )
            out[layer] = {u["unit"] for u in detail["units"] if u["state"] == "DEAD"}
        return out

    def mismatches(self, run: str, truth: dict[str, set[int]]) -> list[dict[str, Any]]:
        """The consumer's detail of every unit whose verdict disagrees with the truth (for failures)."""
        out = []
        for layer, dead in truth.items():
            detail = self.get(
                f"/api/runs/{urllib.parse.quote(run, safe='')}/layers/{urllib.parse.quote(layer, safe='')}"
            )
            out += [
                {"layer": layer, **u}
                for u in detail["units"]
                if (u["unit"] in dead) != (u["state"] == "DEAD")
            ]
        return out

    def stop(self) -> None:
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(60)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait(10)


def score(predicted: dict[str, set[int]], truth: dict[str, set[int]]) -> tuple[float, float, int, int]:
    """(precision, recall, |predicted|, |truth|) of a dead set over every (layer, unit)."""
    p = {(layer, u) for layer, units in predicted.items() for u in units}
    t = {(layer, u) for layer, units in truth.items() for u in units}
    hit = len(p & t)
    return (hit / len(p) if p else 1.0), (hit / len(t) if t else 1.0), len(p), len(t)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


IDLE_FLUSH_MS = 500


def judge_training_run(
    brokers: str, script: str, run_id: str, detector: list[str], tmp: Path
) -> tuple[dict[str, Any], float, float, list[dict[str, Any]]]:
    """Runs tests/runs/SCRIPT (which publishes to a new topic and writes its truth), consumes the topic
    with `reluwatch consume`, and scores its DEAD units against the truth.

    Returns (the run's result, precision, recall, the units whose verdict disagrees with the truth)."""
    topic = unique_topic(run_id)
    create_topic(brokers, topic, 3)
    out = tmp / "run.json"
    # The consumer starts first, so its start-up overlaps the training run, as in production.
    consumer = ConsumerProcess(brokers, topic, *detector, "--idle-flush-ms", str(IDLE_FLUSH_MS))
    try:
        run = subprocess.run(
            [sys.executable, str(Path(__file__).parent / "runs" / script), brokers, topic, run_id, str(out)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-4000:]
        result = json.loads(out.read_text())
        truth = {layer: set(units) for layer, units in result["dead"].items()}
        consumer.wait_applied(result["sent"])
        assert consumer.counter("reluwatch_snapshots_total", 'result="duplicate"') == 0
        # The last probe's bucket stays open until the run has been idle: its verdicts count too.
        consumer.wait_idle_flush(run_id, IDLE_FLUSH_MS)
        predicted = consumer.dead_units(run_id, list(truth))
        wrong = consumer.mismatches(run_id, truth)
    finally:
        consumer.stop()
    precision, recall, n_predicted, n_truth = score(predicted, truth)
    print(
        f"{run_id}: precision {precision:.3f}, recall {recall:.3f}, {n_predicted} called dead, {n_truth} dead"
    )
    return result, precision, recall, wrong
