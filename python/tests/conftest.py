"""Shared fixtures: the repository's paths, a real Kafka broker, unique topics, and reading topics back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support import REPO


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def brokers() -> str:
    """KAFKA_BROKERS, or the local broker of deploy/kafka-local (started if it is not up), as the
    TypeScript suite does."""
    env = os.environ.get("KAFKA_BROKERS", "").strip()
    if env:
        return env
    out = subprocess.run(
        [str(REPO / "deploy/kafka-local/kafka.sh"), "up"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return out.stdout.strip().splitlines()[-1]
