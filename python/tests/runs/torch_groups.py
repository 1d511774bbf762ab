"""Two processes (torch.distributed, gloo) exercise ReluProbe's process groups with a recording
publisher and write what each rank saw to OUT_DIR/rank<r>.json for test_torch_distributed.py.

    python torch_groups.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recording import RecordingPublisher
from reluwatch import firing_counts
from reluwatch.torch import ReluProbe


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


if __name__ == "__main__":
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # fork: the ranks start with torch already imported, in an interpreter that has nothing else.
    mp.start_processes(worker, args=(port, sys.argv[1]), nprocs=2, join=True, start_method="fork")
