"""Behaviour policies for pistonball.

Both are privileged scripted controllers: they read the ball's position and every piston's position
from PettingZoo's env (`env.unwrapped.ball`, `env.unwrapped.pistonList`), not from the pixels.

- **Expert**: piston i goes down (action 0) while its centre is left of a point 0.3 ball radii right
  of the ball's centre, else up (action 2). The pistons ahead of the ball drop away while those
  under its right part rise, so the ball keeps rolling left. The threshold was tuned with
  `datagen.policies.evaluate.evaluate` over 30 episodes (seed 0) each at n = 5 and 20: 0.3 radii
  succeeded in 30/30 at both, 0.5 in 29/30 and 24/30, 0.65 in 19/30 and 5/30; at the ball's right
  edge (1 radius) the ball comes to rest on a flat floor.
- **Adversary**: the mirror image about the ball's centre, so the ball rolls right, away from the
  goal, and the team collects the time penalty and the negative movement reward.

Actions: 0 down, 1 stay, 2 up (`continuous=False`). Figures are in docs/datasets.md
(`marl-datagen reference`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datagen.policies import ScriptedPolicy

DOWN, STAY, UP = 0, 1, 2
#: Where the pistons switch from down to up, in ball radii right of the ball's centre.
THRESHOLD_RADII = 0.3


def _piston_centres(raw: Any) -> np.ndarray:
    # A piston body's position is the left end of its head segment, which spans
    # piston_width - 2 * piston_radius to the right.
    offset = (raw.piston_width - 2 * raw.piston_radius) / 2
    return np.array([piston.position[0] + offset for piston in raw.pistonList], dtype=np.float64)


class PistonballExpert(ScriptedPolicy):
    """Roll the ball left: drop the pistons ahead of the ball, raise those under its right part."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "expert", privileged=True)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        switch = raw.ball.position[0] + THRESHOLD_RADII * raw.ball_radius
        return np.where(_piston_centres(raw) < switch, DOWN, UP)


class PistonballAdversary(ScriptedPolicy):
    """Roll the ball right: the expert's mirror image."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "adversarial", privileged=True)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        switch = raw.ball.position[0] - THRESHOLD_RADII * raw.ball_radius
        return np.where(_piston_centres(raw) > switch, DOWN, UP)


def make_expert(env: Any) -> PistonballExpert:
    return PistonballExpert(env.action_space(env.possible_agents[0]).n)


def make_adversary(env: Any) -> PistonballAdversary:
    return PistonballAdversary(env.action_space(env.possible_agents[0]).n)


def episode_metrics(env: Any) -> dict[str, float]:
    """Whether the ball reached the left wall (the env ends the game then)."""
    return {"ball_at_left_wall": float(bool(env.unwrapped.terminate))}
