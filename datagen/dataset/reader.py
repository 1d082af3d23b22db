"""Read datasets of either backend through one class, `Dataset`, and find them by id or path.

Opening a dataset validates its structure (format version, every required array, consistent row
counts); whole-array loads check each array against its stored checksum, so a corrupted file is an
error naming the file and the array, never a silent partial read.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datagen.dataset.backends import SUFFIXES, format_of, open_reader
from datagen.dataset.format import (
    OBS_ARRAYS,
    REQUIRED_ARRAYS,
    STEP_ARRAYS,
    Episode,
    array_checksum,
)
from datagen.dataset.ids import DatasetId, data_home
from datagen.dataset.migrate import current_metadata
from datagen.errors import UserError

#: Rows per read when streaming an array for hashing.
_BLOCK_BYTES = 16 << 20


@dataclass(frozen=True)
class Transitions:
    """Every transition of a dataset, agents on axis 1 (T transitions, N agents, A actions).

    Attributes:
        obs: (T, N, *obs_shape) observation before the step.
        next_obs: (T, N, *obs_shape) observation after the step.
        actions: (T, N) int64.
        rewards: (T, N) float32.
        terminated: (T, N) bool, raw from the env.
        truncated: (T, N) bool, raw from the env (bootstrap from next_obs).
        alive: (T, N) bool, the agent acted at this step.
        next_alive: (T, N) bool, the agent is alive in next_obs (False: no bootstrap).
        behaviour_probs: (T, N, A) float32.
        policy_labels: (T, N) int8.
        episode_index: (T,) int64, the episode of each transition.
        positions: (T, N, 2) float32 every agent's position before the step, or None (datasets
            before format 3).
        next_positions: (T, N, 2) float32, after the step, or None.
        action_mask: (T, N, A) bool legal actions, or None.
        next_action_mask: (T, N, A) bool, or None.
        state: (T, *state_shape) global state, or None.
        next_state: (T, *state_shape), or None.
    """

    obs: np.ndarray
    next_obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    alive: np.ndarray
    next_alive: np.ndarray
    behaviour_probs: np.ndarray
    policy_labels: np.ndarray
    episode_index: np.ndarray
    positions: np.ndarray | None = None
    next_positions: np.ndarray | None = None
    action_mask: np.ndarray | None = None
    next_action_mask: np.ndarray | None = None
    state: np.ndarray | None = None
    next_state: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.actions)


def transition_rows(episode_lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map transitions to rows: step t of episode e is transition row i, and its observation sits
    at row i + e of the observation arrays (each episode has one more observation than steps).

    Returns:
        (obs_rows, next_obs_rows, episode_index), each (T,) int64.
    """
    lengths = np.asarray(episode_lengths, dtype=np.int64)
    episode_index = np.repeat(np.arange(len(lengths)), lengths)
    obs_rows = np.arange(int(lengths.sum())) + episode_index
    return obs_rows, obs_rows + 1, episode_index


