"""The Python trainer side, measured: ReluProbe's overhead per training step on a CPU model (with and
without the probe), and the Publisher's CPU per snapshot. Prints one JSON document.

    .venv/bin/python bench/python_probe.py --brokers 127.0.0.1:9092 [--steps 60] [--runs 3]

Training runs on one thread, and a step is timed in that thread's CPU time: the probe's cost is not
hidden by idle cores nor inflated by other processes on a shared machine (the publisher's sender
thread is measured apart, in the CPU per snapshot). The three modes alternate within each run; each
figure is the median over runs of one run's mean.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

import numpy as np
import torch
from confluent_kafka.admin import AdminClient, NewTopic
from reluwatch import FiringCounts, Publisher
from reluwatch.torch import ReluProbe
from torch import nn

WIDTH, DEPTH, BATCH, SNAPSHOT_UNITS = 512, 4, 256, 4096


def figure(values: list[float]) -> dict[str, float | int]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def model() -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(DEPTH):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(WIDTH, 10))


def step_seconds(publisher: Publisher | None, every_steps: int | None, steps: int) -> float:
    """Mean CPU time of the training thread per step (forward, backward, SGD) over `steps` steps."""
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    probe = ReluProbe(net, publisher, every_steps=every_steps, sample_rows=BATCH) if every_steps else None
    x, y = torch.randn(BATCH, WIDTH), torch.randint(0, 10, (BATCH,))
    started = 0.0
    for step in range(-5, steps):  # 5 warm-up steps
        if step == 0:
            started = time.thread_time()
        opt.zero_grad()
        if probe is not None:
            with probe.step(max(step, 0)):
                loss = nn.functional.cross_entropy(net(x), y)
        else:
            loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    elapsed = (time.thread_time() - started) / steps
    if probe is not None:
        for h in probe._handles:
            h.remove()
    return elapsed


def publisher_cpu_us(brokers: str, topic: str, compression: str, n: int) -> float:
    """Process CPU (every thread: encoding, librdkafka's compression and I/O) per snapshot."""
    rng = np.random.default_rng(0)
    counts = FiringCounts(512, rng.integers(0, 513, SNAPSHOT_UNITS).astype(np.uint32))
    with Publisher(brokers, topic, run_id="bench", compression=compression) as publisher:
        publisher.publish("warm-up", counts, 0)
        publisher.flush(60)
        cpu0 = time.process_time()
        for i in range(n):
            publisher.publish(f"layer.{i % 96}", counts, i)
        assert publisher.flush(120) == 0, publisher.stats()
        return (time.process_time() - cpu0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--snapshots", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    topic = f"bench.python.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.brokers})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(60)

    times: dict[str, list[float]] = {"none": [], "every_50": [], "every_1": []}
    with Publisher(args.brokers, topic, run_id="bench-probe") as publisher:
        for _ in range(args.runs):
            times["none"].append(step_seconds(None, None, args.steps))
            times["every_50"].append(step_seconds(publisher, 50, args.steps))
            times["every_1"].append(step_seconds(publisher, 1, args.steps))
    base = statistics.median(times["none"])
    runs = args.runs
    out = {
        "model": f"MLP {DEPTH} x {WIDTH} ReLU, batch {BATCH}, torch {torch.__version__} CPU, 1 thread",
        "steps": args.steps,
        "step_cpu_ms": {k: figure([t * 1e3 for t in v]) for k, v in times.items()},
        "overhead_ratio": {
            "every_50": statistics.median(times["every_50"]) / base - 1,
            "every_1": statistics.median(times["every_1"]) / base - 1,
        },
        "publisher": {
            "snapshot_units": SNAPSHOT_UNITS,
            **{
                comp: {
                    "cpu_us_per_snapshot": figure(
                        [publisher_cpu_us(args.brokers, topic, comp, args.snapshots) for _ in range(runs)]
                    )
                }
                for comp in ("zstd", "gzip", "none")
            },
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
