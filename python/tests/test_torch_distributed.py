"""ReluProbe across two real processes (torch.distributed, gloo): a group's counts are summed into its
rank 0, which alone publishes; ranks agree on one incarnation; mismatched passes fail on every rank."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from recording import RecordingPublisher
from reluwatch import firing_counts
from reluwatch.torch import ReluProbe
from support import free_port


def worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
    result: dict = {}
    local = []

    def record(_m: nn.Module, _i: object, o: torch.Tensor) -> None:
        local.append(firing_counts(o.detach().numpy(), sums=True))

    model[1].register_forward_hook(record)
    # The whole world as one group: rank 0 publishes the sum, under global rank 0.
    pub = RecordingPublisher(incarnation=[5, 9][rank])
    probe = ReluProbe(model, pub, every_steps=1, sums=True, process_group=dist.group.WORLD)
    result["incarnation"] = pub.incarnation
    g = torch.Generator().manual_seed(rank)
    with probe.step(3):
        for rows in (4, 6):  # two micro-batches of different sizes on each rank
            model(torch.randn(rows + rank, 3, generator=g))
    result["local"] = [
        {"samples": c.samples, "fires": c.fires.tolist(), "abs_sum": c.abs_sum.tolist()} for c in local
    ]
    result["world"] = [
        {
            "rank": p.rank,
            "micro_batch": p.micro_batch,
            "samples": p.counts.samples,
            "fires": p.counts.fires.tolist(),
            "abs_sum": p.counts.abs_sum.tolist(),
        }
        for p in pub.published
    ]
    probe.close()
    # Groups of one rank each: every rank publishes its own, under its own global rank.
    groups = [dist.new_group([0]), dist.new_group([1])]
    pub = RecordingPublisher()
    probe = ReluProbe(model, pub, every_steps=1, process_group=groups[rank])
    with probe.step(0):
        model(torch.randn(2, 3, generator=g))
    result["single"] = [p.rank for p in pub.published]
    probe.close()
    # Different passes on the two ranks: refused on both, nothing published, no rank left waiting.
    pub = RecordingPublisher()
    probe = ReluProbe(model, pub if rank == 0 else None, every_steps=1, process_group=dist.group.WORLD)
    try:
        with probe.step(1):
            for _ in range(1 + rank):
                model(torch.randn(2, 3, generator=g))
        result["mismatch"] = "no error"
    except RuntimeError as err:
        result["mismatch"] = str(err)
    result["mismatch_published"] = len(pub.published)
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def test_a_groups_counts_are_summed_into_its_rank_0(tmp_path: Path) -> None:
    mp.start_processes(worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True, start_method="fork")
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