class Dataset:
    """An offline dataset on disk, HDF5 or Zarr.

    `len(dataset)` is the number of episodes; `n_steps` the number of transitions.

    Args:
        path: a `.h5` file or `.zarr` directory.

    Raises:
        UserError: when the path is not a readable dataset of a supported format version, or
            when an array is missing or has the wrong number of rows.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such dataset")
        self.format = format_of(self.path)
        self._reader = open_reader(self.path)
        metadata = self._reader.metadata()
        if not isinstance(metadata, dict) or "format_version" not in metadata:
            raise UserError(
                f"{self.path}: no dataset metadata; not a marl-offline-coordination dataset"
            )
        #: The format version of the file as stored (its metadata is migrated to the current one).
        self.stored_format_version = metadata["format_version"]
        self.metadata: dict[str, Any] = current_metadata(metadata, self.path)
        self._cache: dict[str, np.ndarray] = {}
        self._validate_structure()
        self.episode_lengths = self.read("episode_lengths")
        if int(self.episode_lengths.sum()) != self.n_steps:
            raise UserError(f"{self.path}: episode_lengths do not add up to the number of steps")
        self._episode_starts = np.concatenate([[0], np.cumsum(self.episode_lengths)])

    def _validate_structure(self) -> None:
        names = set(self._reader.names())
        expected = set(self.metadata.get("checksums", {}))
        for name in sorted(set(REQUIRED_ARRAYS) | expected):
            if name not in names:
                raise UserError(f"{self.path}: missing array {name!r}")
        n_episodes = self._reader.shape("episode_lengths")[0]
        n_steps = self._reader.shape("actions")[0]
        n_agents = self.metadata["n_agents"]
        for name in sorted(names):
            shape = self._reader.shape(name)
            if name in OBS_ARRAYS:
                expected_rows = n_steps + n_episodes
            elif name in STEP_ARRAYS:
                expected_rows = n_steps
            else:
                continue
            if shape[0] != expected_rows:
                raise UserError(
                    f"{self.path}: array {name!r} has {shape[0]} rows, expected {expected_rows}"
                )
            if name != "state" and (len(shape) < 2 or shape[1] != n_agents):
                raise UserError(f"{self.path}: array {name!r} does not have {n_agents} agents")
        self.n_steps = n_steps

    # ------------------------------------------------------------------------------ properties
    @property
    def dataset_id(self) -> str:
        return self.metadata["dataset_id"]

    @property
    def n_agents(self) -> int:
        return int(self.metadata["n_agents"])

    @property
    def agent_ids(self) -> list[str]:
        return list(self.metadata["agent_ids"])

    @property
    def array_names(self) -> list[str]:
        return sorted(self.metadata["checksums"])

    @property
    def nbytes(self) -> int:
        """Bytes of every array once loaded into RAM (uncompressed)."""
        return sum(
            int(np.prod(self._reader.shape(name), dtype=np.int64))
            * self._reader.dtype(name).itemsize
            for name in self.array_names
        )

    def __len__(self) -> int:
        return len(self.episode_lengths)

    def __repr__(self) -> str:
        size = f"{len(self)} episodes, {self.n_steps} steps"
        return f"Dataset({self.dataset_id!r}, {size}, {self.format})"

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()

    # ----------------------------------------------------------------------------------- reads
    def read(self, name: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of one array, straight from storage (no checksum check)."""
        if name not in self.metadata["checksums"]:
            raise UserError(
                f"{self.path}: no array {name!r}; arrays: {', '.join(self.array_names)}"
            )
        return self._reader.read(name, start, stop)

    def _blocks(self, name: str) -> Iterator[np.ndarray]:
        shape, dtype = self._reader.shape(name), self._reader.dtype(name)
        row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)
        step = max(1, _BLOCK_BYTES // row_bytes)
        for start in range(0, shape[0], step):
            yield self._reader.read(name, start, min(start + step, shape[0]))

    def checksum_of(self, name: str) -> str:
        """Recompute one array's checksum by streaming it from storage."""
        return array_checksum(name, self._blocks(name))

    def load(self, names: list[str] | None = None, verify: bool = True) -> dict[str, np.ndarray]:
        """Load arrays whole into RAM (all when `names` is None), cached.

        Args:
            names: which arrays.
            verify: check each array against its stored checksum.

        Raises:
            UserError: when an array does not match its checksum.
        """
        wanted = names or self.array_names
        missing = [name for name in wanted if name not in self._cache]
        # Hashing releases the GIL: check each array in a thread while the next one is read.
        with ThreadPoolExecutor(max_workers=1) as hasher:
            pending = []
            for name in missing:
                values = self.read(name)
                if verify:
                    pending.append(
                        (name, values, hasher.submit(array_checksum, name, iter([values])))
                    )
                else:
                    self._cache[name] = values
            for name, values, checksum in pending:
                if checksum.result() != self.metadata["checksums"][name]:
                    raise UserError(f"{self.path}: array {name!r} does not match its checksum")
                self._cache[name] = values
        return {name: self._cache[name] for name in wanted}

    def to_torch(self, names: list[str] | None = None, verify: bool = True) -> dict[str, Any]:
        """`load` as torch tensors (sharing memory with the numpy arrays)."""
        import torch

        return {name: torch.from_numpy(values) for name, values in self.load(names, verify).items()}

    def episode(self, index: int) -> Episode:
        """Episode `index`, read from storage."""
        if not 0 <= index < len(self):
            raise IndexError(f"episode {index} out of range (dataset has {len(self)})")
        start, stop = int(self._episode_starts[index]), int(self._episode_starts[index + 1])
        obs_start, obs_stop = start + index, stop + index + 1
        arrays = {}
        for name in self.array_names:
            if name == "episode_lengths":
                continue
            arrays[name] = (
                self.read(name, obs_start, obs_stop)
                if name in OBS_ARRAYS
                else self.read(name, start, stop)
            )
        return Episode(**arrays)

    def episodes(self) -> Iterator[Episode]:
        """Every episode, in order."""
        for index in range(len(self)):
            yield self.episode(index)

    def length(self, index: int) -> int:
        """Steps of episode `index` (with `episode`, a dataset is an `EpisodeSource`)."""
        return int(self.episode_lengths[index])

    def transitions(self, verify: bool = True) -> Transitions:
        """Every transition as aligned arrays, ready for training (see `Transitions`)."""
        arrays = self.load(verify=verify)
        obs_rows, next_rows, episode_index = transition_rows(arrays["episode_lengths"])

        def pair(name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
            if name not in arrays:
                return None, None
            return arrays[name][obs_rows], arrays[name][next_rows]

        obs, next_obs = pair("observations")
        alive, next_alive = pair("alive")
        positions, next_positions = pair("positions")
        mask, next_mask = pair("action_mask")
        state, next_state = pair("state")
        return Transitions(
            obs=obs,
            next_obs=next_obs,
            actions=arrays["actions"],
            rewards=arrays["rewards"],
            terminated=arrays["terminations"],
            truncated=arrays["truncations"],
            alive=alive,
            next_alive=next_alive,
            behaviour_probs=arrays["behaviour_probs"],
            policy_labels=arrays["policy_labels"],
            episode_index=episode_index,
            positions=positions,
            next_positions=next_positions,
            action_mask=mask,
            next_action_mask=next_mask,
            state=state,
            next_state=next_state,
        )


def local_datasets(root: Path | None = None) -> list[Path]:
    """Paths of the finished datasets under `root` (default: the data home), sorted."""
    base = data_home() if root is None else Path(root)
    if not base.exists():
        return []
    found = [p for suffix in SUFFIXES for p in base.glob(f"*/n*/*{suffix}")]
    return sorted(p for p in found if not p.name.endswith((".writing", ".partial", ".old")))


def resolve(id_or_path: str | Path) -> Path:
    """The path of a dataset given as a path or as an id in the data home.

    Raises:
        UserError: when nothing matches; names the closest local ids.
    """
    candidate = Path(id_or_path)
    if candidate.exists():
        return candidate
    text = str(id_or_path)
    if Path(text).suffix in SUFFIXES or "/" in text:
        raise UserError(f"{text}: no such dataset")
    dataset_id = DatasetId.parse(text)
    for fmt in ("hdf5", "zarr"):
        path = dataset_id.path(fmt)
        if path.exists():
            return path
    local = list(dict.fromkeys(_id_of(p) for p in local_datasets()))  # once if in both formats
    close = difflib.get_close_matches(text, local, n=3)
    hint = f"; closest local ids: {', '.join(close)}" if close else ""
    raise UserError(f"no local dataset {text!r} under {data_home()}{hint}")


def _id_of(path: Path) -> str:
    quality_version = path.name.rsplit(".", 1)[0]
    return f"{path.parent.parent.name}-{path.parent.name}-{quality_version}"


def open_dataset(id_or_path: str | Path) -> Dataset:
    """Open a dataset by id (looked up in the data home) or by path.

    `datagen.load_dataset(ID, download=True)` also fetches a published dataset the data home
    lacks; this opener never reaches beyond the disk.

    Raises:
        UserError: nothing found (naming the closest local ids), or not a readable dataset.
    """
    return Dataset(resolve(id_or_path))
