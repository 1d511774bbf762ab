"""ReluProbe in one process: which modules it hooks, what it counts, micro-batches, and what it keeps."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from torch import nn

from recording import RecordingPublisher
from reluwatch import firing_counts
from reluwatch.torch import ReluProbe, reduce_activation


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 5)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(Block(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1))


def captured(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Every ReLU's output for x, by qualified name, taken by separate hooks."""
    out: dict[str, np.ndarray] = {}
    handles = [
        m.register_forward_hook(lambda _m, _i, o, name=name: out.__setitem__(name, o.detach().numpy().copy()))
        for name, m in model.named_modules()
        if isinstance(m, nn.ReLU)
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return out


def test_every_relu_is_hooked_by_qualified_name_and_counted_as_numpy_would() -> None:
    model, pub = mlp(), RecordingPublisher()
    probe = ReluProbe(model, pub, every_steps=1, sample_rows=None)
    assert list(probe.layers) == ["0.act", "2"]
    x = torch.randn(32, 6)
    with probe.step(0):
        model(x).sum().backward()
    truth = captured(model, x)
    assert [(p.layer, p.step, p.micro_batch) for p in pub.published] == [("0.act", 0, 0), ("2", 0, 0)]
    for p in pub.published:
        expected = firing_counts(truth[p.layer], sums=False)
        assert p.counts.samples == 32
        assert p.counts.fires.tolist() == expected.fires.tolist()
        assert p.counts.nonfinite is None
        assert p.counts.abs_sum is None
        assert p.rank is None  # the publisher's own rank


def test_only_every_nth_step_is_probed_and_passes_outside_steps_are_ignored() -> None:
    model, pub = mlp(), RecordingPublisher()
    probe = ReluProbe(model, pub, every_steps=50)
    model(torch.randn(4, 6))
    for step in range(101):
        with probe.step(step) as probed:
            assert probed == (step % 50 == 0)
            model(torch.randn(4, 6))
    assert sorted({p.step for p in pub.published}) == [0, 50, 100]


def test_forward_passes_in_one_step_are_numbered_micro_batches() -> None:
    model, pub = mlp(), RecordingPublisher()
    probe = ReluProbe(model, pub, every_steps=1, modules=[model[2]])
    with probe.step(7):
        for _ in range(3):
            model(torch.randn(4, 6))
    with probe.step(7):  # the same step again (an eval pass, say): numbering goes on
        model(torch.randn(4, 6))
    with probe.step(8):
        model(torch.randn(4, 6))
    assert [(p.layer, p.step, p.micro_batch) for p in pub.published] == [
        ("2", 7, 0), ("2", 7, 1), ("2", 7, 2), ("2", 7, 3), ("2", 8, 0)
    ]  # fmt: skip


def test_rows_are_sampled_and_sums_cover_the_sampled_rows() -> None:
    model, pub = mlp(), RecordingPublisher()
    probe = ReluProbe(model, pub, every_steps=1, sample_rows=5, sums=True, modules={"hidden": model[0].act})
    x = torch.randn(12, 6)
    with probe.step(0):
        model(x)
    (p,) = pub.published
    expected = firing_counts(captured(model, x[:5])["0.act"])
    assert p.layer == "hidden"
    assert p.counts.samples == 5
    assert p.counts.fires.tolist() == expected.fires.tolist()
    np.testing.assert_allclose(p.counts.abs_sum, expected.abs_sum, rtol=1e-6)
    np.testing.assert_allclose(p.counts.sq_sum, expected.sq_sum, rtol=1e-6)


def test_convolutions_count_channels_over_batch_and_positions() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 2), nn.ReLU()
    )
    pub = RecordingPublisher()
    probe = ReluProbe(model, pub, every_steps=1)
    x = torch.randn(4, 2, 4, 4)
    with probe.step(0):
        model(x)
    conv, dense = pub.published
    truth = captured(model, x)
    assert (conv.layer, conv.counts.samples, conv.counts.units) == ("1", 4 * 16, 3)
    assert conv.counts.fires.tolist() == firing_counts(truth["1"], unit_axis=1).fires.tolist()
    assert (dense.counts.samples, dense.counts.units) == (4, 2)


def test_unit_dims_override_the_layout() -> None:
    model = nn.Sequential(nn.Conv1d(2, 3, 1), nn.ReLU())
    pub = RecordingPublisher()
    probe = ReluProbe(model, pub, every_steps=1, unit_dims={"1": 1})
    with probe.step(0):
        model(torch.randn(2, 2, 5))  # [batch, channels, length]
    assert (pub.published[0].counts.units, pub.published[0].counts.samples) == (3, 10)


def test_nan_activations_are_counted_apart() -> None:
    a = torch.tensor([[1.0, float("nan")], [float("inf"), 0.0], [2.0, 3.0]])
    samples, fires, nonfinite, abs_sum, sq_sum = reduce_activation(a, -1, None, True)
    assert samples == 3
    assert fires.tolist() == [2, 1]
    assert nonfinite.tolist() == [1, 1]
    assert abs_sum is not None
    assert sq_sum is not None
    assert abs_sum.tolist() == [3.0, 3.0]
    assert sq_sum.tolist() == [5.0, 9.0]


def test_the_probe_keeps_no_autograd_graph_and_no_activation() -> None:
    model, pub = mlp(), RecordingPublisher()
    probe = ReluProbe(model, pub, every_steps=1, sums=True)
    seen: list[weakref.ref[torch.Tensor]] = []
    model[2].register_forward_hook(lambda _m, _i, o: seen.append(weakref.ref(o)))
    with probe.step(0):
        out = model(torch.randn(8, 6, requires_grad=True))
        assert all(
            not t.requires_grad and t.grad_fn is None for p in probe._passes for t in (p.fires, p.abs_sum)
        )
        del out
        gc.collect()
        assert seen[0]() is None  # the ReLU output (and the graph holding it) is gone mid-step
    assert len(pub.published) == 2


def test_an_exception_in_the_step_discards_its_counts() -> None:
    model, pub = mlp(), RecordingPublisher()
    probe = ReluProbe(model, pub, every_steps=1)

    def failing_step() -> None:
        with probe.step(0):
            model(torch.randn(2, 6))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing_step()
    with probe.step(1):
        model(torch.randn(2, 6))
    assert {p.step for p in pub.published} == {1}


def test_a_data_parallel_wrapper_keeps_the_models_own_names_and_close_unhooks() -> None:
    model, pub = mlp(), RecordingPublisher()
    probe = ReluProbe(nn.DataParallel(model), pub, every_steps=1)
    assert list(probe.layers) == ["0.act", "2"]
    probe.close()
    assert pub.closed
    with probe.step(0):
        model(torch.randn(2, 6))
    assert pub.published == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="no module to probe"):
        ReluProbe(nn.Linear(2, 2), RecordingPublisher())
    with pytest.raises(ValueError, match="not a submodule"):
        ReluProbe(mlp(), RecordingPublisher(), modules=[nn.ReLU()])
    with pytest.raises(ValueError, match="needs a publisher"):
        ReluProbe(mlp(), None)
    probe = ReluProbe(mlp(), RecordingPublisher())
    with pytest.raises(RuntimeError, match="do not nest"), probe.step(0), probe.step(0):
        pass
