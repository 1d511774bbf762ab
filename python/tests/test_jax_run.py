"""End to end: a JAX/Flax training run (tests/runs/jax_mlp.py) publishes through reluwatch.jax,
`reluwatch consume` reads the topic, and its DEAD units are scored against the whole dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import judge_training_run

# 13,816 silent samples: 14 probed steps of 2 micro-batches x 512 rows; one bucket per probed step.
DETECTOR = ["--dead-rate", "0.0005", "--alpha", "0.001", "--window-steps", "200", "--window-buckets", "40"]


@pytest.mark.broker
def test_a_flax_run_is_judged_against_the_whole_dataset(brokers: str, tmp_path: Path) -> None:
    result, precision, recall, wrong = judge_training_run(
        brokers, "jax_mlp.py", "jax-run", DETECTOR, tmp_path
    )
    assert result["layers"] == ["fc1", "fc2", "fc3"]
    # 40 probed steps x 3 layers x 2 micro-batches.
    assert (result["offered"], result["sent"], result["dropped"], result["failed"]) == (240, 240, 0, 0)
    truth, before = result["dead"], result["dead_before_spike"]
    assert len(set(truth["fc2"]) - set(before["fc2"])) >= 5
    assert len(before["fc3"]) >= 3
    assert precision >= 0.99, wrong
    assert recall >= 0.95, wrong
