"""Firing counts of JAX arrays, computed on the arrays' device, and helpers for Flax intermediates.

``device_counts`` is jit-compatible: compute the counts inside the jitted function that produces the
activations, return them, and ``publish`` brings them to the host in one transfer. With Flax linen,
``capture_intermediates`` (or ``self.sow("intermediates", name, h)``) collects the activations and
``intermediate_counts`` reduces them per layer::

    @jax.jit
    def probe_counts(params, x):
        _, state = model.apply(
            params, x, capture_intermediates=reluwatch.jax.capture(nn.Dense), mutable=["intermediates"]
        )
        return reluwatch.jax.intermediate_counts(state["intermediates"], relu=True)

    if step % 50 == 0:
        reluwatch.jax.publish(publisher, probe_counts(params, batch[:512]), step)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .publisher import CountsPublisher
from .snapshot import FiringCounts


class DeviceCounts(NamedTuple):
    """Per-unit counts still on the device (a pytree, so jitted functions can return it)."""

    samples: jax.Array  # int32 scalar
    fires: jax.Array  # int32 [units]
    nonfinite: jax.Array  # int32 [units]
    abs_sum: jax.Array  # float32 [units]
    sq_sum: jax.Array  # float32 [units]


def device_counts(x: jax.Array, unit_axis: int = -1, *, relu: bool = False) -> DeviceCounts:
    """The counts of one activation array; every axis but ``unit_axis`` is a sample.

    ``relu=True`` counts ``max(x, 0)`` for a pre-activation (a Dense output that feeds a ReLU): fires
    are the same, and the sums are those of the ReLU's output.
    """
    x = jnp.moveaxis(jnp.asarray(x), unit_axis, -1)
    rows = x.reshape(-1, x.shape[-1])
    finite = jnp.isfinite(rows)
    clean = jnp.where(finite, rows, 0).astype(jnp.float32)
    if relu:
        clean = jnp.maximum(clean, 0)
    return DeviceCounts(
        samples=jnp.asarray(rows.shape[0], jnp.int32),
        fires=jnp.sum(clean > 0, axis=0, dtype=jnp.int32),
        nonfinite=jnp.sum(~finite, axis=0, dtype=jnp.int32),
        abs_sum=jnp.sum(jnp.abs(clean), axis=0),
        sq_sum=jnp.sum(jnp.square(clean), axis=0),
    )


def to_host(counts: DeviceCounts, *, sums: bool = True) -> FiringCounts:
    """The FiringCounts of counts already brought to the host (numpy arrays), or fetched here."""
    c = jax.device_get(counts)
    nonfinite = np.asarray(c.nonfinite, np.uint32)
    return FiringCounts(
        samples=int(c.samples),
        fires=np.asarray(c.fires, np.uint32),
        abs_sum=np.asarray(c.abs_sum, np.float32) if sums else None,
        sq_sum=np.asarray(c.sq_sum, np.float32) if sums else None,
        nonfinite=nonfinite if nonfinite.any() else None,
    )


def firing_counts(
    x: jax.Array, unit_axis: int = -1, *, relu: bool = False, sums: bool = True
) -> FiringCounts:
    """``reluwatch.firing_counts`` for a jax.Array: reduced on its device, then fetched."""
    return to_host(device_counts(x, unit_axis, relu=relu), sums=sums)


def capture(*module_types: type) -> Callable[[Any, str], bool]:
    """A ``capture_intermediates`` filter: the ``__call__`` outputs of modules of these types."""
    return lambda module, method: method == "__call__" and isinstance(module, module_types)


def _leaves(tree: Mapping[str, Any], prefix: tuple[str, ...]) -> list[tuple[str, list[Any]]]:
    out: list[tuple[str, list[Any]]] = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out += _leaves(value, (*prefix, str(key)))
        else:
            # Flax stores each captured or sown value as a tuple, one entry per call.
            name = ".".join(prefix if key == "__call__" else (*prefix, str(key)))
            out.append((name, list(value) if isinstance(value, (tuple, list)) else [value]))
    return out


def intermediate_counts(
    intermediates: Mapping[str, Any],
    *,
    relu: bool = False,
    unit_axis: int = -1,
    include: Callable[[str], bool] | None = None,
) -> dict[str, DeviceCounts]:
    """Counts per layer of a Flax ``intermediates`` collection (or any nested dict of arrays).

    Layers are named by their path joined with dots, without the ``__call__`` of captured outputs
    (``{"Dense_0": {"__call__": (h,)}}`` is layer ``Dense_0``; ``{"block": {"relu": (h,)}}`` sown with
    ``sow`` is ``block.relu``). Several calls of one module in one apply are summed. Jit-compatible.
    """
    out: dict[str, DeviceCounts] = {}
    for name, values in _leaves(intermediates, ()):
        if include is not None and not include(name):
            continue
        parts = [device_counts(v, unit_axis, relu=relu) for v in values]
        out[name] = jax.tree_util.tree_map(lambda *xs: sum(xs[1:], xs[0]), *parts)
    return out


def publish(
    publisher: CountsPublisher,
    counts: Mapping[str, DeviceCounts],
    step: int,
    *,
    micro_batch: int = 0,
    sums: bool = True,
) -> None:
    """Publishes one snapshot per layer of ``counts``, fetched from the device in one transfer."""
    host = jax.device_get(dict(counts))
    for layer, c in host.items():
        publisher.publish(layer, to_host(c, sums=sums), step, micro_batch=micro_batch)
