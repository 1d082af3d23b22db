"""Wrappers that give every environment of the suite one contract.

`TeamEnv` is the outermost layer of every env that `make_env` returns. Whatever the underlying env
does, it guarantees:

- the agent axis never shifts: every agent of `possible_agents` stays in `agents` until the whole
  episode ends. An agent that the underlying env removes mid-episode (a knight killed in
  knights_archers_zombies) is kept with zero observations and zero reward, its actions are ignored,
  and its info says `"alive": False`. `infos[agent]["alive"]` is present for every agent at
  every step.
- terminations and truncations are reported for the team when the episode ends: an agent that died
  earlier is reported terminated, the others carry the underlying env's flags.
- floating-point observations and states are float32 (knights_archers_zombies emits float64).
- continuous action spaces are replaced by `Discrete(len(action_table))`; action `k` sends
  `action_table[k]` to the underlying env (multiwalker).
- `infos[agent]["position"]` is every agent's 2-d position at every step, float32 in the env's
  own world units (read from the env's internals by the suite's `positions` function), and
  `positions()` gives the team's (N, 2). Positions only decide which teammates may exchange
  messages (`algos.coordination`); no network reads them as an input feature. A dead agent keeps
  the position of its last observation alive. `view_radius` is how far an agent sees, in the
  same units.
- `make_env(..., seed=s)` seeds the first `reset()` that is called without a seed.

`GymnasiumParallelEnv` turns a single-agent Gymnasium env into a one-agent PettingZoo ParallelEnv,
so that SuperSuit's wrappers and `TeamEnv` apply to it unchanged (the single-player space_invaders).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


def _float32_space(space: spaces.Space) -> spaces.Space:
    """The same Box with float32 dtype when it is a float64 Box; other spaces unchanged."""
    if isinstance(space, spaces.Box) and space.dtype == np.float64:
        return spaces.Box(
            low=space.low.astype(np.float32),
            high=space.high.astype(np.float32),
            shape=space.shape,
            dtype=np.float32,
        )
    return space


def _cast(value: np.ndarray, space: spaces.Space) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype != space.dtype:
        value = value.astype(space.dtype)
    return value


class TeamEnv(ParallelEnv):
    """A fixed team of agents over any PettingZoo ParallelEnv (see the module docstring).

    Args:
        env: the underlying parallel env (already preprocessed).
        name: the suite's name for the env, reported in `metadata["name"]`.
        seed: seed used by the first `reset()` called without one.
        action_table: (A, D) array of continuous actions; when given, each agent's action space
            becomes `Discrete(A)`.
        record: how the env was constructed, as stored in dataset metadata (`env_record`).
        on_reset: a fix-up of the underlying env run after each of its resets.
        positions: `positions(base_env, agent_ids)`: (N, 2) float32 positions of the agents in
            `agent_ids` order, read from the base env (`env.unwrapped`), NaN for an agent it
            cannot locate (removed from the env).
        view_radius: how far an agent sees, in the units of `positions`.
    """

    def __init__(
        self,
        env: ParallelEnv,
        *,
        name: str,
        seed: int | None = None,
        action_table: np.ndarray | None = None,
        record: dict[str, Any] | None = None,
        on_reset: Callable[[ParallelEnv], None] | None = None,
        positions: Callable[[Any, list[str]], np.ndarray],
        view_radius: float,
    ) -> None:
        self.env = env
        self._on_reset = on_reset
        self._locate = positions
        #: How far an agent sees, in the units of its positions (see `datagen.envs.registry`).
        self.view_radius = float(view_radius)
        #: How the env was constructed: the `env` block of dataset metadata.
        self.record = dict(record or {})
        #: Every option the env was built with, defaults included.
        self.options = dict(self.record.get("options", {}))
        self.metadata = {**getattr(env, "metadata", {}), "name": name}
        self.render_mode = getattr(env, "render_mode", None)
        self.possible_agents = list(env.possible_agents)
        self.agents: list[str] = []
        self.action_table = None if action_table is None else np.asarray(action_table, np.float32)
        self._obs_spaces = {
            agent: _float32_space(env.observation_space(agent)) for agent in self.possible_agents
        }
        if self.action_table is None:
            self._action_spaces = {agent: env.action_space(agent) for agent in self.possible_agents}
        else:
            self._action_spaces = {
                agent: spaces.Discrete(len(self.action_table)) for agent in self.possible_agents
            }
        inner_state_space = getattr(env, "state_space", None)
        if inner_state_space is None:
            inner_state_space = getattr(env.unwrapped, "state_space", None)
        self.state_space = None if inner_state_space is None else _float32_space(inner_state_space)
        self._pending_seed = seed
        self._alive: dict[str, bool] = {}
        self._positions = np.zeros((len(self.possible_agents), 2), dtype=np.float32)

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        else:
            self._pending_seed = None
        obs, infos = self.env.reset(seed=seed, options=options)
        if self._on_reset is not None:
            self._on_reset(self.env)
        self.agents = list(self.possible_agents)
        self._alive = dict.fromkeys(self.possible_agents, True)
        self._positions[:] = np.nan
        self._update_positions()
        out_obs = {agent: self._observation(agent, obs) for agent in self.agents}
        out_infos = {
            agent: {**infos.get(agent, {}), "alive": True, "position": self._positions[i].copy()}
            for i, agent in enumerate(self.agents)
        }
        return out_obs, out_infos

    def positions(self) -> np.ndarray:
        """(N, 2) float32: every agent's position now, in `possible_agents` order (a dead agent's
        is where it was last seen alive)."""
        return self._positions.copy()

    def _update_positions(self) -> None:
        """Read the positions of the alive agents; the dead keep their last one."""
        located = np.asarray(self._locate(self.env.unwrapped, self.possible_agents), np.float32)
        alive = np.array([self._alive[agent] for agent in self.possible_agents])
        update = alive & np.isfinite(located).all(axis=1)
        self._positions[update] = located[update]

    def _observation(self, agent: str, obs: dict[str, Any]) -> np.ndarray:
        space = self._obs_spaces[agent]
        if agent in obs:
            return _cast(obs[agent], space)
        return np.zeros(space.shape, dtype=space.dtype)

    def _inner_action(self, action: Any) -> Any:
        if self.action_table is None:
            return action
        return self.action_table[int(action)]

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        live = [agent for agent in self.env.agents if self._alive.get(agent, False)]
        missing = [agent for agent in live if agent not in actions]
        if missing:
            raise ValueError(f"no action given for live agents {missing}")
        obs, rewards, terminations, truncations, infos = self.env.step(
            {agent: self._inner_action(actions[agent]) for agent in live}
        )
        episode_over = not self.env.agents
        out_obs, out_rew, out_term, out_trunc, out_info = {}, {}, {}, {}, {}
        for agent in self.agents:
            was_alive = self._alive[agent]
            if was_alive:
                # Leaving the underlying env before the episode ends means dying: stay, dead.
                removed = agent not in self.env.agents and not episode_over
                self._alive[agent] = not (bool(terminations.get(agent, False)) or removed)
            out_obs[agent] = self._observation(agent, obs) if was_alive else self._zeros(agent)
            out_rew[agent] = float(rewards.get(agent, 0.0)) if was_alive else 0.0
            out_term[agent] = episode_over and not self._alive[agent]
            out_trunc[agent] = episode_over and self._alive[agent]
            inner_info = infos.get(agent, {}) if was_alive else {}
            out_info[agent] = {**inner_info, "alive": self._alive[agent]}
        self._update_positions()  # once the alive flags are this step's
        for i, agent in enumerate(self.agents):
            out_info[agent]["position"] = self._positions[i].copy()
        if episode_over:
            self.agents = []
        return out_obs, out_rew, out_term, out_trunc, out_info

    def _zeros(self, agent: str) -> np.ndarray:
        space = self._obs_spaces[agent]
        return np.zeros(space.shape, dtype=space.dtype)

    def state(self) -> np.ndarray:
        if self.state_space is None:
            raise AttributeError(f"{self.metadata['name']} has no global state")
        try:
            return _cast(self.env.state(), self.state_space)
        except AttributeError:
            return self._multiwalker_v9_state_after_removal()

    def _multiwalker_v9_state_after_removal(self) -> np.ndarray:
        """multiwalker-v9's state() reads every walker's body, and a walker removed on falling has
        none left, so it raises once a walker has fallen. Like the observation of a dead agent,
        the state is then all zeros; with nobody removed the error is real and propagates."""
        if self.agents and all(self._alive.values()):
            raise
        return np.zeros(self.state_space.shape, dtype=self.state_space.dtype)

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


class GymnasiumParallelEnv(ParallelEnv):
    """A single-agent Gymnasium env seen as a one-agent PettingZoo ParallelEnv.

    Args:
        env: the Gymnasium env.
        agent_id: the name of its one agent.
        name: the env's name in `metadata`.
    """

    def __init__(self, env: gymnasium.Env, *, agent_id: str, name: str) -> None:
        self.env = env
        self.metadata = {"name": name, "render_modes": ["rgb_array"], "is_parallelizable": True}
        self.render_mode = env.render_mode
        self.possible_agents = [agent_id]
        self.agents: list[str] = []
        self.observation_spaces = {agent_id: env.observation_space}
        self.action_spaces = {agent_id: env.action_space}

    @property
    def np_random(self) -> np.random.Generator:
        """The Gymnasium env's generator (SuperSuit's frame skip draws from it)."""
        return self.env.unwrapped.np_random

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return {self.agents[0]: obs}, {self.agents[0]: info}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        agent = self.possible_agents[0]
        obs, reward, terminated, truncated, info = self.env.step(actions[agent])
        if terminated or truncated:
            self.agents = []
        return (
            {agent: obs},
            {agent: float(reward)},
            {agent: bool(terminated)},
            {agent: bool(truncated)},
            {agent: info},
        )

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
