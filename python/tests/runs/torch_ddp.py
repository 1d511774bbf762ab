"""A real data-parallel PyTorch training run on CPU, watched by ReluProbe.

Two processes (torch.distributed, gloo) train an MLP with DistributedDataParallel, gradient
accumulation over micro-batches, a learning-rate spike, and one layer whose bias starts negative.
ReluProbe sums each probed step's counts over the two ranks and rank 0 publishes them. At the end
rank 0 runs the whole dataset through the model and writes which units never fire (the truth).

    python torch_ddp.py BROKERS TOPIC RUN_ID OUT.json
"""

from __future__ import annotations

import json
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from reluwatch import Publisher
from reluwatch.torch import ReluProbe

WORLD = 2
STEPS = 300
SPIKE_STEP = 100
SPIKE_STEPS = 3
SPIKE_FACTOR = 100.0
LR = 0.05
EVERY_STEPS = 5
MICRO_BATCHES = 2
MICRO_ROWS = 256  # per rank and micro-batch
SAMPLE_ROWS = 256
DATASET_ROWS = 4096
NEGATIVE_BIAS = -0.3


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act1 = nn.Linear(16, 64), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(64, 64), nn.ReLU()
        # The negative-bias layer sits beside the main path, so the model learns through act2 either way.
        self.fc3, self.act3 = nn.Linear(64, 32), nn.ReLU()
        self.head = nn.Linear(64 + 32, 2)
        with torch.no_grad():
            self.fc3.bias.fill_(NEGATIVE_BIAS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act2(self.fc2(self.act1(self.fc1(x))))
        return self.head(torch.cat([h, self.act3(self.fc3(h))], dim=1))


def dataset() -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels of a fixed random teacher network: the same on every rank."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(DATASET_ROWS, 16, generator=g)
    teacher = torch.randn(16, 8, generator=g)
    y = (torch.tanh(x @ teacher).sum(dim=1) > 0).long()
    return x, y


def never_firing(model: Net, x: torch.Tensor) -> dict[str, list[int]]:
    """Per ReLU, the units whose output is > 0 on no row of x."""
    fires: dict[str, torch.Tensor] = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: fires.__setitem__(name, (out > 0).sum(dim=0))
        )
        for name in ("act1", "act2", "act3")
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return {name: (f == 0).nonzero().flatten().tolist() for name, f in fires.items()}


def worker(rank: int, brokers: str, topic: str, run_id: str, out: str, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = dataset()
    model = Net()
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR)
    publisher = Publisher(brokers, topic, run_id=run_id) if rank == 0 else None
    probe = ReluProbe(
        ddp, publisher, every_steps=EVERY_STEPS, sample_rows=SAMPLE_ROWS, process_group=dist.group.WORLD
    )
    g = torch.Generator().manual_seed(100 + rank)
    before_spike: dict[str, list[int]] = {}
    for step in range(STEPS):
        if step == SPIKE_STEP:
            before_spike = never_firing(model, x)
        for group in opt.param_groups:
            # A linear decay to 0, with the spike on top.
            spike = SPIKE_FACTOR if SPIKE_STEP <= step < SPIKE_STEP + SPIKE_STEPS else 1.0
            group["lr"] = LR * spike * (1 - step / STEPS)
        opt.zero_grad()
        with probe.step(step):
            for micro in range(MICRO_BATCHES):
                rows = torch.randint(0, DATASET_ROWS, (MICRO_ROWS,), generator=g)
                # Gradients are all-reduced once per step, on the last micro-batch.
                sync = ddp.no_sync() if micro < MICRO_BATCHES - 1 else torch.enable_grad()
                with sync:
                    loss = nn.functional.cross_entropy(ddp(x[rows]), y[rows]) / MICRO_BATCHES
                    loss.backward()
        opt.step()
    probe.close()
    if rank == 0:
        assert publisher is not None
        stats = publisher.stats()
        result = {
            "layers": list(probe.layers),
            "units": {name: getattr(model, name.replace("act", "fc")).out_features for name in probe.layers},
            "sent": stats.sent,
            "offered": stats.offered,
            "dropped": stats.dropped,
            "failed": stats.failed,
            "incarnation": publisher.incarnation,
            "dead_before_spike": before_spike,
            "dead": never_firing(model, x),
        }
        with open(out, "w", encoding="utf-8") as f:
            json.dump(result, f)
    dist.destroy_process_group()


def main() -> None:
    brokers, topic, run_id, out = sys.argv[1:5]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # fork: the ranks start with torch already imported, which is most of a small run's time.
    mp.start_processes(
        worker, args=(brokers, topic, run_id, out, port), nprocs=WORLD, join=True, start_method="fork"
    )


if __name__ == "__main__":
    main()
