"""Play a policy for whole episodes and report its team returns: a behaviour policy one episode
at a time (`evaluate`), or an actor over many episodes at once (`evaluate_batched`).

Each env's policy module (`datagen/policies/<env>.py`) may define `episode_metrics(env) -> dict`
read at the end of every episode (e.g. evaders caught in pursuit, zombies killed in KAZ), reported
beside the team return as the reference asks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datagen.envs import make_env, make_env_batch
from datagen.rollout import BatchActor, episode_seed, play, play_batch


@dataclass
class Evaluation:
    """Team returns of one policy over several episodes.

    Attributes:
        env: env name.
        n_agents: team size.
        returns: team return (sum over agents and steps) of each episode.
        lengths: steps of each episode.
        metrics: env-specific per-episode metrics, by name.
    """

    env: str
    n_agents: int
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def metric_means(self) -> dict[str, float]:
        return {name: float(np.mean(values)) for name, values in self.metrics.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "episodes": len(self.returns),
            "mean": self.mean,
            "std": self.std,
            "mean_length": float(np.mean(self.lengths)),
            **{f"mean_{k}": v for k, v in self.metric_means().items()},
        }


def metrics_function(env_name: str) -> Callable[[Any], dict[str, float]] | None:
    """The `episode_metrics` of an env's policy module, if it has one."""
    try:
        module = importlib.import_module(f"datagen.policies.{env_name}")
    except ModuleNotFoundError:
        return None
    return getattr(module, "episode_metrics", None)


def play_episode(env: Any, policy: Any, seed: int) -> tuple[float, int]:
    """One episode of `policy` from `env.reset(seed=seed)`; returns (team return, steps)."""
    total, steps = 0.0, 0
    for step in play(env, policy, seed):
        total += float(step.rewards.sum(dtype=np.float64))
        steps += 1
    return total, steps


def evaluate(
    env_name: str,
    n_agents: int,
    make: Callable[[Any], Any],
    n_episodes: int,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    on_episode: Callable[[int, float], None] | None = None,
) -> Evaluation:
    """Play `n_episodes` of the policy `make(env)` on a fresh env.

    Args:
        env_name: env of the suite.
        n_agents: team size.
        make: builds the policy from the env (e.g. `lambda env: make_policy("expert", env)`).
        n_episodes: episodes to play.
        seed: run seed; episode i uses `episode_seed(seed, i)`.
        options: env options.
        on_episode: called with (index, team return) after each episode.
    """
    env = make_env(env_name, n_agents, **(options or {}))
    policy = make(env)
    metrics = metrics_function(env_name)
    result = Evaluation(env_name, n_agents)
    try:
        for index in range(n_episodes):
            team_return, steps = play_episode(env, policy, episode_seed(seed, index))
            result.returns.append(team_return)
            result.lengths.append(steps)
            if metrics is not None:
                for name, value in metrics(env).items():
                    result.metrics.setdefault(name, []).append(float(value))
            if on_episode is not None:
                on_episode(index, team_return)
    finally:
        env.close()
    return result


#: Builds the batch actor of an env batch (`datagen.envs.batch`): `make_actor(batch, seeds)`. It
#: is pickled to worker processes when `evaluate_batched` uses several.
ActorFactory = Callable[[Any, list[int]], BatchActor]


def _play_chunk(
    env_name: str,
    n_agents: int,
    make_actor: ActorFactory,
    seeds: list[int],
    options: dict[str, Any],
) -> list[tuple[float, int, dict[str, float]]]:
    batch = make_env_batch(
        env_name, n_agents, len(seeds), metrics=metrics_function(env_name), **options
    )
    try:
        episodes = play_batch(batch, make_actor(batch, seeds), seeds)
    finally:
        batch.close()
    return [(e.team_return, e.length, e.metrics) for e in episodes]


def evaluate_batched(
    env_name: str,
    n_agents: int,
    make_actor: ActorFactory,
    n_episodes: int,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    workers: int = 1,
) -> Evaluation:
    """Play `n_episodes` episodes as batches: every step, one call of the actor for every running
    episode (one forward pass of a learned policy).

    Episode i uses `episode_seed(seed, i)` as `evaluate` does, so an actor that acts on each
    episode as a policy would alone gives the same returns. The episodes are split into
    `workers` contiguous shares, each played as one batch in its own process (envs without a
    vectorised engine step one after another within a batch, so processes are how they use
    several cores); with one worker everything runs here.

    Args:
        env_name: env of the suite.
        n_agents: team size.
        make_actor: `make_actor(batch, seeds) -> actor`; picklable when `workers` > 1.
        n_episodes: episodes to play.
        seed: run seed.
        options: env options.
        workers: processes.

    Returns:
        Every episode's return, length and metrics, in episode order.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    seeds = [episode_seed(seed, i) for i in range(n_episodes)]
    workers = max(1, min(workers, n_episodes))
    shares = [share.tolist() for share in np.array_split(np.array(seeds, dtype=np.int64), workers)]
    args = [(env_name, n_agents, make_actor, share, dict(options or {})) for share in shares]
    if workers == 1:
        played = [_play_chunk(*args[0])]
    else:
        with ProcessPoolExecutor(len(args), mp_context=get_context("spawn")) as pool:
            played = list(pool.map(_play_chunk, *zip(*args, strict=True)))
    result = Evaluation(env_name, n_agents)
    for team_return, length, metrics in (episode for share in played for episode in share):
        result.returns.append(team_return)
        result.lengths.append(length)
        for name, value in metrics.items():
            result.metrics.setdefault(name, []).append(float(value))
    return result
