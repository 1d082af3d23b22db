"""The one episode loop: a behaviour policy playing an env from a seed.

Collection (which records every array) and evaluation (which only sums rewards) both consume
`play`, so the two can never disagree on how an episode is played or seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.policies import BehaviourPolicy, TeamAction


def episode_seed(run_seed: int, episode: int) -> int:
    """The seed of episode `episode` of a run (a 31-bit int, valid for every env).

    Episode e of a run depends only on (run seed, e): not on which process plays it, or when.
    """
    state = np.random.SeedSequence([run_seed, episode]).generate_state(1, np.uint32)
    return int(state[0] >> 1)


@dataclass(frozen=True)
class Transition:
    """One step of a team, agents on axis 0 in `possible_agents` order.

    Attributes:
        obs: (N, *obs_shape) observation the policy acted on.
        alive: (N,) bool, alive in `obs`.
        decision: the policy's actions, probabilities and labels.
        next_obs: (N, *obs_shape) observation after the step.
        next_alive: (N,) bool, alive in `next_obs`.
        rewards: (N,) float32.
        terminated: (N,) bool.
        truncated: (N,) bool.
        positions: (N, 2) float32, every agent's position at `obs` (`TeamEnv`'s
            `infos[agent]["position"]`).
        next_positions: (N, 2) float32, at `next_obs`.
        state: global state at `obs`, when asked for and the env has one.
        next_state: global state at `next_obs`, likewise.
    """

    obs: np.ndarray
    alive: np.ndarray
    decision: TeamAction
    next_obs: np.ndarray
    next_alive: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    positions: np.ndarray
    next_positions: np.ndarray
    state: np.ndarray | None = None
    next_state: np.ndarray | None = None


def _team(per_agent: dict[str, Any], agent_ids: list[str], dtype: Any = None) -> np.ndarray:
    # Index by possible_agents, never by dict order: the agent axis must not shift.
    return np.array([per_agent[agent] for agent in agent_ids], dtype=dtype)


def play(
    env: Any, policy: BehaviourPolicy, seed: int, with_state: bool = False
) -> Iterator[Transition]:
    """Reset `env` with `seed`, then yield every step of `policy` until the episode ends.

    The policy samples from `numpy.random.default_rng(seed)`, so (env, policy, seed) fixes the
    episode. With `with_state`, each transition carries the global state (when the env has one).
    """
    read_state = with_state and env.state_space is not None
    rng = np.random.default_rng(seed)
    agent_ids = list(env.possible_agents)
    obs, infos = env.reset(seed=seed)
    policy.reset(env, rng)
    team_obs = np.stack([obs[a] for a in agent_ids])
    alive = _team({a: infos[a]["alive"] for a in agent_ids}, agent_ids, bool)
    positions = _team({a: infos[a]["position"] for a in agent_ids}, agent_ids, np.float32)
    state = env.state() if read_state else None
    while env.agents:
        decision = policy.act(env, team_obs, alive, rng)
        # Dead agents' actions are ignored by the env; they are still recorded, masked by alive.
        obs, rewards, terminated, truncated, infos = env.step(
            {a: int(decision.actions[i]) for i, a in enumerate(agent_ids)}
        )
        next_obs = np.stack([obs[a] for a in agent_ids])
        next_alive = _team({a: infos[a]["alive"] for a in agent_ids}, agent_ids, bool)
        next_positions = _team({a: infos[a]["position"] for a in agent_ids}, agent_ids, np.float32)
        next_state = env.state() if read_state else None
        yield Transition(
            obs=team_obs,
            alive=alive,
            decision=decision,
            next_obs=next_obs,
            next_alive=next_alive,
            rewards=_team(rewards, agent_ids, np.float32),
            terminated=_team(terminated, agent_ids, bool),
            truncated=_team(truncated, agent_ids, bool),
            positions=positions,
            next_positions=next_positions,
            state=state,
            next_state=next_state,
        )
        team_obs, alive, positions, state = next_obs, next_alive, next_positions, next_state


#: `act(obs (R, N, ...), alive (R, N), positions (R, N, 2), rows (R,)) -> actions (R, N)`: the
#: actions of the R episodes still running (`rows` are their slots in the batch), all in one call.
BatchActor = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BatchEpisode:
    """One episode of a batch: its team return, steps and the env's metrics at its end."""

    team_return: float
    length: int
    metrics: dict[str, float]


def play_batch(batch: Any, act: BatchActor, seeds: list[int]) -> list[BatchEpisode]:
    """Play one episode per seed on `batch` (a `datagen.envs.batch` batch of len(seeds) slots),
    asking `act` once per step for the actions of every episode still running, given their
    observations, alive flags and positions.

    Episode b starts from `reset(seed=seeds[b])`; its team return sums each step's rewards over
    agents in float64, as `play` does, so an actor that acts as a policy would on each episode
    alone gives the returns of playing the episodes one at a time.
    """
    obs, alive = batch.reset(seeds)
    totals, lengths = [0.0] * len(seeds), [0] * len(seeds)
    metrics: list[dict[str, float]] = [{} for _ in seeds]
    running = np.ones(len(seeds), dtype=bool)
    while running.any():
        rows = np.flatnonzero(running)
        actions = np.zeros(alive.shape, dtype=np.int64)  # (B, N); ended episodes ignore theirs
        positions = batch.positions()  # (B, N, 2)
        actions[rows] = act(obs[rows], alive[rows], positions[rows], rows)
        step = batch.step(actions)
        for b in rows:
            totals[b] += float(step.rewards[b].sum(dtype=np.float64))
            lengths[b] += 1
            if step.done[b]:
                running[b] = False
                metrics[b] = batch.episode_metrics(int(b))
        obs, alive = step.obs, step.alive
    return [BatchEpisode(*episode) for episode in zip(totals, lengths, metrics, strict=True)]
