"""reluwatch's trainer side: per-unit ReLU firing counts, published to Kafka for ``reluwatch consume``.

``reluwatch.torch.ReluProbe`` and ``reluwatch.jax`` take the counts from a training loop;
``Publisher`` sends them; ``firing_counts`` computes them from any numpy array.
"""

from .codec import decode_snapshot, encode_snapshot, schema_text, snapshot_fingerprint
from .counts import firing_counts
from .publisher import Publisher, PublisherConnectError, PublisherStats, Security
from .snapshot import ContractError, FiringCounts, RawActivations, Snapshot, layer_key, validate

__version__ = "0.1.0"

__all__ = [
    "ContractError",
    "FiringCounts",
    "Publisher",
    "PublisherConnectError",
    "PublisherStats",
    "RawActivations",
    "Security",
    "Snapshot",
    "decode_snapshot",
    "encode_snapshot",
    "firing_counts",
    "layer_key",
    "schema_text",
    "snapshot_fingerprint",
    "validate",
]
