"""Behaviour policies for our prison env (`datagen/envs/prison.py`).

- **Expert** (`PrisonObservationExpert`, observation-only): each prisoner reads its own vector
  observation `[x / cell_width, last wall]` — the suite builds prison with
  `include_last_wall=True` (`datagen/envs/registry.py`) — and heads for the wall opposite the one
  it touched last, or, before it has touched one, for the nearer wall (left on a tie). That is
  the rule of `datagen.envs.prison.optimal_actions` written on the observation: the position and
  the last wall are the whole of a prisoner's Markov state (the step counter aside, which the
  bounce never needs), so the rule is a function of the observation alone, the same for every
  prisoner and team size, and reaches the best achievable return of every episode exactly.
  Without `include_last_wall` a position does not say which way to go and no memoryless rule can
  bounce, so `make_expert` refuses that observation.
- **Privileged** (`PrisonExpert`, the class of the expert of older datasets): the same rule
  reading the positions and last walls from the env (`env.unwrapped`); kept as the ceiling, and
  equal to the expert here.
- **Adversary**: every prisoner stays where it started; a start is never on a wall, so it never
  scores (return 0, below a random team's).

Measured (`marl-datagen reference --env prison --agents N --episodes 100`, seed 0; team return
mean ± std, `best_achievable` is the mean of `episode_metrics`):

    n    random          expert          privileged      best achievable  expert % of privileged
    2     0.89 ± 0.76     7.47 ± 0.62     7.47 ± 0.62     7.47            100.0
    4     1.60 ± 0.92    14.71 ± 0.90    14.71 ± 0.90    14.71            100.0
    8     3.24 ± 1.30    29.35 ± 1.13    29.35 ± 1.13    29.35            100.0
    16    6.25 ± 1.99    58.92 ± 1.55    58.92 ± 1.55    58.92            100.0
    32   12.19 ± 2.52   117.86 ± 2.48   117.86 ± 2.48   117.86            100.0

BC on 20 expert episodes at n = 4 (the slow test in tests/datagen/test_policy_prison.py) scores
98.4 normalised at n = 4.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datagen.envs.prison import ACTION_LEFT, ACTION_RIGHT, ACTION_STAY, RIGHT, optimal_actions
from datagen.errors import UserError
from datagen.policies import ScriptedPolicy


def bounce_actions(obs: np.ndarray) -> np.ndarray:
    """The bounce, from observations `(N, 2)` of `[x / cell_width, last wall]` -> (N,) actions.

    Before any wall is touched (code 0) a prisoner heads for the nearer wall, left on a tie;
    afterwards for the wall opposite the last one.
    """
    position, last = obs[:, 0], obs[:, 1]
    go_left = np.where(last == 0, position <= 0.5, last == RIGHT)
    return np.where(go_left, ACTION_LEFT, ACTION_RIGHT).astype(np.int64)


class PrisonObservationExpert(ScriptedPolicy):
    """The return-maximising bounce, read from each prisoner's own observation."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "expert", privileged=False)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return bounce_actions(obs)


class PrisonExpert(ScriptedPolicy):
    """The return-maximising bounce, read from the env's positions and last walls (privileged;
    the class keeps the name it had when it was the expert, as recorded in older datasets)."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "privileged", privileged=True)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        return optimal_actions(raw.positions, raw.last_wall, raw.cell_width)


class PrisonAdversary(ScriptedPolicy):
    """Never move, never score."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "adversarial", privileged=False)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return np.full(len(alive), ACTION_STAY, dtype=np.int64)


def make_expert(env: Any) -> PrisonObservationExpert:
    """The observation-only expert.

    Raises:
        UserError: the env's observation is not the vector with the last wall.
    """
    shape = env.observation_space(env.possible_agents[0]).shape
    if shape != (2,):
        raise UserError(
            f"prison's expert reads the vector observation with the wall touched last, shape "
            f"(2,), got {shape}: build the env with obs_type='vector', include_last_wall=True"
        )
    return PrisonObservationExpert(env.action_space(env.possible_agents[0]).n)


def make_privileged(env: Any) -> PrisonExpert:
    return PrisonExpert(env.action_space(env.possible_agents[0]).n)


def make_adversary(env: Any) -> PrisonAdversary:
    return PrisonAdversary(env.action_space(env.possible_agents[0]).n)


def episode_metrics(env: Any) -> dict[str, float]:
    """The best achievable team return of the episode just played (for the ≥ 95 % target)."""
    return {"best_achievable": float(env.unwrapped.max_episode_returns().sum())}
