"""Storage: both backends hold the same content; reads validate; corruption is an error naming the
file and the problem; verify, convert and combine keep their promises."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

from datagen import load_dataset
from datagen.collect import CollectRequest, collect
from datagen.dataset import Dataset
from datagen.dataset.format import Episode
from datagen.dataset.ops import combine, convert, delete, list_local, verify
from datagen.dataset.reader import transition_rows
from datagen.dataset.writer import write_dataset
from datagen.errors import UserError


def _collect(fmt: str, out: Path, seed: int = 0, n_episodes: int = 3, **kwargs) -> Path:
    request = CollectRequest(
        "pursuit",
        2,
        "random",
        n_episodes=n_episodes,
        seed=seed,
        fmt=fmt,
        out=out,
        options={"max_cycles": 30},
        **kwargs,
    )
    return collect(request)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return _collect("hdf5", tmp_path / "d.h5"), _collect("zarr", tmp_path / "d.zarr")


def test_backends_hold_identical_content(pair: tuple[Path, Path]) -> None:
    h5_path, zarr_path = pair
    with Dataset(h5_path) as h5, Dataset(zarr_path) as zr:
        assert h5.metadata["content_checksum"] == zr.metadata["content_checksum"]
        assert h5.metadata["checksums"] == zr.metadata["checksums"]
        a, b = h5.load(), zr.load()
        assert a.keys() == b.keys()
        for name in a:
            assert a[name].dtype == b[name].dtype, name
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_plain_h5py_and_zarr_read_the_contract(pair: tuple[Path, Path]) -> None:
    # A user needs no code of ours: arrays at the root, metadata JSON in the root attribute.
    h5_path, zarr_path = pair
    with h5py.File(h5_path, "r") as handle:
        meta = json.loads(handle.attrs["metadata"])
        assert (
            handle["observations"].shape[0] == meta["totals"]["steps"] + meta["totals"]["episodes"]
        )
        assert handle["actions"].shape == (meta["totals"]["steps"], 2)
    group = zarr.open_group(str(zarr_path), mode="r")
    assert group.attrs["metadata"]["content_checksum"] == meta["content_checksum"]
    np.testing.assert_array_equal(group["episode_lengths"][:], [30, 30, 30])


def test_positions_round_trip_through_both_backends_with_checksums(pair, tmp_path) -> None:
    h5_path, zarr_path = pair
    with Dataset(h5_path) as h5, Dataset(zarr_path) as zr:
        assert "positions" in h5.array_names and "positions" in zr.array_names
        assert h5.metadata["checksums"]["positions"] == zr.metadata["checksums"]["positions"]
        assert h5.metadata["view_radius"] == zr.metadata["view_radius"] == 3.0
        positions = h5.load(["positions"])["positions"]  # checked against its checksum
        np.testing.assert_array_equal(zr.load(["positions"])["positions"], positions)
        transitions, episode = h5.transitions(), h5.episode(1)
    assert positions.shape == (93, 2, 2) and positions.dtype == np.float32
    np.testing.assert_array_equal(episode.positions, positions[31:62])
    np.testing.assert_array_equal(transitions.positions[30], positions[31])
    np.testing.assert_array_equal(transitions.next_positions[30], positions[32])
    with h5py.File(h5_path, "r") as handle:  # plain h5py and zarr read them too
        np.testing.assert_array_equal(handle["positions"][()], positions)
    np.testing.assert_array_equal(
        zarr.open_group(str(zarr_path), mode="r")["positions"][:], positions
    )
    with h5py.File(h5_path, "r+") as handle:
        handle["positions"][3, 1, 0] += 1.0
    assert verify(h5_path).problems == [f"{h5_path}: array 'positions' does not match its checksum"]
    # A dataset without positions (as collected before format 3) cannot be combined with one
    # that has them.
    with Dataset(zarr_path) as source:
        episodes = [replace(e, positions=None) for e in source.episodes()]
        metadata = {k: v for k, v in source.metadata.items() if "checksum" not in k}

    class _Old:
        def __len__(self) -> int:
            return len(episodes)

        def length(self, index: int) -> int:
            return episodes[index].length

        def episode(self, index: int) -> Episode:
            return episodes[index]

    old = tmp_path / "old.h5"
    write_dataset(old, "hdf5", _Old(), {**metadata, "dataset_id": "pursuit-n2-random-v9"})
    assert "positions" not in load_dataset(old).array_names
    assert load_dataset(old).transitions().positions is None
    with pytest.raises(UserError, match="with and without positions: pursuit-n2-random-v9 record"):
        combine([zarr_path, old], "pursuit-n2-mixed-v1", out=tmp_path / "mixed.h5")


def test_transitions_align_observations_with_their_successors(pair: tuple[Path, Path]) -> None:
    obs_rows, next_rows, episode_index = transition_rows(np.array([2, 3]))
    np.testing.assert_array_equal(obs_rows, [0, 1, 3, 4, 5])
    np.testing.assert_array_equal(next_rows, [1, 2, 4, 5, 6])
    np.testing.assert_array_equal(episode_index, [0, 0, 1, 1, 1])
    with load_dataset(pair[0]) as dataset:
        batch = dataset.transitions()
        episode = dataset.episode(1)
        torch_arrays = dataset.to_torch(["rewards"])
    assert len(batch) == 90
    # Transition 30 is step 0 of episode 1.
    np.testing.assert_array_equal(batch.obs[30], episode.observations[0])
    np.testing.assert_array_equal(batch.next_obs[30], episode.observations[1])
    np.testing.assert_array_equal(batch.state[59], episode.state[29])
    np.testing.assert_array_equal(batch.next_state[59], episode.state[30])
    assert batch.truncated[59].all() and not batch.truncated[58].any()
    assert batch.episode_index[30] == 1
    assert batch.action_mask is None
    assert torch_arrays["rewards"].shape == (90, 2)


def test_episodes_iterate_in_order(pair: tuple[Path, Path]) -> None:
    with load_dataset(pair[1]) as dataset:
        episodes = list(dataset.episodes())
        assert len(dataset) == 3 and dataset.n_steps == 90
        returns = [e.team_return() for e in episodes]
        np.testing.assert_allclose(returns, dataset.metadata["stats"]["episode_returns"], rtol=1e-5)
        with pytest.raises(IndexError):
            dataset.episode(3)


def test_convert_both_ways_keeps_the_content_checksum(pair: tuple[Path, Path], tmp_path) -> None:
    h5_path, _ = pair
    as_zarr = convert(h5_path, "zarr", tmp_path / "c.zarr")
    back = convert(as_zarr, "hdf5", tmp_path / "c.h5")
    sums = {load_dataset(p).metadata["content_checksum"] for p in (h5_path, as_zarr, back)}
    assert len(sums) == 1
    with pytest.raises(UserError, match="already exists; pass --force"):
        convert(h5_path, "zarr", tmp_path / "c.zarr")
    with pytest.raises(UserError, match="is already hdf5"):
        convert(h5_path, "hdf5")


def test_verify_passes_a_sound_dataset_and_names_a_tampered_array(pair, tmp_path) -> None:
    h5_path, zarr_path = pair
    assert verify(h5_path).ok and verify(zarr_path).ok
    assert set(verify(h5_path).arrays_checked) == set(load_dataset(h5_path).array_names)
    # Rewrite one value through h5py: the file stays readable, the content does not match.
    with h5py.File(h5_path, "r+") as handle:
        handle["rewards"][5, 0] = 123.0
    report = verify(h5_path)
    assert not report.ok
    assert report.problems == [f"{h5_path}: array 'rewards' does not match its checksum"]
    with pytest.raises(UserError, match="array 'rewards' does not match its checksum"):
        load_dataset(h5_path).load(["rewards"])


def _flip_byte_inside_chunk(path: Path, array: str) -> None:
    with h5py.File(path, "r") as handle:
        info = handle[array].id.get_chunk_info(0)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset + info.size // 2)
        byte = raw.read(1)
        raw.seek(-1, 1)
        raw.write(bytes([byte[0] ^ 0x40]))


def test_a_flipped_bit_is_an_error_never_silent(pair: tuple[Path, Path]) -> None:
    h5_path, zarr_path = pair
    _flip_byte_inside_chunk(h5_path, "observations")
    with pytest.raises(UserError, match=r"d\.h5: array 'observations' is corrupted"):
        load_dataset(h5_path).load(["observations"])
    assert "array 'observations' is corrupted" in verify(h5_path).problems[0]
    chunk = next(
        p for p in (zarr_path / "actions").rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"d\.zarr: array 'actions' is corrupted"):
        load_dataset(zarr_path).load(["actions"])


def test_a_missing_zarr_chunk_is_an_error_not_zeros(pair: tuple[Path, Path]) -> None:
    _, zarr_path = pair
    # terminations are all False: zarr alone would not even write this chunk, and would read a
    # deleted one back as zeros without complaint.
    chunk = zarr_path / "terminations" / "c" / "0" / "0"
    assert chunk.is_file()
    chunk.unlink()
    with load_dataset(zarr_path) as dataset:
        with pytest.raises(UserError, match=r"array 'terminations' is missing chunk 0"):
            dataset.episode(0)
    assert "missing chunk 0" in verify(zarr_path).problems[0]


def test_truncated_foreign_and_unsupported_files_are_named(pair, tmp_path: Path) -> None:
    h5_path, _ = pair
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(h5_path.read_bytes()[: h5_path.stat().st_size // 3])
    with pytest.raises(UserError, match=r"truncated\.h5: not a readable HDF5 file"):
        load_dataset(truncated)
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(UserError, match=r"notes\.h5: not a readable HDF5 file"):
        load_dataset(text)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["x"] = np.arange(3)
    with pytest.raises(UserError, match=r"foreign\.h5: no dataset metadata"):
        load_dataset(foreign)
    csv = tmp_path / "table.csv"
    csv.write_text("a,b")
    with pytest.raises(UserError, match=r"table\.csv: not a dataset path; expected a .h5 file"):
        load_dataset(csv)
    future = tmp_path / "future.h5"
    future.write_bytes(h5_path.read_bytes())
    with h5py.File(future, "r+") as handle:
        meta = json.loads(handle.attrs["metadata"])
        handle.attrs["metadata"] = json.dumps({**meta, "format_version": 99})
    with pytest.raises(UserError, match=r"future\.h5: format version 99 is not supported"):
        load_dataset(future)
    missing = tmp_path / "missing.h5"
    missing.write_bytes(h5_path.read_bytes())
    with h5py.File(missing, "r+") as handle:
        del handle["behaviour_probs"]
    with pytest.raises(UserError, match=r"missing\.h5: missing array 'behaviour_probs'"):
        load_dataset(missing)


class _Exploding:
    """An episode source that fails half-way, as a crash during a write would."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def length(self, index: int) -> int:
        return self.dataset.length(index)

    def episode(self, index: int) -> Episode:
        if index == 2:
            raise RuntimeError("crash during write")
        return self.dataset.episode(index)


