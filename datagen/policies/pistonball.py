"""Behaviour policies for pistonball.

- **Expert** (observation-only, quality `expert`): each piston looks for the ball in its own
  84x84 grayscale crop (the crop spans its own piston and one on each side, 120 x 457 pixels; its
  own centre is column 42). The ball is the widest horizontal run of ball grey (137; the piston
  bodies share the grey but are 13 columns wide, the ball 56; gaps of up to 4 columns, the ball's
  rotation line, are bridged); whichever end of that chord lies inside the image gives the ball's
  centre. A piston that sees the ball applies the privileged rule below to that centre (down while
  column 42 is left of the centre + 0.3 radii, else up); a piston that does not see it goes down.
  It reads `obs` only — `env` is never touched, and the same pixels give the same action in any
  team, at any position, at any team size — so it is a function of each agent's own observation.
  This needs the env built with `render_mode="rgb_array"` (`datagen.envs.registry._pistonball`):
  without one PettingZoo never redraws its screen and every observation is the blank reset frame.
- **Privileged** (quality `privileged`, a ceiling, not imitable from the pixels): reads the ball's
  position and every piston's position from PettingZoo's env (`env.unwrapped.ball`,
  `env.unwrapped.pistonList`). Piston i goes down (action 0) while its centre is left of a point
  0.3 ball radii right of the ball's centre, else up (action 2). The pistons ahead of the ball drop
  away while those under its right part rise, so the ball keeps rolling left. The threshold was
  tuned with `datagen.policies.evaluate.evaluate` over 30 episodes (seed 0) each at n = 5 and 20:
  0.3 radii succeeded in 30/30 at both, 0.5 in 29/30 and 24/30, 0.65 in 19/30 and 5/30; at the
  ball's right edge (1 radius) the ball comes to rest on a flat floor.
- **Adversary**: the privileged rule's mirror image about the ball's centre, so the ball rolls
  right, away from the goal, and the team collects the time penalty and the negative movement
  reward.

Measured with `marl-datagen reference --env pistonball --agents N --episodes K` (seed 0), team
return mean and the share of episodes with the ball home (`ball_at_left_wall`):

| n | episodes | random | expert | privileged | expert, % of privileged (normalized) |
|---|---|---|---|---|---|
| 3 | 50 | 26.0 (78 % home) | 192.8 (96 %) | 207.4 (98 %) | 91.9 |
| 5 | 50 | 154.3 (42 %) | 465.2 (94 %) | 492.0 (100 %) | 92.1 |
| 10 | 50 | 122.5 (8 %) | 965.8 (98 %) | 947.5 (96 %) | 102.2 |
| 20 | 50 | -80.8 (0 %) | 1956.0 (100 %) | 1953.2 (100 %) | 100.1 |
| 40 | 50 | -295.8 (0 %) | 3786.0 (98 %) | 3776.9 (98 %) | 100.2 |

One episode at n = 40 takes about 11 s for random (it runs the full 125 steps), 4 s for the
expert and the privileged controller (31 and 32 steps; 2-core machine, no other load); the
50-episode references took 11 minutes at n = 20 and 24 minutes at n = 40 (load average 2 to 5
from other jobs).

Medium recipes (`marl-datagen calibrate --env pistonball --agents N`, seed 0, against the
references above): ε = 0.984 (32.5 normalized) at n = 3, 0.906 (40.3) at n = 5, 0.875 (58.9) at
n = 10, 0.875 (31.4) at n = 20. At n = 3 the probes play 50 episodes (`--episodes 50`), not 20:
random already brings the ball home in 78 % of episodes, the mixture stays near 100 up to
ε ≈ 0.97, and the 20-episode score is a staircase with steps of tens of points: it jumps from
66.7 to 23.5 between ε = 0.98350 and 0.98380 (seed 0; a scan of 14 ε over [0.9805, 0.9844]
finds nothing in between), one random draw that changes one episode's return by about 1,440,
so no ε lands in [30, 60] however deep the bisection goes.

Plain BC (`bc`, defaults: hidden 256, the Nature-DQN convolutions; 500 updates of batch 256) on 20
expert episodes at n = 5 plays at 105.3 normalized at n = 5 (return 481.6, ball home in 9 of 10
episodes; `test_bc_learns_the_expert`, marked slow, 17.5 minutes on the 2-core machine at load
average 2.5, about 2 s an update). 250 updates already gave 105.0; the 2,000 first written would
take about 100 minutes here.

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
#: The same switch point for the observation-only expert.
OBS_THRESHOLD_RADII = 0.3


def _piston_centres(raw: Any) -> np.ndarray:
    # A piston body's position is the left end of its head segment, which spans
    # piston_width - 2 * piston_radius to the right.
    offset = (raw.piston_width - 2 * raw.piston_radius) / 2
    return np.array([piston.position[0] + offset for piston in raw.pistonList], dtype=np.float64)


class PistonballPrivileged(ScriptedPolicy):
    """Roll the ball left: drop the pistons ahead of the ball, raise those under its right part."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "privileged", privileged=True)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        switch = raw.ball.position[0] + THRESHOLD_RADII * raw.ball_radius
        return np.where(_piston_centres(raw) < switch, DOWN, UP)


