"""Behaviour policies for our prison env (`datagen/envs/prison.py`).

- **Expert** (privileged: reads each prisoner's exact position and the wall it touched last from the
  env): `datagen.envs.prison.optimal_actions` — head for the nearest wall at full speed, then bounce
  between the walls. It reaches the best achievable return of every episode exactly
  (`max_episode_return`, derived in the env's docstring and docs/environments.md).
- **Adversary**: every prisoner stays where it started; a start is never on a wall, so it never
  scores (return 0, below a random team's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datagen.envs.prison import ACTION_STAY, optimal_actions
from datagen.policies import ScriptedPolicy


class PrisonExpert(ScriptedPolicy):
    """The return-maximising bounce between the walls."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "expert", privileged=True)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        return optimal_actions(raw.positions, raw.last_wall, raw.cell_width)


class PrisonAdversary(ScriptedPolicy):
    """Never move, never score."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "adversarial", privileged=False)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return np.full(len(alive), ACTION_STAY, dtype=np.int64)


def make_expert(env: Any) -> PrisonExpert:
    return PrisonExpert(env.action_space(env.possible_agents[0]).n)


def make_adversary(env: Any) -> PrisonAdversary:
    return PrisonAdversary(env.action_space(env.possible_agents[0]).n)


def episode_metrics(env: Any) -> dict[str, float]:
    """The best achievable team return of the episode just played (for the ≥ 80 % target)."""
    return {"best_achievable": float(env.unwrapped.max_episode_returns().sum())}