@pytest.mark.parametrize("fmt", ["hdf5", "zarr"])
def test_an_interrupted_write_leaves_the_old_dataset_valid(tmp_path: Path, fmt: str) -> None:
    suffix = ".h5" if fmt == "hdf5" else ".zarr"
    path = _collect(fmt, tmp_path / f"old{suffix}")
    before = load_dataset(path).metadata["content_checksum"]
    with Dataset(_collect(fmt, tmp_path / f"new{suffix}", seed=4)) as other:
        with pytest.raises(RuntimeError, match="crash during write"):
            write_dataset(path, fmt, _Exploding(other), other.metadata)
    assert verify(path).ok
    assert load_dataset(path).metadata["content_checksum"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"old{suffix}", f"new{suffix}"])


def test_combine_keeps_labels_and_draws_proportions(tmp_path: Path, data_home: Path) -> None:
    a = _collect("hdf5", None, seed=1, n_episodes=4)
    # A second source with another label, as a different behaviour would produce.
    b = _collect("hdf5", tmp_path / "b.h5", seed=2, n_episodes=4)
    with h5py.File(b, "r+") as handle:
        meta = json.loads(handle.attrs["metadata"])
        meta["policy"]["labels"] = ["saboteur"]
        meta["dataset_id"] = "pursuit-n2-saboteur-v1"
        handle.attrs["metadata"] = json.dumps(meta)
    path = combine([str(a), str(b)], "pursuit-n2-mixed-v1", proportions=[0.75, 0.25])
    with load_dataset("pursuit-n2-mixed-v1") as mixed:
        assert mixed.path == path
        meta = mixed.metadata
        labels = mixed.load(["policy_labels"])["policy_labels"]
    assert meta["policy"]["labels"] == ["random", "saboteur"]
    # min(4 / 0.75, 4 / 0.25) = 5.33 -> 5 episodes: 4 from a (3.75 rounded up), 1 from b.
    assert meta["totals"]["episodes"] == 5
    assert meta["episode_sources"] == [0, 0, 0, 0, 1]
    assert (labels[: 4 * 30] == 0).all() and (labels[4 * 30 :] == 1).all()
    assert verify(path).ok
    everything = combine([str(a), str(b)], "pursuit-n2-all-v1")
    assert load_dataset(everything).metadata["totals"] == {"episodes": 8, "steps": 240}
    with pytest.raises(UserError, match="sum to 1"):
        combine([str(a), str(b)], "pursuit-n2-bad-v1", proportions=[0.5, 0.6])
    other_n = CollectRequest("pursuit", 3, "random", n_episodes=1, options={"max_cycles": 30})
    with pytest.raises(UserError, match="their n_agents differ"):
        combine([str(a), str(collect(other_n))], "pursuit-n2-bad-v1")


def test_list_and_delete(data_home: Path) -> None:
    path = _collect("zarr", None)
    rows = list_local()
    assert [r["dataset_id"] for r in rows] == ["pursuit-n2-random-v1"]
    assert rows[0]["format"] == "zarr" and rows[0]["steps"] == 90 and rows[0]["size_bytes"] > 0
    assert delete("pursuit-n2-random-v1") == path
    assert not path.exists() and list_local() == []
    with pytest.raises(UserError, match="no local dataset 'pursuit-n2-random-v1'"):
        load_dataset("pursuit-n2-random-v1")


def test_unknown_id_names_the_closest_local_ids(data_home: Path) -> None:
    _collect("hdf5", None)
    with pytest.raises(UserError, match="closest local ids: pursuit-n2-random-v1"):
        load_dataset("pursuit-n2-randon-v1")


def test_closest_local_ids_name_an_id_in_both_formats_once(data_home: Path) -> None:
    _collect("hdf5", None)
    _collect("zarr", None)
    _collect("hdf5", None, version=2)
    with pytest.raises(UserError) as raised:
        load_dataset("pursuit-n2-randon-v1")
    assert str(raised.value).endswith(
        "closest local ids: pursuit-n2-random-v1, pursuit-n2-random-v2"
    )
