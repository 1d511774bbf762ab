"""Per-unit firing counts of an activation array with numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .snapshot import FiringCounts


def firing_counts(activations: npt.ArrayLike, unit_axis: int = -1, *, sums: bool = True) -> FiringCounts:
    """Counts, per unit, the samples on which the activation is finite and > 0.

    ``unit_axis`` holds the units; every other axis is a sample (``[batch, tokens, units]`` gives
    batch x tokens samples; pass ``unit_axis=1`` for ``[batch, channels, h, w]``). NaN and infinite
    values are counted in ``nonfinite`` and nowhere else: they are no evidence of firing or of silence.
    Sums accumulate in float64 and are sent as float32.

    >>> c = firing_counts([[0.0, 2.0], [1.5, float("nan")], [0.0, 3.0]])
    >>> c.samples, c.fires.tolist(), c.nonfinite.tolist(), c.abs_sum.tolist()
    (3, [1, 2], [0, 1], [1.5, 5.0])
    """
    a = np.asarray(activations)
    if a.ndim == 0:
        raise ValueError("activations must have at least one axis (the units)")
    a = np.moveaxis(a, unit_axis, -1)
    units = a.shape[-1]
    rows = a.reshape(-1, units)
    if rows.shape[0] == 0:
        raise ValueError("activations hold no samples")
    finite = np.isfinite(rows)
    clean = np.where(finite, rows, 0).astype(np.float64, copy=False)
    nonfinite = rows.shape[0] - np.count_nonzero(finite, axis=0)
    return FiringCounts(
        samples=rows.shape[0],
        fires=np.count_nonzero(clean > 0, axis=0).astype(np.uint32),
        abs_sum=np.abs(clean).sum(axis=0).astype(np.float32) if sums else None,
        sq_sum=np.square(clean).sum(axis=0).astype(np.float32) if sums else None,
        nonfinite=nonfinite.astype(np.uint32) if np.any(nonfinite) else None,
    )
