"""The dataset format: which arrays a dataset holds, and how its checksums and stats are computed.

Agents live on axis 1 in `possible_agents` order; episodes are concatenated on axis 0. Arrays
indexed by observation have T + 1 rows per episode (the final observation is kept), arrays
indexed by step have T rows. See docs/dataset-format.md for the full contract.

`positions` (format 3 on) records where every agent is, in the env's world units; it serves only to
decide which teammates may exchange messages (`algos.coordination`), never as an input feature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

#: The format datasets are written in; `migrate` reads older ones.
FORMAT_VERSION = 3

#: Arrays with T + 1 rows per episode.
OBS_ARRAYS = ("observations", "alive", "positions", "state", "action_mask")
#: Arrays with T rows per episode.
STEP_ARRAYS = (
    "actions",
    "rewards",
    "terminations",
    "truncations",
    "behaviour_probs",
    "policy_labels",
)
#: Arrays every dataset has (`state` and `action_mask` only when the env has them; `positions`
#: in datasets collected in format 3 or later).
REQUIRED_ARRAYS = ("episode_lengths", "observations", "alive", *STEP_ARRAYS)


@dataclass
class Episode:
    """One episode of a team, agents on axis 1.

    Attributes:
        observations: (T+1, N, *obs_shape) every observation, the final one included.
        alive: (T+1, N) bool, whether each agent is alive at each observation.
        actions: (T, N) int64.
        rewards: (T, N) float32.
        terminations: (T, N) bool, raw from the env.
        truncations: (T, N) bool, raw from the env.
        behaviour_probs: (T, N, A) float32, the distribution each action was sampled from.
        policy_labels: (T, N) int8, which behaviour drove each agent.
        positions: (T+1, N, 2) float32 every agent's position in the env's world units (a dead
            agent's is where it was last seen alive), or None (datasets before format 3).
        state: (T+1, *state_shape) global state, or None when the env has none.
        action_mask: (T+1, N, A) bool legal actions, or None when the env has none.
    """

    observations: np.ndarray
    alive: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    behaviour_probs: np.ndarray
    policy_labels: np.ndarray
    positions: np.ndarray | None = None
    state: np.ndarray | None = None
    action_mask: np.ndarray | None = None

    @property
    def length(self) -> int:
        return len(self.actions)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array present, by its storage name."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def team_return(self) -> float:
        return float(self.rewards.sum(dtype=np.float64))


def canonical(array: np.ndarray) -> np.ndarray:
    """The array as hashed: C-contiguous and little-endian, whatever the backend returned."""
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array


class ArrayHasher:
    """sha256 of one array, fed block by block along axis 0.

    The checksum is sha256 of `name|dtype|shape|<sha256 of the bytes>`, so it can be computed while
    streaming, before the final shape is known, and checked again by reading in any block size.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.data = hashlib.sha256()
        self.dtype: np.dtype | None = None
        self.rows = 0
        self.row_shape: tuple[int, ...] = ()

    def update(self, block: np.ndarray) -> None:
        block = canonical(block)
        self.dtype, self.row_shape = block.dtype, block.shape[1:]
        self.rows += len(block)
        if block.size:
            self.data.update(memoryview(block).cast("B"))  # no copy of the bytes

    def hexdigest(self) -> str:
        shape = (self.rows, *self.row_shape)
        header = f"{self.name}|{np.dtype(self.dtype).str}|{shape}|{self.data.hexdigest()}"
        return hashlib.sha256(header.encode()).hexdigest()


def array_checksum(name: str, blocks: Iterator[np.ndarray]) -> str:
    """The `ArrayHasher` checksum of an array given as blocks along axis 0."""
    hasher = ArrayHasher(name)
    for block in blocks:
        hasher.update(block)
    return hasher.hexdigest()


def content_checksum(array_checksums: dict[str, str]) -> str:
    """One sha256 over every array's checksum, in name order (metadata is not part of it)."""
    lines = "\n".join(f"{name}:{array_checksums[name]}" for name in sorted(array_checksums))
    return hashlib.sha256(lines.encode()).hexdigest()


def return_stats(returns: list[float]) -> dict[str, Any]:
    """Team-return statistics over episodes: the per-episode list and its summary."""
    values = np.asarray(returns, dtype=np.float64)
    if len(values) == 0:
        return {"episode_returns": [], "mean": None}
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return {
        "episode_returns": [round(float(v), 6) for v in values],
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "q25": float(q25),
        "median": float(median),
        "q75": float(q75),
    }


def transition_keys(episode: Episode) -> list[bytes]:
    """One short hash per transition of (joint observation, joint action), for coverage.

    Coverage (OG-MARL's SACo) is the number of unique keys over the number of transitions.
    """
    keys = []
    for t in range(episode.length):
        digest = hashlib.blake2b(digest_size=12)
        digest.update(canonical(episode.observations[t]).tobytes())
        digest.update(canonical(episode.actions[t]).tobytes())
        keys.append(digest.digest())
    return keys
