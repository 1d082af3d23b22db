"""Session fixtures of the algos tests: the tiny datasets loaded (tests/conftest.py makes them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from algos.data import OfflineData


@pytest.fixture(scope="session")
def prison_data(tiny_paths: dict[str, Path]) -> OfflineData:
    return OfflineData.from_datasets([tiny_paths["prison"]])


@pytest.fixture(scope="session")
def pursuit_data(tiny_paths: dict[str, Path]) -> OfflineData:
    return OfflineData.from_datasets([tiny_paths["pursuit"]])
