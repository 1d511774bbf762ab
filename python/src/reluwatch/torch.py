"""ReluProbe: per-unit firing counts of a PyTorch model's ReLUs, taken in forward hooks.

Counting happens on the activation's device, under ``torch.no_grad()`` on a detached view, so the
probe neither moves activations to the host nor keeps any autograd graph alive: each probed pass
leaves a handful of per-unit count tensors on the device, and at the end of the step one transfer
brings 4 bytes per unit to the host (12 with sums). Forward passes outside ``probe.step()``, or in a
step that is not a multiple of ``every_steps``, cost one attribute check in the hook.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .publisher import CountsPublisher
from .snapshot import FiringCounts

log = logging.getLogger("reluwatch.torch")

UnitDim = int | Callable[[torch.Tensor], int]


def default_unit_dim(activation: torch.Tensor) -> int:
    """Channels for 4-D and 5-D activations (NCHW, NCDHW convolutions); the last dimension otherwise."""
    return 1 if activation.dim() in (4, 5) else -1


@dataclass
class _Pass:
    """One probed forward pass of one layer, reduced on the device."""

    layer: str
    micro_batch: int
    samples: int
    fires: torch.Tensor  # int32 [units]
    nonfinite: torch.Tensor  # int32 [units]
    abs_sum: torch.Tensor | None  # float32 [units]
    sq_sum: torch.Tensor | None


def reduce_activation(
    activation: torch.Tensor, unit_dim: int, sample_rows: int | None, sums: bool
) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(samples, fires, nonfinite, abs_sum, sq_sum) of one activation, computed where it lives.

    Rows are the first ``sample_rows`` entries of dimension 0 (the batch); every other position of a
    row (tokens, pixels) is a sample too. Only finite values > 0 are fires; NaN and ±inf are counted
    apart, and sums cover finite values only.
    """
    with torch.no_grad():
        a = activation.detach()
        if a.dim() == 0:
            raise ValueError("a scalar activation has no units")
        if a.dim() == 1:
            a = a.unsqueeze(0)
        dim = unit_dim % a.dim()
        if sample_rows is not None and dim != 0 and a.shape[0] > sample_rows:
            a = a[:sample_rows]
        units = a.shape[dim]
        rows = a.movedim(dim, -1).reshape(-1, units)
        finite = torch.isfinite(rows)
        clean = torch.where(finite, rows, torch.zeros((), dtype=rows.dtype, device=rows.device))
        fires = (clean > 0).sum(dim=0, dtype=torch.int32)
        nonfinite = rows.shape[0] - finite.sum(dim=0, dtype=torch.int32)
        abs_sum = sq_sum = None
        if sums:
            wide = clean.float()
            abs_sum = wide.abs().sum(dim=0)
            sq_sum = wide.square().sum(dim=0)
        return rows.shape[0], fires, nonfinite, abs_sum, sq_sum


