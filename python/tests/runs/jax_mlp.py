"""A small JAX/Flax training run, watched through reluwatch.jax.

A Flax MLP trains with SGD and gradient accumulation over two micro-batches, a learning-rate spike,
and one layer whose bias starts negative. On probed steps the jitted training step captures the
hidden Dense outputs (``capture_intermediates``) and returns their counts with the gradients: no
extra forward pass. At the end the whole dataset goes through the model for the truth.

    python jax_mlp.py BROKERS TOPIC RUN_ID OUT.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from reluwatch import Publisher
from reluwatch import jax as rwj

STEPS = 200
SPIKE_STEP = 60
SPIKE_STEPS = 3
SPIKE_FACTOR = 100.0
LR = 0.05
EVERY_STEPS = 5
MICRO_BATCHES = 2
MICRO_ROWS = 512
DATASET_ROWS = 4096
NEGATIVE_BIAS = -1.0
HIDDEN = ("fc1", "fc2", "fc3")


class Mlp(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.relu(nn.Dense(48, name="fc1")(x))
        h = nn.relu(nn.Dense(48, name="fc2")(h))
        side = nn.relu(nn.Dense(24, name="fc3", bias_init=nn.initializers.constant(NEGATIVE_BIAS))(h))
        return nn.Dense(2, name="head")(jnp.concatenate([h, side], axis=1))


def dataset() -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(1234)
    x = rng.normal(size=(DATASET_ROWS, 16)).astype(np.float32)
    teacher = rng.normal(size=(16, 8)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray((np.tanh(x @ teacher).sum(axis=1) > 0).astype(np.int32))


MODEL = Mlp()


def loss_and_counts(params: Any, x: jax.Array, y: jax.Array) -> tuple[jax.Array, dict[str, rwj.DeviceCounts]]:
    logits, state = MODEL.apply(
        params, x, capture_intermediates=rwj.capture(nn.Dense), mutable=["intermediates"]
    )
    loss = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))
    counts = rwj.intermediate_counts(state["intermediates"], relu=True, include=lambda name: name in HIDDEN)
    return loss, counts


# One jitted gradient for every micro-batch; the counts come out of the same forward pass.
grad_and_counts = jax.jit(jax.grad(loss_and_counts, has_aux=True))


@jax.jit
def sgd(params: Any, grads: Any, lr: jax.Array) -> Any:
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)


def never_firing(params: Any, x: jax.Array) -> dict[str, list[int]]:
    counts = rwj.intermediate_counts(
        MODEL.apply(params, x, capture_intermediates=rwj.capture(nn.Dense), mutable=["intermediates"])[1][
            "intermediates"
        ],
        relu=True,
        include=lambda name: name in HIDDEN,
    )
    return {name: np.flatnonzero(rwj.to_host(c).fires == 0).tolist() for name, c in counts.items()}


def main() -> None:
    brokers, topic, run_id, out = sys.argv[1:5]
    x, y = dataset()
    params = MODEL.init(jax.random.PRNGKey(0), x[:1])
    publisher = Publisher(brokers, topic, run_id=run_id)
    rng = np.random.default_rng(100)
    before_spike: dict[str, list[int]] = {}
    for step in range(STEPS):
        if step == SPIKE_STEP:
            before_spike = never_firing(params, x)
        spike = SPIKE_FACTOR if SPIKE_STEP <= step < SPIKE_STEP + SPIKE_STEPS else 1.0
        lr = jnp.float32(LR * spike * (1 - step / STEPS))
        total = None
        for micro in range(MICRO_BATCHES):
            rows = rng.integers(0, DATASET_ROWS, MICRO_ROWS)
            grads, counts = grad_and_counts(params, x[rows], y[rows])
            if step % EVERY_STEPS == 0:
                rwj.publish(publisher, counts, step, micro_batch=micro, sums=False)
            grads = jax.tree_util.tree_map(lambda g: g / MICRO_BATCHES, grads)
            total = grads if total is None else jax.tree_util.tree_map(jnp.add, total, grads)
        params = sgd(params, total, lr)
    stats = publisher.close()
    result = {
        "layers": list(HIDDEN),
        "sent": stats.sent,
        "offered": stats.offered,
        "dropped": stats.dropped,
        "failed": stats.failed,
        "dead_before_spike": before_spike,
        "dead": never_firing(params, x),
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
