"""ReluProbe across two real processes (torch.distributed, gloo; tests/runs/torch_groups.py): a group's
counts are summed into its rank 0, which alone publishes; ranks agree on one incarnation; mismatched
passes fail on every rank."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def test_a_groups_counts_are_summed_into_its_rank_0(tmp_path: Path) -> None:
    script = Path(__file__).parent / "runs" / "torch_groups.py"
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["incarnation"] == r1["incarnation"] == 9
    assert r1["world"] == []
    assert [(p["rank"], p["micro_batch"]) for p in r0["world"]] == [(0, 0), (0, 1)]
    for micro, published in enumerate(r0["world"]):
        a, b = r0["local"][micro], r1["local"][micro]
        assert published["samples"] == a["samples"] + b["samples"] == [9, 13][micro]
        assert published["fires"] == [x + y for x, y in zip(a["fires"], b["fires"], strict=True)]
        expected = [x + y for x, y in zip(a["abs_sum"], b["abs_sum"], strict=True)]
        assert published["abs_sum"] == pytest.approx(expected, rel=1e-5)
    assert (r0["single"], r1["single"]) == ([0], [1])
    for r in (r0, r1):
        assert "probed different (passes, units), from [1, 5] to [2, 10]" in r["mismatch"]
    assert r0["mismatch_published"] == 0
