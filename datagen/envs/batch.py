"""Many episodes of one env played in lockstep: the batch form of `TeamEnv`, for evaluation.

A batch holds B episodes of one env and team size. `reset(seeds)` starts episode b from
`reset(seed=seeds[b])`; `step(actions)` takes (B, N) actions and plays one step of every episode
still running. Observations come out (B, N, *obs_shape) with `alive` (B, N), rewards (B, N)
float32 as `TeamEnv` reports them, and `done` (B,); an episode that has ended keeps its last
observation, gets zero rewards and ignores its actions until the next `reset`. `positions()` gives
every agent's position now, (B, N, 2) float32, as `TeamEnv.positions()` does (for the
coordination graph's neighbourhoods, never as an input feature).

Two kinds, built by `datagen.envs.make_env_batch` (envs are constructed only in the registry):

- `TeamEnvBatch`: B `TeamEnv`s stepped one after another: any env of the suite. The policy still
  sees every episode at once (one forward pass per step for all of them).
- `VectorPursuitBatch`: pursuit's numpy engine (`datagen.envs.pursuit.VectorPursuit`) playing all
  B episodes in one call per step.

Both give, episode by episode, exactly what B separate `TeamEnv`s give for the same seeds and
actions (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces

from datagen.envs.wrappers import TeamEnv


@dataclass(frozen=True)
class BatchStep:
    """One step of a batch (B episodes, N agents).

    Attributes:
        obs: (B, N, *obs_shape) observations after the step.
        alive: (B, N) bool, alive in `obs`.
        rewards: (B, N) float32 (zeros for episodes that had already ended).
        done: (B,) bool, the episode has ended (at this step or before).
    """

    obs: np.ndarray
    alive: np.ndarray
    rewards: np.ndarray
    done: np.ndarray


class EnvBatch(Protocol):
    n_envs: int
    possible_agents: list[str]

    def observation_space(self, agent: str) -> spaces.Space: ...
    def action_space(self, agent: str) -> spaces.Space: ...
    def reset(self, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]: ...
    def step(self, actions: np.ndarray) -> BatchStep: ...
    def positions(self) -> np.ndarray: ...
    def episode_metrics(self, index: int) -> dict[str, float]: ...
    def close(self) -> None: ...


class TeamEnvBatch:
    """B `TeamEnv`s of one env and team size, stepped one after another.

    Args:
        envs: the envs, one per episode slot.
        metrics: the env's `episode_metrics(env)` (datagen.policies), or None.
    """

    def __init__(
        self, envs: list[TeamEnv], metrics: Callable[[Any], dict[str, float]] | None = None
    ) -> None:
        self.envs = envs
        self.n_envs = len(envs)
        self.possible_agents = list(envs[0].possible_agents)
        self._metrics = metrics
        self._obs: np.ndarray | None = None
        self._alive: np.ndarray | None = None

    def observation_space(self, agent: str) -> spaces.Space:
        return self.envs[0].observation_space(agent)

    def action_space(self, agent: str) -> spaces.Space:
        return self.envs[0].action_space(agent)

    def _team(self, obs: dict[str, Any], infos: dict[str, dict]) -> tuple[np.ndarray, np.ndarray]:
        agents = self.possible_agents
        return np.stack([obs[a] for a in agents]), np.array([infos[a]["alive"] for a in agents])

    def reset(self, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Start episode b of every slot from `reset(seed=seeds[b])`; returns (obs, alive)."""
        teams = [
            self._team(*env.reset(seed=int(s))) for env, s in zip(self.envs, seeds, strict=True)
        ]
        self._obs = np.stack([obs for obs, _ in teams])  # (B, N, *obs_shape)
        self._alive = np.stack([alive for _, alive in teams])  # (B, N)
        return self._obs.copy(), self._alive.copy()

    def step(self, actions: np.ndarray) -> BatchStep:
        rewards = np.zeros(self._alive.shape, dtype=np.float32)
        for b, env in enumerate(self.envs):
            if not env.agents:
                continue
            obs, reward, _, _, infos = env.step(
                {a: int(actions[b, i]) for i, a in enumerate(self.possible_agents)}
            )
            self._obs[b], self._alive[b] = self._team(obs, infos)
            rewards[b] = [reward[a] for a in self.possible_agents]
        done = np.array([not env.agents for env in self.envs])
        return BatchStep(self._obs.copy(), self._alive.copy(), rewards, done)

    def positions(self) -> np.ndarray:
        """(B, N, 2) float32: every agent's position now (an ended episode's are its last)."""
        return np.stack([env.positions() for env in self.envs])

    def episode_metrics(self, index: int) -> dict[str, float]:
        """The env's metrics of episode `index` (read once it has ended)."""
        return {} if self._metrics is None else self._metrics(self.envs[index])

    def close(self) -> None:
        for env in self.envs:
            env.close()


class VectorPursuitBatch:
    """Pursuit's vectorised engine as a batch: every episode of the batch in one numpy step.

    Pursuers never die in pursuit, so `alive` is always True; rewards are cast to float32 as
    `TeamEnv` stores them.

    Args:
        engine: a `VectorPursuit` with B = the batch size.
        template: a `TeamEnv` of the same pursuit, for its agents and spaces.
    """

    def __init__(self, engine: Any, template: TeamEnv) -> None:
        self.engine = engine
        self.n_envs = engine.n_envs
        self.possible_agents = list(template.possible_agents)
        self._obs_space = template.observation_space(self.possible_agents[0])
        self._action_space = template.action_space(self.possible_agents[0])
        self._alive = np.ones((self.n_envs, engine.n_pursuers), dtype=bool)
        self._obs: np.ndarray | None = None

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_space

    def reset(self, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        self._obs = self.engine.reset([int(s) for s in seeds])
        return self._obs.copy(), self._alive.copy()

    def step(self, actions: np.ndarray) -> BatchStep:
        running = ~self.engine.done
        obs, rewards, _, _ = self.engine.step(np.asarray(actions, dtype=np.int64))
        self._obs[running] = obs[running]
        rewards = np.where(running[:, None], rewards, 0.0).astype(np.float32)
        return BatchStep(self._obs.copy(), self._alive.copy(), rewards, self.engine.done.copy())

    def positions(self) -> np.ndarray:
        """(B, N, 2) float32: every pursuer's grid cell (x, y), as `TeamEnv` reports it (an ended
        episode's pursuers stay where they were)."""
        return self.engine.pursuer_positions().astype(np.float32)

    def episode_metrics(self, index: int) -> dict[str, float]:
        """Evaders caught in episode `index`, as pursuit's `episode_metrics` reports them."""
        _, present = self.engine.evader_positions()
        return {"evaders_caught": float(np.sum(~present[index]))}

    def close(self) -> None:
        pass
