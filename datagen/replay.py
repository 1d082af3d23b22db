"""Replay a dataset through its env, built from the dataset's metadata alone, and compare every
array the env produces with what is stored.

Episode e is replayed on a freshly built env (`env_from_record(metadata["env"])`) from
`reset(seed=metadata["episode_seeds"][e])`, feeding the stored actions. At every step the
observations, `alive` flags, positions and global state (when stored), rewards, terminations and
truncations must equal the stored rows bit for bit, the episode must end exactly where the stored
one ends, and each stored action must have had a positive probability under the stored
`behaviour_probs`. The first difference is reported by episode, step, agent and array.

docs/dataset-format.md carries the same replay written with numpy, h5py/zarr, PettingZoo and
SuperSuit only; `tests/datagen/test_replay.py` runs both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datagen.dataset.reader import Dataset, resolve
from datagen.envs import env_from_record
from datagen.errors import UserError


@dataclass(frozen=True)
class Mismatch:
    """The first difference between a replay and the stored dataset.

    Attributes:
        episode: the episode index.
        step: the transition index within the episode; for observation arrays, the observation
            after that step; None for the observation of the reset.
        agent: the agent id, or None for team-wide arrays (state, episode length).
        array: the stored array that differs (or `episode_lengths`).
        detail: what was stored and what the replay gave.
    """

    episode: int
    step: int | None
    agent: str | None
    array: str
    detail: str

    def __str__(self) -> str:
        where = [f"episode {self.episode}", "reset" if self.step is None else f"step {self.step}"]
        if self.agent is not None:
            where.append(f"agent {self.agent}")
        return f"{', '.join(where)}, array {self.array}: {self.detail}"


@dataclass(frozen=True)
class ReplayReport:
    """What `replay` found.

    Attributes:
        path: the dataset.
        n_episodes: episodes replayed (up to and including the one that differed).
        n_steps: steps replayed.
        mismatch: the first difference, or None when every array matched.
    """

    path: Path
    n_episodes: int
    n_steps: int
    mismatch: Mismatch | None

    @property
    def ok(self) -> bool:
        return self.mismatch is None


class _Differs(Exception):
    def __init__(self, mismatch: Mismatch) -> None:
        self.mismatch = mismatch


def _compare(
    episode: int,
    step: int | None,
    array: str,
    stored: np.ndarray,
    replayed: np.ndarray,
    agent_ids: list[str] | None,
) -> None:
    """Raise `_Differs` naming the first agent (axis 0) whose rows differ, or the whole array
    when `agent_ids` is None (team-wide arrays)."""
    replayed = np.asarray(replayed, dtype=stored.dtype)
    if replayed.shape == stored.shape and np.array_equal(replayed, stored):
        return
    if agent_ids is None or replayed.shape != stored.shape:
        raise _Differs(
            Mismatch(
                episode, step, None, array, f"stored {_show(stored)}, replayed {_show(replayed)}"
            )
        )
    for i, agent in enumerate(agent_ids):
        if not np.array_equal(replayed[i], stored[i]):
            detail = f"stored {_show(stored[i])}, replayed {_show(replayed[i])}"
            raise _Differs(Mismatch(episode, step, agent, array, detail))


def _show(values: np.ndarray) -> str:
    values = np.asarray(values)
    if values.size <= 4:
        return np.array2string(values.reshape(-1) if values.ndim else values, precision=6)
    return f"a {values.dtype} array of shape {values.shape}"


def _replay_episode(dataset: Dataset, index: int) -> int:
    """Replay episode `index`; return its number of steps, or raise `_Differs`."""
    metadata = dataset.metadata
    stored = dataset.episode(index)
    agent_ids = dataset.agent_ids
    env = env_from_record(metadata["env"])
    try:
        obs, infos = env.reset(seed=metadata["episode_seeds"][index])

        def observe(row: int, step: int | None, obs: dict, infos: dict) -> None:
            _compare(index, step, "observations", stored.observations[row], _team(obs), agent_ids)
            alive = _team({a: infos[a]["alive"] for a in agent_ids})
            _compare(index, step, "alive", stored.alive[row], alive, agent_ids)
            if stored.positions is not None:
                positions = _team({a: infos[a]["position"] for a in agent_ids})
                _compare(index, step, "positions", stored.positions[row], positions, agent_ids)
            if stored.state is not None:
                _compare(index, step, "state", stored.state[row], env.state(), None)

        def _team(per_agent: dict[str, Any]) -> np.ndarray:
            return np.stack([np.asarray(per_agent[a]) for a in agent_ids])

        observe(0, None, obs, infos)
        for t in range(stored.length):
            if not env.agents:
                detail = f"stored {stored.length} steps, the env ended after {t}"
                raise _Differs(Mismatch(index, t, None, "episode_lengths", detail))
            for i, agent in enumerate(agent_ids):
                action = int(stored.actions[t, i])
                if stored.behaviour_probs[t, i, action] <= 0:
                    detail = f"action {action} had probability 0 under behaviour_probs"
                    raise _Differs(Mismatch(index, t, agent, "actions", detail))
            obs, rewards, terminated, truncated, infos = env.step(
                {a: int(stored.actions[t, i]) for i, a in enumerate(agent_ids)}
            )
            _compare(index, t, "rewards", stored.rewards[t], _team(rewards), agent_ids)
            _compare(index, t, "terminations", stored.terminations[t], _team(terminated), agent_ids)
            _compare(index, t, "truncations", stored.truncations[t], _team(truncated), agent_ids)
            observe(t + 1, t, obs, infos)
        if env.agents:
            detail = f"stored {stored.length} steps, the env goes on"
            raise _Differs(Mismatch(index, stored.length - 1, None, "episode_lengths", detail))
    finally:
        env.close()
    return stored.length


def replay(
    id_or_path: str | Path,
    n_episodes: int | None = None,
    on_episode: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Replay the first `n_episodes` episodes (all when None) and compare every stored array.

    Args:
        id_or_path: a dataset id in the data home, or a path.
        n_episodes: how many episodes, from the first.
        on_episode: called after each matching episode with (index, steps).

    Returns:
        The report: episodes and steps replayed, and the first mismatch (None when all match).

    Raises:
        UserError: no such dataset, an unreadable one, `n_episodes` below 1, or an env that
            cannot be built from the record.
    """
    if n_episodes is not None and n_episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {n_episodes}")
    path = resolve(id_or_path)
    n_steps = 0
    with Dataset(path) as dataset:
        total = len(dataset) if n_episodes is None else min(n_episodes, len(dataset))
        for index in range(total):
            try:
                length = _replay_episode(dataset, index)
            except _Differs as differs:
                return ReplayReport(path, index + 1, n_steps, differs.mismatch)
            n_steps += length
            if on_episode is not None:
                on_episode(index, length)
    return ReplayReport(path, total, n_steps, None)
