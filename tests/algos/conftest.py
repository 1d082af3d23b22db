"""Session fixtures of the algos tests: the tiny datasets loaded (tests/conftest.py makes them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from algos.data import OfflineData
from datagen.collect import CollectRequest, collect


@pytest.fixture(scope="session")
def prison_data(tiny_paths: dict[str, Path]) -> OfflineData:
    return OfflineData.from_datasets([tiny_paths["prison"]])


@pytest.fixture(scope="session")
def pursuit_data(tiny_paths: dict[str, Path]) -> OfflineData:
    return OfflineData.from_datasets([tiny_paths["pursuit"]])


def collect_saboteur_data(out: Path, n_episodes: int, seed: int) -> Path:
    """Prison, 4 agents, 60 cycles, one saboteur per episode (it follows the adversary); the
    path of the dataset written at `out`."""
    request = CollectRequest(
        "prison",
        4,
        "degenerate",
        n_episodes=n_episodes,
        seed=seed,
        out=out,
        options={"max_cycles": 60},
        degenerate_mode="saboteur",
    )
    return collect(request)
