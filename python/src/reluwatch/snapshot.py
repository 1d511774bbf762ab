"""The ActivationSnapshot record (schemas/ActivationSnapshot.avsc) as Python values, and the
checks the consumer makes on it, so a publisher never sends what reluwatch would reject.

Error codes are the consumer's (docs/errors.md): a ``ContractError`` with code ``FIRES_EXCEED_SAMPLES``
here is the same rejection the consumer would dead-letter as ``fires_exceed_samples``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

ActivationDtype = Literal["FLOAT32", "FLOAT16", "BFLOAT16"]
DTYPE_BYTES: dict[str, int] = {"FLOAT32": 4, "FLOAT16": 2, "BFLOAT16": 2}

INT_MAX = 2**31 - 1
# step, time and incarnation are Avro longs; the consumer's Avro library reads them up to 2^53 - 2.
SAFE_MAX = 2**53 - 2
MAX_NAME_BYTES = 512


class ContractError(ValueError):
    """A snapshot that breaks the contract; ``code`` is one of the consumer's codec error codes."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}{f' ({field})' if field else ''}: {message}")
        self.code = code
        self.field = field


@dataclass(frozen=True)
class FiringCounts:
    """Per-unit statistics over ``samples`` inputs.

    ``fires[i]``: samples on which unit i was finite and > 0. ``nonfinite[i]``: samples on which it was
    NaN or infinite (None when every value was finite). ``abs_sum`` and ``sq_sum`` cover finite values
    only, or are None when not computed.
    """

    samples: int
    fires: npt.NDArray[np.uint32]
    abs_sum: npt.NDArray[np.float32] | None = None
    sq_sum: npt.NDArray[np.float32] | None = None
    nonfinite: npt.NDArray[np.uint32] | None = None

    @property
    def units(self) -> int:
        return int(self.fires.shape[0])

    def __add__(self, other: FiringCounts) -> FiringCounts:
        """Counts of two disjoint sets of samples of the same units (e.g. two micro-batches)."""
        if other.units != self.units:
            raise ValueError(f"cannot add counts of {other.units} units to counts of {self.units}")

        def add(a: np.ndarray | None, b: np.ndarray | None, dtype: type) -> np.ndarray | None:
            if a is None and b is None:
                return None
            if dtype is np.float32 and (a is None or b is None):
                return None  # a sum known for only part of the samples is no sum
            zero = np.zeros(self.units, dtype)
            return (
                (a if a is not None else zero).astype(np.float64) + (b if b is not None else zero)
            ).astype(dtype)

        return FiringCounts(
            samples=self.samples + other.samples,
            fires=(self.fires.astype(np.uint64) + other.fires).astype(np.uint32),
            abs_sum=add(self.abs_sum, other.abs_sum, np.float32),
            sq_sum=add(self.sq_sum, other.sq_sum, np.float32),
            nonfinite=add(self.nonfinite, other.nonfinite, np.uint32),
        )


@dataclass(frozen=True)
class RawActivations:
    """Unreduced row-major ``[samples x unit_count]`` little-endian values of ``dtype``."""

    dtype: ActivationDtype
    values: bytes


@dataclass(frozen=True)
class Snapshot:
    """One ActivationSnapshot: one layer (or shard), one rank, one step, one pass of that step."""

    run_id: str
    layer: str
    rank: int
    step: int
    time: int
    unit_count: int
    layer_units: int
    samples: int
    stats: FiringCounts | RawActivations
    unit_offset: int = 0
    micro_batch: int = 0
    incarnation: int = 0

    @property
    def key(self) -> str:
        """The Kafka key: every rank and shard of a layer lands in one partition."""
        return layer_key(self.run_id, self.layer)


def layer_key(run_id: str, layer: str) -> str:
    return f"{run_id}/{layer}"


