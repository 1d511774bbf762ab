"""reluwatch.firing_counts against a per-element count, on every layout and on NaNs."""

from __future__ import annotations

import numpy as np
import pytest

from reluwatch import FiringCounts, firing_counts


def brute(rows: np.ndarray) -> tuple[list[int], list[int], list[float]]:
    """Per unit (column): fires, nonfinite, sum of finite |x|, counted element by element."""
    fires, bad, sums = [], [], []
    for u in range(rows.shape[1]):
        col = [float(x) for x in rows[:, u]]
        fires.append(sum(1 for x in col if np.isfinite(x) and x > 0))
        bad.append(sum(1 for x in col if not np.isfinite(x)))
        sums.append(sum(abs(x) for x in col if np.isfinite(x)))
    return fires, bad, sums


def test_counts_of_batch_by_units_match_an_element_by_element_count() -> None:
    rng = np.random.default_rng(1)
    a = np.maximum(rng.normal(size=(300, 7)), 0).astype(np.float32)
    a[:, 3] = 0  # a silent unit
    c = firing_counts(a)
    fires, _bad, sums = brute(a)
    assert c.samples == 300
    assert c.fires.dtype == np.uint32
    assert c.fires.tolist() == fires
    assert c.fires[3] == 0
    assert c.nonfinite is None
    np.testing.assert_allclose(c.abs_sum, sums, rtol=1e-6)
    np.testing.assert_allclose(c.sq_sum, (a.astype(np.float64) ** 2).sum(0), rtol=1e-6)


def test_every_leading_axis_is_a_sample_and_unit_axis_picks_the_channels() -> None:
    rng = np.random.default_rng(2)
    tokens = rng.normal(size=(4, 5, 3))  # [batch, tokens, units]
    c = firing_counts(tokens)
    assert c.samples == 20
    assert c.fires.tolist() == brute(tokens.reshape(20, 3))[0]
    images = rng.normal(size=(2, 6, 4, 4))  # NCHW
    c = firing_counts(images, unit_axis=1)
    assert (c.samples, c.units) == (32, 6)
    assert c.fires.tolist() == brute(np.moveaxis(images, 1, -1).reshape(32, 6))[0]


def test_nan_and_inf_are_neither_fires_nor_silence() -> None:
    a = np.array([[np.nan, 1.0, 0.0], [np.inf, 2.0, -np.inf], [np.nan, np.nan, 0.0]])
    c = firing_counts(a)
    assert c.fires.tolist() == [0, 2, 0]
    assert c.nonfinite is not None
    assert c.nonfinite.tolist() == [3, 1, 1]
    assert c.abs_sum is not None
    assert c.abs_sum.tolist() == [0.0, 3.0, 0.0]
    assert np.all(np.isfinite(c.sq_sum))


def test_sums_accumulate_in_float64() -> None:
    # 2^24 + 1 is not a float32: a float32 running sum of 1.0s stops growing at 2^24.
    a = np.ones((2**24 + 2, 1), np.float32)
    c = firing_counts(a)
    assert c.abs_sum is not None
    assert c.abs_sum[0] == np.float32(2**24 + 2)


def test_sums_can_be_left_out_and_integers_count() -> None:
    c = firing_counts(np.array([[0, 3], [5, 0]], np.int64), sums=False)
    assert (c.abs_sum, c.sq_sum) == (None, None)
    assert c.fires.tolist() == [1, 1]


def test_no_units_or_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one axis"):
        firing_counts(np.float32(1.0))
    with pytest.raises(ValueError, match="no samples"):
        firing_counts(np.zeros((0, 4)))


def test_counts_of_two_micro_batches_add_up_to_the_counts_of_both() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(10, 4)), rng.normal(size=(6, 4))
    b[0, 0] = np.nan
    total = firing_counts(a) + firing_counts(b)
    both = firing_counts(np.concatenate([a, b]))
    assert isinstance(total, FiringCounts)
    assert total.samples == both.samples == 16
    assert total.fires.tolist() == both.fires.tolist()
    assert total.nonfinite is not None
    assert total.nonfinite.tolist() == [1, 0, 0, 0]
    np.testing.assert_allclose(total.abs_sum, both.abs_sum, rtol=1e-6)
    with pytest.raises(ValueError, match="cannot add"):
        _ = firing_counts(a) + firing_counts(a[:, :2])
