"""Behaviour policies for our waterworld env (`datagen/envs/waterworld.py`).

Both are privileged scripted controllers: they read the env's internals (`env.unwrapped`: the
positions and velocities of pursuers, food and poison, and the obstacles), not the sensors.

- **Expert** (`WaterworldExpert`): every food item gets its `n_coop` pursuers, nearest in time
  to the point where the food will be (greedy min-cost matching); pursuers left over wait on an
  even grid over the arena, where respawned food is likely to be near one of them. A goal hidden
  behind an obstacle is replaced by a waypoint beside it. Each pursuer then takes the action
  (of 9) whose 3-step rollout of the pursuer dynamics (damping, speed cap, walls) stays closest
  to its goal, with a penalty for coming within touching distance (+0.015) of where the poisons
  will be. Waiting pursuers coast rather than thrust when that is about as good.
- **Adversary** (`WaterworldAdversary`): the same steering with the roles swapped: each pursuer
  chases its nearest poison and swerves away from food. Its team return is far below random's.

Development measurements (50 episodes, seed 0, default options; `evaluate("waterworld", n, make,
50, seed=0)` from `datagen.policies.evaluate`, with food caught and pursuer-poison contacts counted
by wrapping the env instance's `_collide_and_reward`, as `_count_contacts` in
tests/datagen/test_policy_waterworld.py does), mean ± std per episode:

    n   policy      team return        food caught     poison contacts
    2   expert      1151.4 ±  59.1     115.2 ±  5.9      0.06 ± 0.24
        random        45.6 ±  27.2       5.9 ±  2.7      8.5 ±  3.0
        adversary   -111.1 ±   8.8       0.06 ± 0.24   107.4 ±  8.5
    4   expert      2086.5 ±  81.2     207.8 ±  8.1      0.10 ± 0.36
        random        97.3 ±  37.2      12.4 ±  3.6     18.0 ±  4.5
        adversary   -190.8 ±  20.7       0.10 ± 0.46   183.9 ± 19.9
    8   expert      3556.3 ± 104.0     354.2 ± 10.3      0.16 ± 0.42
        random       193.7 ±  47.7      24.6 ±  4.7     35.7 ±  5.5
        adversary   -313.3 ±  34.2       0.06 ± 0.24   296.4 ± 33.7
    16  expert      5565.0 ± 110.2     555.4 ± 11.4      0.16 ± 0.37
        random       416.4 ±  73.8      51.9 ±  7.3     71.2 ±  8.3
        adversary   -547.1 ±  68.1       0.12 ± 0.38   516.0 ± 66.8
    32  expert      7813.6 ± 160.7     778.5 ± 16.6      0.78 ± 0.81
        random       853.9 ± 130.0     104.8 ± 13.0    142.5 ± 12.7
        adversary   -942.7 ± 104.3       0.14 ± 0.40   872.6 ± 103.3

The expert catches 19.7x, 16.8x, 14.4x, 10.7x and 7.4x the food random catches at n = 2, 4, 8,
16, 32 (food is the bottleneck at large n: 5 items for 32 pursuers). It also catches food with
`n_coop` > 1 (n = 8, n_coop = 2: about 177 an episode over 3 episodes, random 1).

`episode_metrics` reports `food_caught` and `poison_touched` only when the env keeps those
per-episode counters (attributes of `WaterworldEnv`); our env does not yet, so it returns {}.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datagen.policies import ScriptedPolicy

NO_THRUST = 8
_ANGLES = np.arange(8) * (np.pi / 4.0)
#: (9, 2) unit thrust direction of each action; row 8 (no thrust) is zero.
_DIRS = np.concatenate([np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1), np.zeros((1, 2))])


def _rollout(raw: Any, pos: np.ndarray, vel: np.ndarray, horizon: int) -> np.ndarray:
    """Positions of every pursuer under every action held for `horizon` steps.

    Args:
        pos, vel: (N, 2) pursuer positions and velocities.

    Returns:
        (horizon, N, 9, 2) positions after steps 1..horizon (walls applied, obstacles ignored).
    """
    p = np.broadcast_to(pos[:, None, :], (len(pos), 9, 2)).copy()
    v = np.broadcast_to(vel[:, None, :], (len(pos), 9, 2)).copy()
    accel = _DIRS * raw.thrust  # (9, 2)
    cap = raw.pursuer_max_speed
    r = raw.pursuer_radius
    out = np.empty((horizon, len(pos), 9, 2))
    for t in range(horizon):
        v = raw.damping * v + accel
        speed = np.linalg.norm(v, axis=-1, keepdims=True)
        v = v * np.minimum(1.0, cap / np.maximum(speed, 1e-12))
        p = p + v
        low, high = p < r, p > 1.0 - r
        p = np.clip(p, r, 1.0 - r)
        v = np.where(low, np.maximum(v, 0.0), v)
        v = np.where(high, np.minimum(v, 0.0), v)
        out[t] = p
    return out


def _drift(pos: np.ndarray, vel: np.ndarray, radius: float, steps: np.ndarray) -> np.ndarray:
    """(T, K, 2) straight-line positions of drifting items after `steps`, folded at the walls."""
    raw_pos = pos[None, :, :] + steps[:, None, None] * vel[None, :, :]
    lo, hi = radius, 1.0 - radius
    span = hi - lo
    x = np.mod(raw_pos - lo, 2.0 * span)
    return lo + np.where(x > span, 2.0 * span - x, x)


def _detour(raw: Any, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Replace goals hidden behind an obstacle by a waypoint beside it. (N, 2) -> (N, 2)."""
    if raw.n_obstacles == 0:
        return goal
    out = goal.copy()
    clear = raw.obstacle_radius + raw.pursuer_radius + 0.02
    for centre in raw._obstacle_pos:
        seg = out - pos  # (N, 2)
        length_sq = np.maximum((seg * seg).sum(axis=1), 1e-12)
        s = np.clip(((centre - pos) * seg).sum(axis=1) / length_sq, 0.0, 1.0)
        closest = pos + s[:, None] * seg
        off = closest - centre
        dist = np.linalg.norm(off, axis=1)
        blocked = (dist < clear) & (s > 0.0) & (s < 1.0)
        if not blocked.any():
            continue
        # Go round on the side the straight line passes: push the closest point out to the rim.
        perp = np.stack([-seg[:, 1], seg[:, 0]], axis=1)
        perp /= np.maximum(np.linalg.norm(perp, axis=1, keepdims=True), 1e-12)
        side = np.where((dist > 1e-9)[:, None], off / np.maximum(dist, 1e-12)[:, None], perp)
        waypoint = centre + 1.25 * clear * side
        out = np.where(blocked[:, None], waypoint, out)
    return out