def _name(value: object, field: str) -> None:
    if not isinstance(value, str):
        raise ContractError("MALFORMED", f"must be a string, got {type(value).__name__}", field)
    if not value:
        raise ContractError("EMPTY_NAME", "must not be empty", field)
    size = len(value.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise ContractError("TOO_LARGE", f"{size} UTF-8 bytes, more than {MAX_NAME_BYTES}", field)


def _integer(value: object, field: str, *, low: int, high: int = INT_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ContractError("MALFORMED", f"must be an integer, got {value!r}", field)
    n = int(value)
    if n > high:
        raise ContractError("MALFORMED", f"must be an integer within Avro's range, got {n}", field)
    if n < low:
        code = "NOT_POSITIVE" if low == 1 else "NEGATIVE"
        raise ContractError(code, f"must be >= {low}, got {n}", field)
    return n


def _per_unit(values: object, units: int, field: str, kind: str) -> np.ndarray:
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        raise ContractError("MALFORMED", f"must be a 1-D numpy array of {kind}", field)
    if values.shape[0] != units:
        raise ContractError("LENGTH_MISMATCH", f"{values.shape[0]} values for unit_count {units}", field)
    return values


def _counts(fires: np.ndarray, nonfinite: np.ndarray | None, samples: int) -> None:
    """fires[i] <= samples - nonfinite[i] and nonfinite[i] <= samples, as the consumer checks."""
    bad = np.zeros(fires.shape[0], np.int64) if nonfinite is None else nonfinite.astype(np.int64)
    if bad.size and int(bad.max()) > samples:
        i = int(np.argmax(bad > samples))
        raise ContractError(
            "FIRES_EXCEED_SAMPLES",
            f"unit {i} had {bad[i]} non-finite values in {samples} samples",
            "stats.nonfinite",
        )
    over = fires.astype(np.int64) > samples - bad
    if over.any():
        i = int(np.argmax(over))
        raise ContractError(
            "FIRES_EXCEED_SAMPLES",
            f"unit {i} fired {fires[i]} times in {samples - bad[i]} finite samples",
            "stats.fires",
        )


def _sums(values: np.ndarray, units: int, field: str) -> None:
    """A NaN or infinite sum is what a diverging model produces and the consumer takes it (leaving
    that snapshot's sums out); a negative one cannot come from any activation."""
    _per_unit(values, units, field, "float32")
    negative = values < 0
    negative &= np.isfinite(values)
    if negative.any():
        i = int(np.argmax(negative))
        raise ContractError(
            "BAD_SUM", f"unit {i}: {values[i]} (a sum of |h| or h^2 is never negative)", field
        )


def validate(s: Snapshot) -> Snapshot:
    """Checks what the schema cannot, as the consumer does; raises ContractError at the first violation."""
    _name(s.run_id, "run_id")
    _name(s.layer, "layer")
    _integer(s.rank, "rank", low=0)
    _integer(s.step, "step", low=0, high=SAFE_MAX)
    _integer(s.time, "time", low=0, high=SAFE_MAX)
    offset = _integer(s.unit_offset, "unit_offset", low=0)
    units = _integer(s.unit_count, "unit_count", low=1)
    layer_units = _integer(s.layer_units, "layer_units", low=1)
    samples = _integer(s.samples, "samples", low=1)
    _integer(s.micro_batch, "micro_batch", low=0)
    _integer(s.incarnation, "incarnation", low=0, high=SAFE_MAX)
    if offset + units > layer_units:
        raise ContractError(
            "UNIT_RANGE",
            f"units {offset}..{offset + units - 1} outside a layer of {layer_units}",
            "unit_count",
        )
    stats = s.stats
    if isinstance(stats, FiringCounts):
        fires = _per_unit(stats.fires, units, "stats.fires", "uint32")
        nonfinite = None
        if stats.nonfinite is not None:
            nonfinite = _per_unit(stats.nonfinite, units, "stats.nonfinite", "uint32")
        _counts(fires, nonfinite, samples)
        for name in ("abs_sum", "sq_sum"):
            sums = getattr(stats, name)
            if sums is not None:
                _sums(sums, units, f"stats.{name}")
    elif isinstance(stats, RawActivations):
        if stats.dtype not in DTYPE_BYTES:
            raise ContractError("UNKNOWN_DTYPE", f"{stats.dtype!r}", "stats.dtype")
        expected = samples * units * DTYPE_BYTES[stats.dtype]
        if len(stats.values) != expected:
            raise ContractError(
                "LENGTH_MISMATCH",
                f"{len(stats.values)} bytes for {samples} x {units} {stats.dtype} values ({expected})",
                "stats.values",
            )
    else:
        raise ContractError("MALFORMED", "stats is neither FiringCounts nor RawActivations", "stats")
    return s