#: The colour of the ball (and of the piston bodies) in the 84x84 grayscale observation.
BALL_GREY = 137
#: A row of the observation holds the ball when it has a run of ball-grey pixels at least this long;
#: a piston body is 13 columns wide, the ball 56 across.
BALL_RUN = 18
#: The ball's radius in observation columns: the crop is 120 pixels wide (3 pistons of 40), resized
#: to 84, and the ball's radius is 40 pixels.
BALL_RADIUS_COLS = 28.0
#: The piston's own centre column: the crop is centred on the piston.
OWN_COLUMN = 42.0


#: Gaps of up to this many columns inside a row of ball grey are bridged: the dark line that shows
#: the ball's rotation crosses it.
BALL_GAP = 4


def _shift(mask: np.ndarray, by: int) -> np.ndarray:
    """`mask` moved `by` columns right (left when negative) along the last axis, padded False."""
    out = np.zeros_like(mask)
    if by > 0:
        out[..., by:] = mask[..., :-by]
    else:
        out[..., :by] = mask[..., -by:]
    return out


def _close_rows(mask: np.ndarray, gap: int) -> np.ndarray:
    """Fill runs of at most `gap` False columns with True on both sides (along the last axis)."""
    left = np.zeros_like(mask)
    right = np.zeros_like(mask)
    for by in range(1, gap + 1):
        left |= _shift(mask, by)
        right |= _shift(mask, -by)
    return mask | (left & right)


def ball_centre_columns(obs: np.ndarray) -> np.ndarray:
    """The ball's centre column in each agent's observation, NaN where the ball is not visible.

    The ball is the widest row-run of ball grey (piston bodies, the same grey, are 13 columns wide):
    its widest chord is the equator, and whichever end of it lies inside the image fixes the centre.

    Args:
        obs: (N, 84, 84, 1) uint8 observations, one per agent.

    Returns:
        (N,) float64: the ball's centre in columns of the agent's own image (its piston at 42).
    """
    image = obs[..., 0]
    grey = _close_rows(np.abs(image.astype(np.int16) - BALL_GREY) <= 3, BALL_GAP)
    run = np.zeros(image.shape[:-1], dtype=np.int64)  # (N, H): run length ending at this column
    best = np.zeros(image.shape[0], dtype=np.int64)
    best_end = np.zeros(image.shape[0], dtype=np.int64)
    for column in range(image.shape[-1]):
        run = np.where(grey[..., column], run + 1, 0)
        longest = run.max(axis=1)
        better = longest > best
        best = np.where(better, longest, best)
        best_end = np.where(better, column, best_end)
    width = image.shape[-1]
    left = (best_end - best + 1).astype(np.float64)
    right = best_end.astype(np.float64)
    # Measure from whichever end of the chord is inside the image (the ball is 56 of 84 wide).
    centre = np.where(
        right < width - 1, right + 0.5 - BALL_RADIUS_COLS, left - 0.5 + BALL_RADIUS_COLS
    )
    return np.where(best >= BALL_RUN, centre, np.nan)


class PistonballExpert(ScriptedPolicy):
    """The privileged rule, read from each piston's own observation.

    A piston whose image shows the ball goes down when its own centre (column 42) is left of a
    point `THRESHOLD_RADII` ball radii right of the ball's centre, else up; a piston that does not
    see the ball goes down. A function of the agent's own observation only: `env` is never read.
    """

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "expert", privileged=False)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        centre = ball_centre_columns(np.asarray(obs))
        switch = centre + OBS_THRESHOLD_RADII * BALL_RADIUS_COLS
        up = ~np.isnan(centre) & (OWN_COLUMN >= switch)
        return np.where(up, UP, DOWN)


class PistonballAdversary(ScriptedPolicy):
    """Roll the ball right: the expert's mirror image."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "adversarial", privileged=True)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        switch = raw.ball.position[0] - THRESHOLD_RADII * raw.ball_radius
        return np.where(_piston_centres(raw) > switch, DOWN, UP)


def make_privileged(env: Any) -> PistonballPrivileged:
    return PistonballPrivileged(env.action_space(env.possible_agents[0]).n)


def make_expert(env: Any) -> PistonballExpert:
    return PistonballExpert(env.action_space(env.possible_agents[0]).n)


def make_adversary(env: Any) -> PistonballAdversary:
    return PistonballAdversary(env.action_space(env.possible_agents[0]).n)


def episode_metrics(env: Any) -> dict[str, float]:
    """Whether the ball reached the left wall (the env ends the game then)."""
    return {"ball_at_left_wall": float(bool(env.unwrapped.terminate))}