class ReluProbe:
    """Hooks a model's ReLUs and publishes their firing counts every ``every_steps`` steps.

    ``modules``: None hooks every ``nn.ReLU``; otherwise modules of the model (named by their qualified
    name) or a mapping of layer name to module. Hook the module whose *output* is the post-ReLU
    activation. ``unit_dims``: the units' dimension per layer name (default: ``default_unit_dim``).

    With ``process_group`` (a ``torch.distributed`` data-parallel group), each probed step's counts are
    summed over the group and only the group's rank 0 publishes them, under its global rank: one
    stream per layer and group instead of one per rank. Every rank of the group must then run the same
    probed passes.
    Without it, every rank publishes its own counts with its publisher's ``rank``.

    Inside ``with probe.step(step):`` every forward pass through a hooked layer is one micro-batch of
    that step (``micro_batch`` 0, 1, ...), published as its own snapshot: additive evidence for the
    consumer. Repeating ``probe.step(s)`` for the same ``s`` continues the numbering.
    """

    def __init__(
        self,
        model: nn.Module,
        publisher: CountsPublisher | None,
        every_steps: int = 50,
        sample_rows: int | None = 512,
        modules: Iterable[nn.Module] | Mapping[str, nn.Module] | None = None,
        process_group: Any = None,
        *,
        sums: bool = False,
        unit_dims: Mapping[str, UnitDim] | None = None,
    ) -> None:
        if every_steps < 1:
            raise ValueError(f"every_steps must be >= 1, got {every_steps}")
        if sample_rows is not None and sample_rows < 1:
            raise ValueError(f"sample_rows must be >= 1 or None, got {sample_rows}")
        self.every_steps = every_steps
        self.sample_rows = sample_rows
        self.sums = sums
        self.process_group = process_group
        self.layers = self._select(model, modules)
        if not self.layers:
            raise ValueError("no module to probe: the model has no nn.ReLU and none was given")
        self._unit_dims = dict(unit_dims or {})
        self.publishes = process_group is None or dist.get_rank(process_group) == 0
        # A group's sum is published under the global rank of its rank 0: unique per group, so the
        # consumer keeps the streams of several groups apart; None publishes under the publisher's rank.
        self.group_rank = None if process_group is None else dist.get_global_rank(process_group, 0)
        if self.publishes and publisher is None:
            raise ValueError("this rank publishes, so it needs a publisher")
        self.publisher = publisher
        if dist.is_available() and dist.is_initialized():
            self._agree_on_incarnation()
        self._step: int | None = None
        self._last_step: int | None = None
        self._micro: dict[str, int] = {}
        self._passes: list[_Pass] = []
        self._warned: set[str] = set()
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.layers.items()]

    @staticmethod
    def _select(
        model: nn.Module, modules: Iterable[nn.Module] | Mapping[str, nn.Module] | None
    ) -> dict[str, nn.Module]:
        # A DistributedDataParallel (or DataParallel) wrapper adds "module." to every name; the layers
        # keep the names they have in the model itself, the same on every rank and in every run.
        wrapped = isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel))
        root: nn.Module = model.module if wrapped else model
        if isinstance(modules, Mapping):
            return dict(modules)
        names: dict[int, str] = {}
        for name, m in root.named_modules():
            names.setdefault(id(m), name)
        if modules is None:
            return {names[id(m)]: m for m in root.modules() if isinstance(m, nn.ReLU)}
        selected: dict[str, nn.Module] = {}
        for m in modules:
            if id(m) not in names:
                raise ValueError(f"{type(m).__name__} is not a submodule of the model")
            selected[names[id(m)] or type(m).__name__] = m
        return selected

    def _collective_device(self) -> torch.device:
        backend = dist.get_backend(self.process_group)
        if backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _agree_on_incarnation(self) -> None:
        """Every rank must publish the same incarnation: the newest start time of the job's processes."""
        mine = self.publisher.incarnation if self.publisher is not None else 0
        t = torch.tensor([mine], dtype=torch.int64, device=self._collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if self.publisher is not None:
            self.publisher.incarnation = int(t.item())

    def _hook(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if self._step is None:
                return
            if not isinstance(output, torch.Tensor) or not output.is_floating_point():
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning("layer %s: output is not a floating-point tensor; not probed", name)
                return
            dim = self._unit_dims.get(name, default_unit_dim)
            unit_dim = dim(output) if callable(dim) else dim
            samples, fires, nonfinite, abs_sum, sq_sum = reduce_activation(
                output, unit_dim, self.sample_rows, self.sums
            )
            micro = self._micro.get(name, 0)
            self._micro[name] = micro + 1
            self._passes.append(_Pass(name, micro, samples, fires, nonfinite, abs_sum, sq_sum))

        return hook

    @contextlib.contextmanager
    def step(self, step: int) -> Iterator[bool]:
        """Forward passes inside are the micro-batches of ``step``; yields whether this step is probed.

        On leaving, a probed step's counts are summed over the process group (if any) and published.
        An exception inside discards the step's counts (and skips the collective).
        """
        if self._step is not None:
            raise RuntimeError("probe.step() blocks do not nest")
        if step != self._last_step:
            self._micro.clear()
            self._last_step = step
        probed = step % self.every_steps == 0
        self._step = step if probed else None
        try:
            yield probed
        except BaseException:
            self._passes.clear()
            raise
        finally:
            self._step = None
        if probed:
            self._finish(step)

    def _finish(self, step: int) -> None:
        passes, self._passes = self._passes, []
        if self.process_group is not None:
            self._check_passes_agree(passes)
        if not passes:
            return
        device = passes[0].fires.device
        n = len(passes)
        widths = [p.fires.shape[0] for p in passes]
        total = sum(widths)
        # One tensor for the step: every pass's fires, the samples and nonfinite total of each pass,
        # then the per-unit nonfinite counts, which reach the host only when some value was not finite.
        counts = torch.cat(
            [p.fires.to(device) for p in passes]
            + [torch.tensor([p.samples for p in passes], dtype=torch.int32, device=device)]
            + [torch.stack([p.nonfinite.sum(dtype=torch.int32).to(device) for p in passes])]
            + [p.nonfinite.to(device) for p in passes]
        )
        sums = torch.cat([torch.cat([p.abs_sum, p.sq_sum]).to(device) for p in passes]) if self.sums else None  # type: ignore[list-item]
        if self.process_group is not None:
            counts, sums = self._reduce(counts, sums)
            if not self.publishes:
                return
        head = counts[: total + 2 * n].cpu().numpy()
        totals = head[total + n :]
        tail = counts[total + 2 * n :].cpu().numpy() if totals.any() else None
        host_sums = sums.cpu().numpy() if sums is not None else None
        now = int(time.time() * 1000)
        offset = 0
        for i, p in enumerate(passes):
            w = widths[i]
            here = slice(offset, offset + w)
            abs_sum = sq_sum = None
            if host_sums is not None:
                abs_sum = host_sums[2 * offset : 2 * offset + w]
                sq_sum = host_sums[2 * offset + w : 2 * offset + 2 * w]
            assert self.publisher is not None
            self.publisher.publish(
                p.layer,
                FiringCounts(
                    samples=int(head[total + i]),
                    fires=head[here].astype(np.uint32),
                    abs_sum=abs_sum,
                    sq_sum=sq_sum,
                    nonfinite=tail[here].astype(np.uint32) if tail is not None and totals[i] else None,
                ),
                step,
                micro_batch=p.micro_batch,
                rank=self.group_rank,
                time_ms=now,
            )
            offset += w

    def _check_passes_agree(self, passes: list[_Pass]) -> None:
        """Every rank must have probed the same passes, or the sum would mix layers (or the collective
        would wait forever): one small all-reduce of (passes, units) and their negatives checks it."""
        n, units = len(passes), sum(p.fires.shape[0] for p in passes)
        t = torch.tensor([n, units, -n, -units], dtype=torch.int64, device=self._collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.process_group)
        high, low = t[:2].tolist(), [-v for v in t[2:].tolist()]
        if high != low:
            raise RuntimeError(
                f"ranks of the process group probed different (passes, units), from {low} to {high}: "
                "every rank must run the same forward passes inside probe.step()"
            )

    def _reduce(
        self, counts: torch.Tensor, sums: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sums the counts (and sums) into the group's rank 0, the one that publishes."""
        group = self.process_group
        dst = self.group_rank
        device = self._collective_device()
        counts = counts.to(device)
        dist.reduce(counts, dst=dst, group=group)
        if sums is not None:
            sums = sums.to(device)
            dist.reduce(sums, dst=dst, group=group)
        return counts, sums

    def close(self, timeout: float = 30.0) -> None:
        """Removes the hooks and closes the publisher, delivering what it holds within ``timeout`` s."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if self.publisher is not None:
            self.publisher.close(timeout)
