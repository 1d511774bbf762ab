"""The schemas inside the package are the repository's schemas/, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from reluwatch import schema_text, snapshot_fingerprint


@pytest.mark.parametrize("name", ["ActivationSnapshot.avsc", "UnitTransition.avsc"])
def test_shipped_schema_is_identical_to_the_repository_copy(repo: Path, name: str) -> None:
    assert schema_text(name) == (repo / "schemas" / name).read_text(encoding="utf-8")


def test_every_repository_schema_is_shipped(repo: Path) -> None:
    shipped = sorted(p.name for p in (Path(__file__).parents[1] / "src/reluwatch/schemas").glob("*.avsc"))
    assert shipped == sorted(p.name for p in (repo / "schemas").glob("*.avsc"))


def test_fingerprint_is_crc64_avro_of_the_canonical_form() -> None:
    # Independent of fastavro: the CRC-64-AVRO (Rabin) algorithm of the Avro specification.
    import json

    import fastavro
    from fastavro.schema import to_parsing_canonical_form

    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    canonical = to_parsing_canonical_form(
        fastavro.parse_schema(json.loads(schema_text("ActivationSnapshot.avsc")))
    )
    for byte in canonical.encode("utf-8"):
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    assert fp.to_bytes(8, "little").hex() == snapshot_fingerprint()
