"""End to end: a 2-process PyTorch training run (tests/runs/torch_ddp.py) publishes through ReluProbe,
`reluwatch consume` (the TypeScript service) reads the topic, and its DEAD units are scored against
the units that never fire on the whole dataset after training."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import judge_training_run

# A dead verdict needs ln(1/alpha) / dead_rate = 13,816 silent samples: 14 probed steps of
# 2 ranks x 2 micro-batches x 256 rows; the window (300 steps) holds them. One bucket per probed step.
DETECTOR = ["--dead-rate", "0.0005", "--alpha", "0.001", "--window-steps", "300", "--window-buckets", "60"]


@pytest.mark.broker
def test_a_data_parallel_torch_run_is_judged_against_the_whole_dataset(brokers: str, tmp_path: Path) -> None:
    result, precision, recall, wrong = judge_training_run(
        brokers, "torch_ddp.py", "torch-run", DETECTOR, tmp_path
    )
    assert result["layers"] == ["act1", "act2", "act3"]
    # 60 probed steps x 3 layers x 2 micro-batches, each summed over both ranks by rank 0.
    assert (result["offered"], result["sent"], result["dropped"], result["failed"]) == (360, 360, 0, 0)
    truth, before = result["dead"], result["dead_before_spike"]
    # The scenario holds what it should: units killed by the spike, and born-dead ones in act3.
    assert len(set(truth["act2"]) - set(before["act2"])) >= 5
    assert len(before["act3"]) >= 5
    assert precision >= 0.99, wrong
    assert recall >= 0.95, wrong
