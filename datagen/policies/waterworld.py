"""Behaviour policies for our waterworld env (`datagen/envs/waterworld.py`).

- **Expert** (`WaterworldSensorExpert`, observation-only): each pursuer reads only its own
  observation, the 30 range sensors of the env docstring (obstacle, barrier, food, poison and
  pursuer distances, and the closing speeds of food, poison and pursuers), so its action
  distribution is a function of that row alone: no agent index, no env state, no memory, and the
  same function at every team size. Per pursuer and step:

  1. *Own velocity*: food and poison drift at a fifth of a pursuer's top speed, so the closing
     speeds of every ray that sees one are nearly the pursuer's velocity projected on the ray;
     a ridge least-squares fit over those rays recovers it (0 along directions nothing shows).
  2. *Chase*: the rays within 0.15 (normalised) of the nearest food reading see that item; their
     mean direction and the reading put its centre, and the same fit over those rays alone gives
     its drift. The pursuer takes the action (of 9) whose 3-step rollout of the pursuer dynamics
     from its estimated velocity stays closest to the drifting food. With `n_coop` = 1 it leaves
     the food to another pursuer its sensors show at least 0.03 nearer to it.
  3. *Search* (no food in view): keep going along the estimated velocity, pushed away from (and
     along) walls within 0.1 and away from other pursuers in view, which spreads a large team;
     when nothing in view steers it at all, a thrust heading drawn uniformly (the only
     stochastic case).
  4. *Poison*: every rollout is penalised for coming within touching distance + 0.02 of a poison
     seen (taken as still).

  `make_expert` reads the env's fixed settings once (sensor count, range and layout, thrust,
  damping, speed cap, radii); `act` and `choose` never read the env (`env=None` works).
- **Privileged** (`WaterworldExpert`, the class of the expert of older datasets): reads the env's
  internals (`env.unwrapped`: positions and velocities of pursuers, food and poison, and the
  obstacles). Every food item gets its `n_coop` pursuers, nearest in time to the point where the
  food will be (greedy min-cost matching); pursuers left over wait on an even grid over the
  arena, where respawned food is likely to be near one of them. A goal hidden behind an obstacle
  is replaced by a waypoint beside it. Each pursuer then takes the action whose 3-step rollout
  of the pursuer dynamics (damping, speed cap, walls) stays closest to its goal, with a penalty
  for coming within touching distance (+0.015) of where the poisons will be. Waiting pursuers
  coast rather than thrust when that is about as good. It sees food anywhere in the arena, which
  no sensor shows (range 0.2): not imitable from the observations.
- **Adversary** (`WaterworldAdversary`, privileged): the privileged steering with the roles
  swapped: each pursuer chases its nearest poison and swerves away from food. Its team return is
  far below random's.

Measured with `marl-datagen reference --env waterworld --agents N --episodes 50` (seed 0, default
options; `data/reference_scores.json`), team return and food caught, mean ± std per episode;
"% of privileged" is the expert on the privileged normalised scale,
`normalized_score(..., reference="privileged")`:

    n   policy      team return        food caught   expert food / random  % of privileged
    2   random        45.6 ±  27.2       5.9
        expert       585.7 ±  81.2      58.9          10.1x                 48.8
        privileged  1151.4 ±  59.1     115.2
    4   random        97.3 ±  37.2      12.4
        expert      1257.4 ± 127.1     125.1          10.1x                 58.3
        privileged  2086.5 ±  81.2     207.8
    8   random       193.7 ±  47.7      24.6
        expert      2483.0 ± 128.6     241.3           9.8x                 68.1
        privileged  3556.3 ± 104.0     354.2
    16  random       416.4 ±  73.8      51.9
        expert      4459.6 ± 164.1     420.5           8.1x                 78.5
        privileged  5565.0 ± 110.2     555.4
    32  random       853.9 ± 130.1     104.8
        expert      7371.4 ± 194.5     661.1           6.3x                 93.6
        privileged  7813.6 ± 160.7     778.5

The expert catches more than the 5x random's food of issue 14 at every count. Its gap to
the privileged controller is search: food is in a pursuer's view about a third of the time at
n = 2, and a pursuer with nothing in view cannot know where to go; at large n the team's sensors
cover the arena and the gap closes. BC on 20 expert episodes at n = 4 (the slow test in
tests/datagen/test_policy_waterworld.py) scores 88.2 normalised at n = 4.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datagen.policies import ScriptedPolicy, TeamAction, one_hot

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
        super().__init__(n_actions, "privileged", avoid_weight=1.0)

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


class WaterworldSensorExpert(ScriptedPolicy):
    """Food chaser that reads only each pursuer's own range sensors (see the module docstring).

    Args:
        n_actions: 9 (8 thrust headings and no thrust).
        settings: the env (`WaterworldEnv`) whose fixed settings are read once, here: sensor
            count, range and layout, the pursuer dynamics constants and the item radii. Its
            state is never read; `act` and `choose` work with `env=None`.
    """

    #: Steps of the lookahead rollout.
    horizon = 3
    #: Ridge term of the least-squares fit of a velocity to the rays' closing speeds.
    ridge = 0.02
    #: Rays whose food reading is within this (normalised) margin of the nearest see its item.
    food_margin = 0.15
    #: Extra clearance (world units) kept from the predicted poison positions.
    poison_margin = 0.02
    #: Walls (and pursuers) push a searching pursuer within this normalised reading.
    wall_reach, pursuer_reach = 0.5, 1.0
    #: A chase is left to a pursuer seen at least this much (world units) closer to the food.
    yield_margin = 0.03

    def __init__(self, n_actions: int, settings: Any) -> None:
        super().__init__(n_actions, "expert", privileged=False)
        self.n_sensors = settings.n_sensors
        self.n_features = 8 if settings.speed_features else 5
        self.speed_features = settings.speed_features
        self.sensor_range = settings.sensor_range
        self.speed_scale = 2.0 * max(
            settings.pursuer_max_speed, settings.evader_speed, settings.poison_speed
        )
        self.thrust, self.damping = settings.thrust, settings.damping
        self.max_speed = settings.pursuer_max_speed
        self.pursuer_radius = settings.pursuer_radius
        self.evader_radius, self.poison_radius = settings.evader_radius, settings.poison_radius
        # Leaving food to a nearer pursuer only pays when one pursuer alone catches it.
        self.yields = settings.n_coop == 1
        angles = np.arange(self.n_sensors) * (2.0 * np.pi / self.n_sensors)
        self.rays = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (S, 2)

    def _readings(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Each channel of the sensors, (N, S), by name (closing speeds 0 when not observed)."""
        n = len(obs)
        sensors = obs[:, : self.n_sensors * self.n_features].astype(np.float64)
        sensors = sensors.reshape(n, self.n_sensors, self.n_features)  # (N, S, F)
        if self.speed_features:
            names = ("obstacle", "barrier", "food", "food_speed", "poison", "poison_speed")
            names += ("pursuer", "pursuer_speed")
        else:
            names = ("obstacle", "barrier", "food", "poison", "pursuer")
        out = {name: sensors[:, :, i] for i, name in enumerate(names)}
        for name in ("food_speed", "poison_speed"):
            out.setdefault(name, np.zeros((n, self.n_sensors)))
        return out

    def _fit_velocity(self, mask: np.ndarray, closing: np.ndarray) -> np.ndarray:
        """Ridge least squares of u with closing_k = u . ray_k over the rays in `mask`.

        Returns:
            (N, 2) the velocity in world units per step (0 along directions no ray sees).
        """
        weights = mask.astype(np.float64)  # (N, S)
        gram = np.einsum("ns,si,sj->nij", weights, self.rays, self.rays)  # (N, 2, 2)
        gram += self.ridge * np.eye(2)
        moment = np.einsum("ns,si->ni", weights * closing, self.rays)  # (N, 2)
        return self.speed_scale * np.linalg.solve(gram, moment[..., None])[..., 0]

    def _rollout(self, velocity: np.ndarray) -> np.ndarray:
        """(T, N, 9, 2) displacement after steps 1..T under each action held (walls ignored)."""
        v = np.broadcast_to(velocity[:, None, :], (len(velocity), 9, 2)).copy()
        p = np.zeros_like(v)
        out = np.empty((self.horizon, *v.shape))
        for t in range(self.horizon):
            v = self.damping * v + self.thrust * _DIRS
            speed = np.linalg.norm(v, axis=-1, keepdims=True)
            v = v * np.minimum(1.0, self.max_speed / np.maximum(speed, 1e-12))
            p = p + v
            out[t] = p
        return out

    def probabilities(self, obs: np.ndarray) -> np.ndarray:
        """(N, obs_dim) observations -> (N, 9) float32 action distributions, row by row."""
        read = self._readings(obs)
        rays, reach = self.rays, self.sensor_range
        food_seen, poison_seen = read["food"] < 1.0, read["poison"] < 1.0
        chasing = food_seen.any(axis=1)
        # Own velocity from the closing speeds of everything drifting in view (items drift at a
        # fifth of a pursuer's top speed, so their own motion is a small error).
        closing = np.where(food_seen, read["food_speed"], read["poison_speed"])
        velocity = self._fit_velocity(food_seen | poison_seen, closing)
        future = self._rollout(velocity)  # (T, N, 9, 2)

        # Chase: the nearest food's centre, led by its estimated drift.
        nearest = np.where(food_seen, read["food"], 2.0).min(axis=1)  # (N,)
        its_rays = food_seen & (read["food"] <= nearest[:, None] + self.food_margin)
        heading = its_rays.astype(np.float64) @ rays
        heading /= np.maximum(np.linalg.norm(heading, axis=1, keepdims=True), 1e-12)
        target = heading * (nearest * reach + self.evader_radius)[:, None]  # (N, 2)
        drift = velocity - self._fit_velocity(its_rays, read["food_speed"])  # the food's own
        steps = np.arange(1, self.horizon + 1)[:, None, None, None]
        ahead = target[None, :, None, :] + steps * drift[None, :, None, :]  # (T, N, 1, 2)
        chase_cost = np.linalg.norm(future - ahead, axis=-1).sum(axis=0) / self.max_speed
        # Leave the food to a pursuer seen nearer to it.
        others = read["pursuer"] < 1.0
        where = (read["pursuer"] * reach + self.pursuer_radius)[..., None] * rays  # (N, S, 2)
        gap = np.linalg.norm(where - target[:, None, :], axis=-1)  # (N, S)
        beaten = others & (gap < np.linalg.norm(target, axis=1)[:, None] - self.yield_margin)
        if self.yields:
            chasing &= ~beaten.any(axis=1)

        # Search: keep going, slide along and away from walls, spread away from other pursuers.
        walls = np.clip((self.wall_reach - read["barrier"]) / self.wall_reach, 0.0, None) @ rays
        crowd = np.clip((self.pursuer_reach - read["pursuer"]) / self.pursuer_reach, 0.0, None)
        push = velocity / self.max_speed - walls - crowd @ rays
        push += np.stack([walls[:, 1], -walls[:, 0]], axis=1)  # along the wall
        search_cost = -(push @ _DIRS.T)  # (N, 9)
        cost = np.where(chasing[:, None], chase_cost, search_cost)

        # Poison: keep the rollout clear of where the poisons are seen (taken as still).
        poison_at = (read["poison"] * reach + self.poison_radius)[..., None] * rays  # (N, S, 2)
        dist = np.linalg.norm(future[:, :, :, None, :] - poison_at[None, :, None], axis=-1)
        clearance = self.pursuer_radius + self.poison_radius + self.poison_margin
        overlap = np.clip(clearance - dist, 0.0, None) * poison_seen[None, :, None, :]
        cost = cost + 100.0 * overlap.sum(axis=(0, 3))  # (N, 9)

        probs = one_hot(np.argmin(cost, axis=1), 9)
        # Nothing in view to steer by: a random thrust heading.
        lost = ~chasing & ~poison_seen.any(axis=1) & (np.linalg.norm(push, axis=1) < 0.1)
        probs[lost] = np.append(np.full(8, 1.0 / 8), 0.0).astype(np.float32)
        return probs

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """The most likely action of each pursuer (`act` samples the distribution)."""
        return np.argmax(self.probabilities(obs), axis=1).astype(np.int64)

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        probs = self.probabilities(obs)
        cumulative = probs.cumsum(axis=1)  # (N, 9)
        draws = rng.random(len(probs))[:, None] * cumulative[:, -1:]
        actions = np.argmax(cumulative > draws, axis=1).astype(np.int64)  # never a 0-prob one
        return TeamAction(actions, probs, np.zeros(len(actions), dtype=np.int8))


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


def make_expert(env: Any) -> WaterworldSensorExpert:
    """The observation-only expert (reads the env's fixed settings once, never its state)."""
    return WaterworldSensorExpert(env.action_space(env.possible_agents[0]).n, env.unwrapped)


def make_privileged(env: Any) -> WaterworldExpert:
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