def _greedy_assign(cost: np.ndarray, capacity: int) -> np.ndarray:
    """Greedy min-cost matching of rows (pursuers) to columns (items), `capacity` rows per column.

    Returns:
        (N,) column of each row, -1 for rows left over.
    """
    n, m = cost.shape
    out = np.full(n, -1, dtype=np.int64)
    if m == 0:
        return out
    c = cost.astype(np.float64).copy()
    load = np.zeros(m, dtype=np.int64)
    for _ in range(min(n, m * capacity)):
        flat = int(np.argmin(c))
        i, j = divmod(flat, m)
        if not np.isfinite(c[i, j]):
            break
        out[i] = j
        c[i, :] = np.inf
        load[j] += 1
        if load[j] >= capacity:
            c[:, j] = np.inf
    return out


def _stations(n: int) -> np.ndarray:
    """(n, 2) evenly spread waiting points in the unit square."""
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    xs = (np.arange(cols) + 0.5) / cols
    ys = (np.arange(rows) + 0.5) / rows
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return grid[:n]


class _Steering(ScriptedPolicy):
    """Shared machinery: pick goals, then the action whose 3-step rollout best tracks the goal
    while keeping clear of the items to avoid."""

    horizon = 3

    def __init__(self, n_actions: int, name: str, avoid_weight: float) -> None:
        super().__init__(n_actions, name, privileged=True)
        self.avoid_weight = avoid_weight

    def goals(self, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) goal of each pursuer and (N,) whether it is chasing (not just waiting)."""
        raise NotImplementedError

    def avoid(self, raw: Any) -> tuple[np.ndarray, np.ndarray, float]:
        """Positions, velocities and radius of the items to keep away from."""
        raise NotImplementedError

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        pos, vel = raw._pursuer_pos, raw._pursuer_vel
        goal, chasing = self.goals(raw)
        goal = _detour(raw, pos, goal)
        steps = np.arange(1, self.horizon + 1, dtype=np.float64)
        future = _rollout(raw, pos, vel, self.horizon)  # (T, N, 9, 2)
        gap = np.linalg.norm(future - goal[None, :, None, :], axis=-1)  # (T, N, 9)
        score = gap.sum(axis=0)  # (N, 9)
        items, item_vel, item_radius = self.avoid(raw)
        if len(items):
            reach = raw.pursuer_radius + item_radius
            ahead = _drift(items, item_vel, item_radius, steps)  # (T, K, 2)
            d = np.linalg.norm(future[:, :, :, None, :] - ahead[:, None, None, :, :], axis=-1)
            close = np.clip(reach + 0.015 - d, 0.0, None).sum(axis=(0, 3))  # (N, 9)
            score = score + self.avoid_weight * (close > 0) + 10.0 * close
        # Thrust costs 0.005 a step: coast when coasting tracks the goal about as well.
        score[:, NO_THRUST] -= np.where(chasing, 0.0, 0.02)
        return np.argmin(score, axis=1).astype(np.int64)


class WaterworldExpert(_Steering):
    """Food chaser: every food item gets its `n_coop` nearest-in-time pursuers (greedy matching),
    the rest wait spread over the arena; each pursuer steers with a 3-step lookahead that
    avoids poison (privileged)."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "expert", avoid_weight=1.0)

    def goals(self, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        pos = raw._pursuer_pos
        n = len(pos)
        if raw.n_evaders == 0:
            return _stations(n), np.zeros(n, dtype=bool)
        speed = raw.pursuer_max_speed
        food, food_vel = raw._food_pos, raw._food_vel
        dist = np.linalg.norm(pos[:, None, :] - food[None, :, :], axis=-1)  # (N, E)
        # One refinement of the intercept time: where the food will be when we get there.
        t = dist / speed
        ahead = food[None] + t[..., None] * food_vel[None]
        ahead = np.clip(ahead, raw.evader_radius, 1.0 - raw.evader_radius)
        rel = ahead - (pos + 2.0 * raw._pursuer_vel)[:, None, :]
        t = np.linalg.norm(rel, axis=-1) / speed
        assign = _greedy_assign(t, raw.n_coop)
        chasing = assign >= 0
        goal = np.empty_like(pos)
        rows = np.flatnonzero(chasing)
        goal[rows] = ahead[rows, assign[rows]]
        idle = np.flatnonzero(~chasing)
        if idle.size:
            stations = _stations(n)
            where = _greedy_assign(np.linalg.norm(pos[idle, None, :] - stations[None], axis=-1), 1)
            goal[idle] = stations[where]
        return goal, chasing

    def avoid(self, raw: Any) -> tuple[np.ndarray, np.ndarray, float]:
        return raw._poison_pos, raw._poison_vel, raw.poison_radius


class WaterworldAdversary(_Steering):
    """Poison seeker: each pursuer chases its nearest poison and swerves away from food
    (privileged)."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "adversarial", avoid_weight=1.0)

    def goals(self, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        pos = raw._pursuer_pos
        if raw.n_poisons == 0:
            return pos.copy(), np.zeros(len(pos), dtype=bool)
        dist = np.linalg.norm(pos[:, None, :] - raw._poison_pos[None], axis=-1)
        return raw._poison_pos[np.argmin(dist, axis=1)], np.ones(len(pos), dtype=bool)

    def avoid(self, raw: Any) -> tuple[np.ndarray, np.ndarray, float]:
        return raw._food_pos, raw._food_vel, raw.evader_radius


def make_expert(env: Any) -> WaterworldExpert:
    return WaterworldExpert(env.action_space(env.possible_agents[0]).n)


def make_adversary(env: Any) -> WaterworldAdversary:
    return WaterworldAdversary(env.action_space(env.possible_agents[0]).n)


def episode_metrics(env: Any) -> dict[str, float]:
    """Food caught and pursuer-poison contacts in the episode just played, when the env counts them.

    Reads `food_caught` (food items caught: the `caught.sum()` of each step's
    `_collide_and_reward`) and `poison_touched` (pursuer-poison contacts: `touch.sum()` of the
    poison check, so `poison_reward * poison_touched` is the poison part of the team return),
    both reset by `reset()`. Without those counters nothing is reported: the food caught cannot
    be recovered from the env after the episode (caught food respawns).
    """
    raw = env.unwrapped
    out = {}
    for name in ("food_caught", "poison_touched"):
        value = getattr(raw, name, None)
        if value is not None:
            out[name] = float(value)
    return out
