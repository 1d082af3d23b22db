"""Behaviour policies for our waterworld env (`datagen/envs/waterworld.py`).

DRAFT
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
        """Positions, velocities and contact radius of the items to keep away from."""
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
        items, item_vel, reach = self.avoid(raw)
        if len(items):
            ahead = _drift(items, item_vel, 0.0, steps)  # (T, K, 2)
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
        return raw._poison_pos, raw._poison_vel, raw.pursuer_radius + raw.poison_radius


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
        return raw._food_pos, raw._food_vel, raw.pursuer_radius + raw.evader_radius


def make_expert(env: Any) -> WaterworldExpert:
    return WaterworldExpert(env.action_space(env.possible_agents[0]).n)


def make_adversary(env: Any) -> WaterworldAdversary:
    return WaterworldAdversary(env.action_space(env.possible_agents[0]).n)


def episode_metrics(env: Any) -> dict[str, float]:
    raw = env.unwrapped
    out = {}
    for name in ("food_caught", "poison_touched"):
        value = getattr(raw, name, None)
        if value is not None:
            out[name] = float(value)
    return out
