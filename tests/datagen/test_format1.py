"""Version-1 datasets (written by the code before format 2, kept in tests/fixtures/format1) open,
verify, replay, train and evaluate through in-memory migration; `upgrade` rewrites only their
metadata, atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmark.cli import main as bench
from datagen.cli import main as datagen_cli
from datagen.dataset.format import FORMAT_VERSION
from datagen.dataset.ops import upgrade, verify
from datagen.dataset.reader import Dataset
from datagen.envs import env_record
from datagen.replay import replay

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "format1"


@pytest.fixture(params=["pursuit-n2-random-v1.h5", "multiwalker-n2-random-v1.zarr"])
def old(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    target = tmp_path / request.param
    copy = shutil.copytree if (FIXTURES / request.param).is_dir() else shutil.copyfile
    copy(FIXTURES / request.param, target)
    return target


def _array_bytes(path: Path) -> dict[str, str]:
    """Every array's checksum, recomputed by streaming it from storage."""
    with Dataset(path) as dataset:
        return {name: dataset.checksum_of(name) for name in dataset.array_names}


def test_a_format1_file_reads_as_format2(old: Path) -> None:
    with Dataset(old) as dataset:
        assert dataset.stored_format_version == 1
        meta = dataset.metadata
    assert meta["format_version"] == FORMAT_VERSION and meta["upgraded_from"] == 1
    env = meta["env"]
    # Version 1 knew only PettingZoo's pursuit: its files say so once migrated.
    made_by = {"implementation": "pettingzoo"} if env["name"] == "pursuit" else {}
    assert env == env_record(env["name"], meta["n_agents"], max_cycles=30, **made_by)
    assert "kwargs" not in env
    if env["name"] == "pursuit":
        assert env["pettingzoo_kwargs"]["n_pursuers"] == 2
        assert env["pettingzoo_kwargs"]["max_cycles"] == 30
        assert env["implementation"] is None and env["options"]["implementation"] == "pettingzoo"
    else:
        assert env["pettingzoo_kwargs"]["n_walkers"] == 2
        assert "torque_levels" not in env["pettingzoo_kwargs"]
        assert len(env["action_table"]) == 81 and env["action_table"][40] == [0, 0, 0, 0]
    assert verify(old).ok
    assert replay(old).ok


def test_upgrade_rewrites_only_the_metadata(old: Path) -> None:
    with Dataset(old) as dataset:
        content, migrated = dataset.metadata["content_checksum"], dataset.metadata
    arrays = _array_bytes(old)
    result = upgrade(old)
    assert result.rewritten and result.from_version == 1
    with Dataset(old) as dataset:
        assert dataset.stored_format_version == FORMAT_VERSION
        assert dataset.metadata == migrated
        assert dataset.metadata["content_checksum"] == content
    assert _array_bytes(old) == arrays
    assert verify(old).ok
    assert not list(old.parent.glob("*.writing")) and not list(old.rglob("*.writing"))
    again = upgrade(old)
    assert not again.rewritten and again.from_version == FORMAT_VERSION


def test_upgrade_command(old: Path) -> None:
    result = CliRunner().invoke(datagen_cli, ["upgrade", str(old)])
    assert result.exit_code == 0, result.output
    assert f"format version 1 -> {FORMAT_VERSION}" in result.output
    result = CliRunner().invoke(datagen_cli, ["upgrade", str(old)])
    assert result.exit_code == 0 and "already format version" in result.output


def test_an_unknown_version_is_refused_in_one_line(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "future.h5"
    shutil.copyfile(FIXTURES / "pursuit-n2-random-v1.h5", path)
    with h5py.File(path, "r+") as handle:
        meta = json.loads(handle.attrs["metadata"])
        handle.attrs["metadata"] = json.dumps({**meta, "format_version": 7})
    result = CliRunner().invoke(datagen_cli, ["upgrade", str(path)])
    assert result.exit_code == 2
    assert "format version 7 is not supported (this version reads 1, 2, 3)" in result.output


def test_a_format1_file_trains_and_evaluates(tmp_path: Path) -> None:
    dataset = tmp_path / "pursuit-n2-random-v1.h5"
    shutil.copyfile(FIXTURES / dataset.name, dataset)
    run = tmp_path / "run"
    args = ["train", "--algo", "bc", "--dataset", str(dataset), "--updates", "5"]
    args += ["--batch-size", "16", "--out", str(run), "--set", "hidden_size=16"]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        bench, ["evaluate", str(run), "--agents", "4", "--episodes", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["n_agents"] == 4 and record["options"]["max_cycles"] == 30
