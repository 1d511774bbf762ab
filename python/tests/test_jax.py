"""reluwatch.jax: counts on jax.Arrays equal numpy's, inside jit too; Flax intermediates by layer."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from recording import RecordingPublisher
from reluwatch import firing_counts
from reluwatch import jax as rwj


def test_counts_of_a_jax_array_equal_numpys() -> None:
    x = np.random.default_rng(0).normal(size=(4, 6, 5)).astype(np.float32)
    x[0, 0, 2] = np.nan
    got, expected = rwj.firing_counts(jnp.asarray(x)), firing_counts(x)
    assert got.samples == expected.samples == 24
    assert got.fires.tolist() == expected.fires.tolist()
    assert got.nonfinite is not None
    assert got.nonfinite.tolist() == [0, 0, 1, 0, 0]
    np.testing.assert_allclose(got.abs_sum, expected.abs_sum, rtol=1e-5)
    np.testing.assert_allclose(got.sq_sum, expected.sq_sum, rtol=1e-5)


def test_counts_run_inside_jit_and_relu_applies_to_pre_activations() -> None:
    pre = jax.random.normal(jax.random.PRNGKey(1), (3, 8, 2))  # NCW-like: units on axis 1
    c = rwj.to_host(jax.jit(lambda a: rwj.device_counts(a, unit_axis=1, relu=True))(pre))
    post = np.maximum(np.asarray(pre), 0)
    expected = firing_counts(post, unit_axis=1)
    assert (c.samples, c.units) == (6, 8)
    assert c.fires.tolist() == expected.fires.tolist()
    assert c.nonfinite is None
    np.testing.assert_allclose(c.abs_sum, expected.abs_sum, rtol=1e-5)


class Mlp(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.relu(nn.Dense(6, name="fc1")(x))
        h = nn.relu(nn.Dense(4, name="fc2")(h))
        self.sow("intermediates", "act2", h)
        return nn.Dense(1, name="head")(h)


def test_flax_captured_dense_outputs_are_counted_per_layer_and_published() -> None:
    model = Mlp()
    x = jax.random.normal(jax.random.PRNGKey(2), (10, 3))
    params = model.init(jax.random.PRNGKey(3), x)

    @jax.jit
    def probe(params: dict, x: jax.Array) -> dict[str, rwj.DeviceCounts]:
        _, state = model.apply(
            params, x, capture_intermediates=rwj.capture(nn.Dense), mutable=["intermediates"]
        )
        return rwj.intermediate_counts(state["intermediates"], relu=True, include=lambda name: name != "head")

    counts = probe(params, x)
    assert sorted(counts) == ["act2", "fc1", "fc2"]
    # The sown post-ReLU output and the captured pre-activation of the same layer count alike.
    assert rwj.to_host(counts["act2"]).fires.tolist() == rwj.to_host(counts["fc2"]).fires.tolist()
    h1 = np.maximum(
        np.asarray(x) @ np.asarray(params["params"]["fc1"]["kernel"]) + params["params"]["fc1"]["bias"], 0
    )
    assert rwj.to_host(counts["fc1"]).fires.tolist() == firing_counts(h1).fires.tolist()

    pub = RecordingPublisher()
    rwj.publish(pub, counts, step=50, micro_batch=1, sums=False)
    assert sorted((p.layer, p.step, p.micro_batch, p.counts.samples) for p in pub.published) == [
        ("act2", 50, 1, 10), ("fc1", 50, 1, 10), ("fc2", 50, 1, 10)
    ]  # fmt: skip
    assert all(p.counts.abs_sum is None for p in pub.published)


def test_a_module_called_twice_in_one_apply_sums_both_calls() -> None:
    a, b = jnp.array([[1.0, -1.0]]), jnp.array([[2.0, 3.0], [0.0, 1.0]])
    counts = rwj.intermediate_counts({"block": {"relu": (a, b)}})
    c = rwj.to_host(counts["block.relu"])
    assert (c.samples, c.fires.tolist()) == (3, [2, 2])
