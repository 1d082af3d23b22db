"""Offline datasets in RAM as torch tensors, and named batches of transitions drawn from them.

`OfflineData.from_datasets([...])` loads one or several datasets of the same env (checksums
checked), resolves `terminated`/`truncated` into one bootstrap mask (`bootstrap_mask`), computes
the observation normalisation statistics, and keeps every array as a pre-built tensor so that
`sample` is a handful of index operations.

Mixing team sizes: every dataset is padded on the agent axis to the largest team (padded agents
are never alive, have all actions legal, a uniform behaviour distribution and zero observations,
rewards and actions), and, for observations with one row per entity (knights_archers_zombies,
whose row count grows with the team), on the row axis with all-zero rows — the env's own marker
for an absent entity, which the set encoder masks out. The datasets are then concatenated, so one
batch can hold transitions of every team size at once. Padding costs memory in proportion to the
largest team: mixing n = 2 with n = 16 stores the n = 2 data eight times wider.

Observations are stored once per observation row (each episode has one more observation than
steps); a transition indexes its observation row and the next one, so `obs` and `next_obs` share
storage.

Positions (`positions`, every agent's 2-d position, recorded by datasets of format 3 on) are kept
when every dataset has them, padded agents at 0, and reach the batches as `positions` and
`next_positions`: only the coordination graph reads them, to choose whom each agent hears
(`algos.coordination`); no network takes them as an input feature. The env's view radius, from the
datasets' metadata, is part of the `DataSpec`.

No ground truth reaches an algorithm: the datasets' `policy_labels` (which behaviour drove each
agent) are checked with every other array while loading and then dropped, so neither
`OfflineData` nor a `Batch` carries them. Only evaluation code that scores how well a method
separates behaviours reads them, from the dataset itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from datagen.dataset.reader import Dataset, open_dataset, transition_rows
from datagen.errors import UserError

#: Standard deviations below this are treated as 1 (constant features are left unscaled).
MIN_STD = 1e-6


def bootstrap_mask(
    terminated: np.ndarray, truncated: np.ndarray, alive: np.ndarray, next_alive: np.ndarray
) -> np.ndarray:
    """Where the value of the next observation counts in a TD target: (T, N) bool.

    An agent bootstraps when it acted (`alive`), is still alive in the next observation, and the
    env did not terminate it. Truncation (the time limit) bootstraps: the next observation is a
    real state the agent would have continued from. Death does not — a dead agent's next
    observation is zeros and its future return is zero. `truncated` is part of the signature so
    that the rule is written down in one place; it never switches bootstrapping off.
    """
    del truncated  # truncation bootstraps: it changes nothing here, by design
    return alive & next_alive & ~terminated


@dataclass(frozen=True)
class Batch:
    """A batch of B transitions of teams padded to N agents (A actions).

    Attributes:
        obs: (B, N, *obs_shape) float32, or uint8 for images (scaled by the encoder).
        actions: (B, N) int64 dataset actions.
        rewards: (B, N) float32 per-agent rewards (0 for dead and padded agents).
        team_reward: (B,) float32, the sum of `rewards` over agents.
        next_obs: (B, N, *obs_shape), the observation after the step.
        alive: (B, N) bool, the agent acted at this step (False for padded agents).
        next_alive: (B, N) bool, the agent is alive in `next_obs`.
        bootstrap: (B, N) bool, `bootstrap_mask`: the next observation's value counts.
        team_bootstrap: (B,) bool, some agent bootstraps (the team's episode goes on).
        action_mask: (B, N, A) bool legal actions (all True when the env has no mask).
        next_action_mask: (B, N, A) bool legal actions in `next_obs`.
        behaviour_probs: (B, N, A) float32, the distribution the data's actions were drawn from
            (uniform for padded agents).
        episode_return: (B,) float32, team return of the episode each transition belongs to.
        state: (B, *state_shape) float32 global state, or None (see `OfflineData`).
        next_state: (B, *state_shape), or None.
        positions: (B, N, 2) float32 every agent's position at `obs`, in the env's world units
            (for the coordination graph's neighbourhoods only), or None when the data has none.
        next_positions: (B, N, 2) float32 at `next_obs`, or None.
        episode_index: (B,) int64, the episode each transition belongs to, numbered across every
            dataset of the `OfflineData` (see `OfflineData.n_episodes`); None in hand-made
            batches.
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    team_reward: Tensor
    next_obs: Tensor
    alive: Tensor
    next_alive: Tensor
    bootstrap: Tensor
    team_bootstrap: Tensor
    action_mask: Tensor
    next_action_mask: Tensor
    behaviour_probs: Tensor
    episode_return: Tensor
    state: Tensor | None = None
    next_state: Tensor | None = None
    positions: Tensor | None = None
    next_positions: Tensor | None = None
    episode_index: Tensor | None = None

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def n_agents(self) -> int:
        return self.actions.shape[1]

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on `device` (no copy for tensors already there)."""
        moved = {
            f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
            for f in fields(self)
        }
        return Batch(**moved)


@dataclass(frozen=True, eq=False)
class DataSpec:
    """What a network needs to know about the data, saved with every run to rebuild a model.

    Attributes:
        obs_shape: one agent's observation shape; for entity-row observations the largest row
            count seen in the data (a set encoder accepts any row count).
        obs_dtype: "float32" or "uint8".
        n_actions: size of each agent's discrete action space.
        state_shape: the global state's shape, or None when the data has no common state.
        obs_mean: normalisation mean, broadcast against an observation (see `obs_stats`).
        obs_std: normalisation standard deviation, same shape as `obs_mean`.
        view_radius: how far an agent of the env sees, in the units of its positions (dataset
            metadata, format 3 on), or None when unknown.
    """

    obs_shape: tuple[int, ...]
    obs_dtype: str
    n_actions: int
    state_shape: tuple[int, ...] | None
    obs_mean: np.ndarray
    obs_std: np.ndarray
    view_radius: float | None = None

    @property
    def is_entity_rows(self) -> bool:
        """Observations are a set of entity rows (R, F): 2-D, rows may grow with the team."""
        return len(self.obs_shape) == 2

    def to_json(self) -> dict[str, Any]:
        return {
            "obs_shape": list(self.obs_shape),
            "obs_dtype": self.obs_dtype,
            "n_actions": self.n_actions,
            "state_shape": None if self.state_shape is None else list(self.state_shape),
            "obs_mean": self.obs_mean.tolist(),
            "obs_std": self.obs_std.tolist(),
            "view_radius": self.view_radius,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> DataSpec:
        state = record["state_shape"]
        return cls(
            obs_shape=tuple(record["obs_shape"]),
            obs_dtype=record["obs_dtype"],
            n_actions=int(record["n_actions"]),
            state_shape=None if state is None else tuple(state),
            obs_mean=np.asarray(record["obs_mean"], dtype=np.float32),
            obs_std=np.asarray(record["obs_std"], dtype=np.float32),
            view_radius=record.get("view_radius"),  # runs saved before format 3 have none
        )


def obs_stats(observations: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalisation statistics of observations over alive agents.

    - uint8 images: a fixed scale, mean 0 and std 255, shape (1,);
    - entity rows (R, F): per feature over the rows that hold an entity (not all zero), shape
      (F,), so they apply to any row count;
    - anything else: per element, shape `obs_shape`.

    Args:
        observations: (rows, N, *obs_shape).
        alive: (rows, N) bool.

    Returns:
        (mean, std) float32; std below `MIN_STD` is replaced by 1.
    """
    if observations.dtype == np.uint8:
        return np.zeros(1, np.float32), np.full(1, 255.0, np.float32)
    values = observations[alive].astype(np.float64)  # (M, *obs_shape)
    if values.ndim == 3:  # entity rows
        values = values.reshape(-1, values.shape[-1])  # (M * R, F)
        values = values[np.any(values != 0, axis=1)]
    if len(values) == 0:
        shape = values.shape[1:]
        return np.zeros(shape, np.float32), np.ones(shape, np.float32)
    mean, std = values.mean(axis=0), values.std(axis=0)
    std = np.where(std < MIN_STD, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def _pad(array: np.ndarray, axis: int, size: int, value: Any) -> np.ndarray:
    missing = size - array.shape[axis]
    if missing == 0:
        return array
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, missing)
    return np.pad(array, widths, constant_values=value)


def _episode_ranks(returns: np.ndarray) -> np.ndarray:
    """For each episode, the fraction of episodes with a strictly higher return (best: 0)."""
    higher = (returns[None, :] > returns[:, None]).sum(axis=1)
    return higher / len(returns)


def _dataset_info(dataset: Dataset) -> dict[str, Any]:
    meta = dataset.metadata
    return {
        "dataset_id": dataset.dataset_id,
        "path": str(dataset.path.resolve()),
        "content_checksum": meta.get("content_checksum"),
        "n_agents": dataset.n_agents,
        "n_episodes": len(dataset),
        "n_steps": dataset.n_steps,
        "quality": meta.get("quality", {}).get("tag"),
    }


class OfflineData:
    """One or several datasets of one env in RAM, ready to be sampled (see the module docstring).

    Build it with `OfflineData.from_datasets`. Attributes of interest: `spec` (a `DataSpec`),
    `env_name`, `env_options`, `n_agents` (the padded team size), `datasets` (one info dict per
    dataset: id, path, content checksum, size), `has_state`: the global state is kept only when
    every dataset has one of the same shape (prison's state grows with the team, so mixing team
    sizes drops it), and `has_positions`: positions are kept only when every dataset records them
    (`without_positions` names those that do not).
    """

    def __init__(
        self,
        arrays: dict[str, Tensor | None],
        spec: DataSpec,
        env_name: str,
        env_options: dict[str, Any],
        datasets: list[dict[str, Any]],
        without_positions: list[str],
    ) -> None:
        self._arrays = arrays
        self.spec = spec
        self.env_name = env_name
        self.env_options = env_options
        self.datasets = datasets
        self.n_agents = int(arrays["actions"].shape[1])
        self.has_state = arrays["states"] is not None
        self.has_positions = arrays["positions"] is not None
        #: The ids of the datasets that record no positions (collected before format 3).
        self.without_positions = without_positions
        self._obs_rows = arrays["obs_rows"]
        self._all_legal = torch.ones(
            (1, 1, spec.n_actions), dtype=torch.bool, device=arrays["actions"].device
        )

    def __len__(self) -> int:
        """Number of transitions."""
        return len(self._obs_rows)

    @property
    def device(self) -> torch.device:
        return self._obs_rows.device

    @property
    def return_rank(self) -> Tensor:
        """(T,) for each transition, the fraction of its dataset's episodes with a higher return."""
        return self._arrays["return_rank"]

    @property
    def dataset_index(self) -> Tensor:
        """(T,) int64, which dataset (index into `datasets`) each transition comes from."""
        return self._arrays["dataset_index"]

    @property
    def episode_index(self) -> Tensor:
        """(T,) int64, the episode of each transition, numbered across all datasets in order."""
        return self._arrays["episode_index"]

    @property
    def n_episodes(self) -> int:
        """Number of episodes over all datasets."""
        return sum(info["n_episodes"] for info in self.datasets)

    @classmethod
    def from_datasets(
        cls, ids_or_paths: Sequence[str | Path], verify: bool = True, device: str = "cpu"
    ) -> OfflineData:
        """Load datasets by id or path into RAM.

        Args:
            ids_or_paths: one or more dataset ids (looked up in the data home) or paths.
            verify: check every array against its stored checksum while loading.
            device: where the tensors live.

        Raises:
            UserError: no dataset, an unknown dataset, or datasets that cannot be mixed
                (different envs, env options, action counts or observation shapes).
        """
        if not ids_or_paths:
            raise UserError("give at least one dataset")
        loaded = []
        for id_or_path in ids_or_paths:
            with open_dataset(id_or_path) as dataset:
                loaded.append(
                    (_dataset_info(dataset), dataset.metadata, dataset.load(None, verify))
                )
        return cls._combine(loaded, device)

    @classmethod
    def _combine(
        cls, loaded: list[tuple[dict, dict, dict[str, np.ndarray]]], device: str
    ) -> OfflineData:
        first_info, first_meta, _ = loaded[0]
        env_name, env_options = first_meta["env"]["name"], first_meta["env"]["options"]
        n_actions = int(first_meta["action_space"]["n"])
        obs_shapes = [tuple(arrays["observations"].shape[2:]) for _, _, arrays in loaded]
        for info, meta, _ in loaded[1:]:
            if meta["env"]["name"] != env_name:
                raise UserError(
                    f"cannot mix datasets of different envs: {first_info['dataset_id']} is "
                    f"{env_name}, {info['dataset_id']} is {meta['env']['name']}"
                )
            if meta["env"]["options"] != env_options:
                differing = sorted(
                    key
                    for key in set(env_options) | set(meta["env"]["options"])
                    if env_options.get(key) != meta["env"]["options"].get(key)
                )
                raise UserError(
                    f"cannot mix datasets with different env options ({', '.join(differing)}): "
                    f"{first_info['dataset_id']} and {info['dataset_id']}"
                )
            if int(meta["action_space"]["n"]) != n_actions:
                raise UserError("cannot mix datasets with different numbers of actions")
        entity_rows = len(obs_shapes[0]) == 2
        if entity_rows:
            if len({shape[1:] for shape in obs_shapes}) != 1:
                raise UserError(f"cannot mix entity observations of shapes {sorted(obs_shapes)}")
            obs_shape = (max(shape[0] for shape in obs_shapes), *obs_shapes[0][1:])
        else:
            if len(set(obs_shapes)) != 1:
                raise UserError(f"cannot mix observation shapes {sorted(set(obs_shapes))}")
            obs_shape = obs_shapes[0]
        n_agents = max(arrays["actions"].shape[1] for _, _, arrays in loaded)
        state_shapes = {
            None if "state" not in arrays else arrays["state"].shape[1:] for _, _, arrays in loaded
        }
        keep_state = len(state_shapes) == 1 and None not in state_shapes
        without_positions = [
            info["dataset_id"] for info, _, arrays in loaded if "positions" not in arrays
        ]
        keep_positions = not without_positions
        # One env and options: one radius; datasets before format 3 record none.
        radii = {meta.get("view_radius") for _, meta, _ in loaded} - {None}

        parts: dict[str, list[np.ndarray]] = {}
        row_offset = episode_offset = 0
        for index, (_, _, arrays) in enumerate(loaded):
            part = cls._prepare(arrays, n_agents, obs_shape, n_actions, keep_state, keep_positions)
            part["obs_rows"] = part["obs_rows"] + row_offset
            part["episode_index"] = part["episode_index"] + episode_offset
            part["dataset_index"] = np.full(len(part["actions"]), index, dtype=np.int64)
            row_offset += len(part["observations"])
            episode_offset += len(arrays["episode_lengths"])
            for name, values in part.items():
                parts.setdefault(name, []).append(values)
        merged = {name: np.concatenate(values) for name, values in parts.items()}
        mean, std = obs_stats(merged["observations"], merged["obs_alive"])
        state_shape = tuple(merged["states"].shape[1:]) if keep_state else None
        spec = DataSpec(
            obs_shape=tuple(int(s) for s in obs_shape),
            obs_dtype=str(merged["observations"].dtype),
            n_actions=n_actions,
            state_shape=None if state_shape is None else tuple(int(s) for s in state_shape),
            obs_mean=mean,
            obs_std=std,
            view_radius=float(radii.pop()) if len(radii) == 1 else None,
        )
        tensors: dict[str, Tensor | None] = {
            name: torch.from_numpy(np.ascontiguousarray(values)).to(device)
            for name, values in merged.items()
        }
        tensors.setdefault("states", None)
        tensors.setdefault("positions", None)
        tensors.setdefault("obs_action_mask", None)
        datasets = [info for info, _, _ in loaded]
        return cls(tensors, spec, env_name, env_options, datasets, without_positions)

    @staticmethod
    def _prepare(
        arrays: dict[str, np.ndarray],
        n_agents: int,
        obs_shape: tuple[int, ...],
        n_actions: int,
        keep_state: bool,
        keep_positions: bool,
    ) -> dict[str, np.ndarray]:
        """One dataset's arrays, padded to the common team size and row count."""
        obs_rows, next_rows, episode_index = transition_rows(arrays["episode_lengths"])
        alive = arrays["alive"]
        observations = arrays["observations"]
        if len(obs_shape) == 2:
            observations = _pad(observations, 2, obs_shape[0], 0)
        rewards = arrays["rewards"].astype(np.float32)
        episode_returns = np.bincount(
            episode_index,
            weights=rewards.sum(axis=1, dtype=np.float64),
            minlength=len(arrays["episode_lengths"]),
        )
        bootstrap = bootstrap_mask(
            arrays["terminations"], arrays["truncations"], alive[obs_rows], alive[next_rows]
        )
        probs = arrays["behaviour_probs"].astype(np.float32)
        prepared = {
            "observations": _pad(observations, 1, n_agents, 0),
            "obs_alive": _pad(alive, 1, n_agents, False),
            "obs_rows": obs_rows,
            "actions": _pad(arrays["actions"].astype(np.int64), 1, n_agents, 0),
            "rewards": _pad(rewards, 1, n_agents, 0.0),
            "bootstrap": _pad(bootstrap, 1, n_agents, False),
            "behaviour_probs": _pad(probs, 1, n_agents, 1.0 / n_actions),
            "episode_return": episode_returns[episode_index].astype(np.float32),
            "episode_index": episode_index.astype(np.int64),
            "return_rank": _episode_ranks(episode_returns)[episode_index].astype(np.float32),
        }
        if "action_mask" in arrays:
            prepared["obs_action_mask"] = _pad(arrays["action_mask"], 1, n_agents, True)
        if keep_state:
            prepared["states"] = arrays["state"].astype(np.float32)
        if keep_positions:
            prepared["positions"] = _pad(arrays["positions"], 1, n_agents, 0.0)
        return prepared

    def reward_scale(self) -> float:
        """1 / the standard deviation of the per-agent rewards of alive agent-steps: the
        multiplier that gives rewards a spread of one whatever the env (1 when every reward is
        the same)."""
        alive = self._arrays["obs_alive"].index_select(0, self._obs_rows)  # (T, N)
        rewards = self._arrays["rewards"][alive].double()
        spread = float(rewards.std(correction=0)) if len(rewards) else 0.0
        return 1.0 / spread if spread > 0 else 1.0

    def sample(
        self, batch_size: int, generator: torch.Generator, subset: Tensor | None = None
    ) -> Batch:
        """Draw `batch_size` transitions uniformly with replacement.

        Args:
            batch_size: B.
            generator: the torch generator every draw comes from (on the data's device).
            subset: (K,) int64 transition indices to draw from instead of all of them.
        """
        if subset is None:
            index = torch.randint(len(self), (batch_size,), generator=generator, device=self.device)
        else:
            picks = torch.randint(
                len(subset), (batch_size,), generator=generator, device=self.device
            )
            index = subset[picks]
        return self.batch(index)

    def batch(self, index: Tensor) -> Batch:
        """The transitions at `index` ((B,) int64) as a `Batch`."""
        arrays = self._arrays
        # index_select along axis 0 is several times faster than advanced indexing on CPU.
        rows = self._obs_rows.index_select(0, index)  # (B,)
        next_rows = rows + 1

        def take(name: str, which: Tensor = index) -> Tensor:
            """Rows of an array: per transition (`index`) or per observation (`rows`)."""
            return arrays[name].index_select(0, which)

        bootstrap = take("bootstrap")  # (B, N)
        rewards = take("rewards")  # (B, N)
        if arrays["obs_action_mask"] is None:
            shape = (len(index), self.n_agents, self.spec.n_actions)
            mask = next_mask = self._all_legal.expand(shape)
        else:
            mask = take("obs_action_mask", rows)
            next_mask = take("obs_action_mask", next_rows)
        has_state = arrays["states"] is not None
        has_positions = arrays["positions"] is not None
        return Batch(
            obs=take("observations", rows),
            actions=take("actions"),
            rewards=rewards,
            team_reward=rewards.sum(dim=1),
            next_obs=take("observations", next_rows),
            alive=take("obs_alive", rows),
            next_alive=take("obs_alive", next_rows),
            bootstrap=bootstrap,
            team_bootstrap=bootstrap.any(dim=1),
            action_mask=mask,
            next_action_mask=next_mask,
            behaviour_probs=take("behaviour_probs"),
            episode_return=take("episode_return"),
            episode_index=take("episode_index"),
            state=take("states", rows) if has_state else None,
            next_state=take("states", next_rows) if has_state else None,
            positions=take("positions", rows) if has_positions else None,
            next_positions=take("positions", next_rows) if has_positions else None,
        )
