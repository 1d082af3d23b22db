"""Shared fixtures: every test gets its own data home, so nothing is written into the work tree;
torch runs on one thread; the tiny datasets of tests/algos/tiny.py are made once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.algos.tiny import tiny_datasets


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "data-home"
    monkeypatch.setenv("MARL_DATA_HOME", str(home))
    return home


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
