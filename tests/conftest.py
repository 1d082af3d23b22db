"""Shared fixtures: every test gets its own data home, so nothing is written into the work tree."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "data-home"
    monkeypatch.setenv("MARL_DATA_HOME", str(home))
    return home
