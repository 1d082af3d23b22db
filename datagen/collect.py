"""Roll out a behaviour policy on an env of the suite and write the episodes as a dataset.

Every episode e has its own seed, drawn from the collection seed; the env is reset with it and the
policy samples from a generator seeded with it. An episode therefore depends only on (collection
seed, e), so any episode can be replayed from the metadata alone.
"""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datagen import __version__
from datagen.dataset.format import FORMAT_VERSION, Episode, return_stats, transition_keys
from datagen.dataset.hdf5 import HDF5Writer
from datagen.dataset.ids import DatasetId
from datagen.envs import get_spec, make_env
from datagen.errors import UserError
from datagen.policies import BehaviourPolicy, make_policy


def episode_seed(collection_seed: int, episode: int) -> int:
    """The seed of episode `episode` of a collection (a 31-bit int, valid for every env)."""
    state = np.random.SeedSequence([collection_seed, episode]).generate_state(1, np.uint32)
    return int(state[0] >> 1)


def _stack(per_agent: dict[str, np.ndarray], agent_ids: list[str]) -> np.ndarray:
    # Index by possible_agents, never by dict order: the agent axis must not shift.
    return np.stack([per_agent[agent] for agent in agent_ids])


def rollout_episode(env: Any, policy: BehaviourPolicy, seed: int) -> Episode:
    """Play one episode of `policy` on `env` from `env.reset(seed=seed)`.

    Returns:
        The episode, agents on axis 1 in `env.possible_agents` order.
    """
    rng = np.random.default_rng(seed)
    agent_ids = list(env.possible_agents)
    obs, infos = env.reset(seed=seed)
    has_state = env.state_space is not None
    observations = [_stack(obs, agent_ids)]
    alive = [np.array([infos[a]["alive"] for a in agent_ids])]
    states = [env.state()] if has_state else []
    actions, rewards, terminations, truncations, probs, labels = [], [], [], [], [], []
    while env.agents:
        decision = policy.act(observations[-1], alive[-1], rng)
        # Dead agents' actions are ignored by the env; they are stored, masked by `alive`.
        obs, reward, terminated, truncated, infos = env.step(
            {a: int(decision.actions[i]) for i, a in enumerate(agent_ids)}
        )
        observations.append(_stack(obs, agent_ids))
        alive.append(np.array([infos[a]["alive"] for a in agent_ids]))
        if has_state:
            states.append(env.state())
        actions.append(decision.actions)
        rewards.append(np.array([reward[a] for a in agent_ids], dtype=np.float32))
        terminations.append(np.array([terminated[a] for a in agent_ids]))
        truncations.append(np.array([truncated[a] for a in agent_ids]))
        probs.append(decision.probs)
        labels.append(decision.labels)
    return Episode(
        observations=np.stack(observations),
        alive=np.stack(alive),
        actions=np.stack(actions).astype(np.int64),
        rewards=np.stack(rewards),
        terminations=np.stack(terminations),
        truncations=np.stack(truncations),
        behaviour_probs=np.stack(probs).astype(np.float32),
        policy_labels=np.stack(labels).astype(np.int8),
        state=np.stack(states) if has_state else None,
    )


@dataclass(frozen=True)
class CollectRequest:
    """Everything that determines a collection.

    Attributes:
        env: env name.
        n_agents: team size.
        quality: behaviour quality.
        n_episodes: episodes to collect (or None when `n_steps` is given).
        n_steps: collect whole episodes until at least this many steps (or None).
        seed: collection seed.
        fmt: storage backend ("hdf5").
        out: explicit output path, else the data home's path for the dataset id.
        force: replace an existing dataset.
        options: env options.
        version: dataset version.
    """

    env: str
    n_agents: int
    quality: str
    n_episodes: int | None = None
    n_steps: int | None = None
    seed: int = 0
    fmt: str = "hdf5"
    out: Path | None = None
    force: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    version: int = 1

    @property
    def dataset_id(self) -> DatasetId:
        return DatasetId(self.env, self.n_agents, self.quality, self.version)

    def path(self) -> Path:
        return Path(self.out) if self.out is not None else self.dataset_id.path(self.fmt)


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape the data, and the git commit when known."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for name in ("pettingzoo", "supersuit", "gymnasium", "numpy", "h5py", "zarr", "ale-py"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    versions["marl-offline-coordination"] = __version__
    versions["git_commit"] = _git_commit()
    return versions


def _space_dict(space: Any) -> dict[str, Any]:
    if hasattr(space, "n"):
        return {"type": "Discrete", "n": int(space.n)}
    return {"type": type(space).__name__, "shape": list(space.shape), "dtype": str(space.dtype)}


def collect(
    request: CollectRequest,
    on_episode: Callable[[int, Episode], None] | None = None,
) -> Path:
    """Collect a dataset and write it atomically.

    Args:
        request: what to collect.
        on_episode: called after each episode with its index and data (for progress displays).

    Returns:
        The path of the finished dataset.

    Raises:
        UserError: bad env, agent count, quality or options; neither or both of episodes/steps;
            an existing dataset without `force`.
    """
    if (request.n_episodes is None) == (request.n_steps is None):
        raise UserError("give exactly one of --episodes and --steps")
    if (request.n_episodes or request.n_steps or 0) < 1:
        raise UserError("--episodes / --steps must be at least 1")
    path = request.path()
    if path.exists() and not request.force:
        raise UserError(f"{path} already exists; pass --force to replace it")
    env = make_env(request.env, request.n_agents, **request.options)
    policy = make_policy(request.quality, env)
    writer = HDF5Writer(path)
    returns: list[float] = []
    seeds: list[int] = []
    keys: set[bytes] = set()
    n_transitions = 0
    try:
        while (
            len(seeds) < request.n_episodes
            if request.n_episodes is not None
            else n_transitions < request.n_steps
        ):
            seed = episode_seed(request.seed, len(seeds))
            episode = rollout_episode(env, policy, seed)
            writer.append(episode.arrays(), episode.length)
            seeds.append(seed)
            returns.append(episode.team_return())
            keys.update(transition_keys(episode))
            n_transitions += episode.length
            if on_episode is not None:
                on_episode(len(seeds) - 1, episode)
        agent = env.possible_agents[0]
        spec = get_spec(request.env)
        metadata = {
            "format_version": FORMAT_VERSION,
            "dataset_id": str(request.dataset_id),
            "version": request.version,
            "env": {
                "name": request.env,
                "pettingzoo_id": spec.pettingzoo_id,
                "source": spec.source,
                "kwargs": {**spec.options, **request.options},
                "wrappers": ["TeamEnv"],
            },
            "packages": package_versions(),
            "n_agents": request.n_agents,
            "agent_ids": list(env.possible_agents),
            "observation_space": _space_dict(env.observation_space(agent)),
            "action_space": _space_dict(env.action_space(agent)),
            "state_space": None if env.state_space is None else _space_dict(env.state_space),
            "policy": policy.spec(),
            "quality": {"name": request.quality},
            "seed": request.seed,
            "episode_seeds": seeds,
            "totals": {"episodes": len(seeds), "steps": n_transitions},
            "stats": return_stats(returns),
            "coverage": len(keys) / max(1, n_transitions),
            "reference_scores": None,
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        return writer.finalize(metadata)
    except BaseException:
        writer.abort()
        raise
    finally:
        env.close()
