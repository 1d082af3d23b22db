"""Session fixtures of the algos tests: tiny datasets and one torch thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from algos.data import OfflineData
from tests.algos.tiny import tiny_datasets


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: the test machines have 2 shared cores, where OpenMP's second thread
    mostly waits for a busy core (10x slower updates measured with 2)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_datasets(tmp_path_factory.getbasetemp() / "tiny-datasets")


@pytest.fixture(scope="session")
def prison_data(tiny_paths: dict[str, Path]) -> OfflineData:
    return OfflineData.from_datasets([tiny_paths["prison"]])


@pytest.fixture(scope="session")
def pursuit_data(tiny_paths: dict[str, Path]) -> OfflineData:
    return OfflineData.from_datasets([tiny_paths["pursuit"]])
