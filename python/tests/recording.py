"""A publisher that records what the probes hand it, for the probes' unit tests (the real Publisher
is tested against the broker in test_publisher.py and the training runs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reluwatch import FiringCounts


@dataclass
class Published:
    layer: str
    step: int
    micro_batch: int
    rank: int | None
    counts: FiringCounts


@dataclass
class RecordingPublisher:
    incarnation: int = 1
    published: list[Published] = field(default_factory=list)
    closed: bool = False

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
        self.published.append(Published(layer, step, micro_batch, rank, counts))

    def close(self, timeout: float = 30.0) -> None:
        self.closed = True
