"""Waterworld: a cooperative continuous-space pursuit environment as a PettingZoo ParallelEnv.

This is our own implementation of the idea behind the SISL "Waterworld" benchmark, written from
a description of its behaviour (the PettingZoo version was removed in PettingZoo 1.26). It keeps
the spirit of the original -- pursuers with range sensors chase drifting food while avoiding
poison -- but the code, dynamics constants and some details are ours, and the action space is
discrete.

World
    The arena is the unit square ``[0, 1] x [0, 1]`` with solid walls at the borders. It holds
    ``n_pursuers`` controllable pursuers (agent ids ``pursuer_0 .. pursuer_{n-1}``),
    ``n_evaders`` food items, ``n_poisons`` poison items and ``n_obstacles`` static circular
    obstacles placed at random on reset. Food and poison drift at a constant speed in a random
    direction and bounce off the walls and the obstacles. Pursuers pass through each other.

Actions (``Discrete(9)``)
    ======  ==============================================
    action  effect
    ======  ==============================================
    0       thrust towards   0 deg (+x)
    1       thrust towards  45 deg (+x, +y)
    2       thrust towards  90 deg (+y)
    3       thrust towards 135 deg (-x, +y)
    4       thrust towards 180 deg (-x)
    5       thrust towards 225 deg (-x, -y)
    6       thrust towards 270 deg (-y)
    7       thrust towards 315 deg (+x, -y)
    8       no thrust
    ======  ==============================================

    Thrust adds an acceleration of magnitude ``thrust`` in that direction. Each step a pursuer's
    velocity becomes ``damping * velocity + acceleration``, its speed is capped at
    ``pursuer_max_speed`` and its position advances by the velocity. Walls and obstacles stop the
    velocity component pointing into them. A pursuer missing from the ``actions`` dict is given
    action 8 (no thrust).

Observation (per pursuer, float32)
    ``n_sensors`` range sensors at evenly spaced world-frame angles (sensor ``k`` points at
    ``360 * k / n_sensors`` degrees, so sensor 0 points along +x) each read, for every object
    type independently, the distance from the pursuer's centre to the nearest surface hit along
    the ray, divided by ``sensor_range`` (1.0 means nothing within range). With
    ``speed_features=True`` the reading of each moving type is followed by the closing speed of
    the object seen (relative velocity projected on the ray, positive when approaching),
    divided by ``2 * max(pursuer_max_speed, evader_speed, poison_speed)`` and clipped to
    ``[-1, 1]`` (0 when nothing is seen). Per sensor the layout is::

        speed_features=True  (8): obstacle, barrier, food, food_speed,
                                  poison, poison_speed, pursuer, pursuer_speed
        speed_features=False (5): obstacle, barrier, food, poison, pursuer

    The ``n_sensors * 8`` (or ``* 5``) sensor values are followed by two flags: 1.0 if the
    pursuer touched food this step, 1.0 if it touched poison this step. With the default 30
    sensors the observation has 242 (or 152) entries.

Rewards
    A pursuer touches an item when their circles overlap. A food item is caught when at least
    ``n_coop`` pursuers touch it in the same step: every pursuer touching it gets
    ``food_reward`` and the food respawns at a random free position. Touching food that is not
    caught gives ``encounter_reward``. Touching poison gives ``poison_reward`` and the poison
    respawns. Every step a pursuer also gets ``thrust_penalty * |acceleration|`` (0 for the
    no-thrust action). These local rewards are blended with the team mean:
    ``r_i = local_ratio * r_i_local + (1 - local_ratio) * mean_j(r_j_local)``.

Episodes
    Pursuers never terminate. After ``max_cycles`` steps every pursuer is truncated and
    ``agents`` becomes empty.

The step is vectorised with numpy: all (pursuer, object, sensor) ray-circle intersections are
computed at once, so there is no Python loop over agents or sensors in the hot path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

__all__ = ["WaterworldEnv", "NO_THRUST_ACTION", "N_ACTIONS"]

#: Number of discrete actions: 8 thrust directions plus "no thrust".
N_ACTIONS = 9
#: The action that applies no thrust.
NO_THRUST_ACTION = 8

# Unit thrust vectors for actions 0..8; row 8 is the zero vector so that "no thrust" needs no
# special case in the vectorised step.
_ANGLES = np.arange(8) * (np.pi / 4.0)
_ACTION_DIRS = np.concatenate(
    [np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1), np.zeros((1, 2))], axis=0
)  # (9, 2)
_ACTION_DIRS.setflags(write=False)

# Gap kept between obstacles and walls so that a pushed-out pursuer or item always has room.
_OBSTACLE_WALL_MARGIN = 0.05
# Candidates drawn per item per round when sampling free positions.
_SAMPLE_BATCH = 32
_MAX_SAMPLE_ROUNDS = 1000

_RENDER_SIZE = 256


def _is_int(value: Any) -> bool:
    """Return True for Python/numpy integers, excluding bools."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(name: str, value: Any, low: int) -> None:
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    """Raise ValueError unless ``value`` is a finite real number within the given range."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    ok = ok and bool(np.isfinite(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a finite number in {bracket}{lo}, {hi}], got {value!r}")


class WaterworldEnv(ParallelEnv):
    """Cooperative pursuit of drifting food among poison, with range sensors and discrete thrust.

    See the module docstring for the action table, observation layout and reward rules.
    """

    metadata = {"name": "waterworld_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        n_pursuers: int = 2,
        n_evaders: int = 5,
        n_poisons: int = 10,
        n_obstacles: int = 1,
        n_coop: int = 1,
        n_sensors: int = 30,
        sensor_range: float = 0.2,
        speed_features: bool = True,
        food_reward: float = 10.0,
        poison_reward: float = -1.0,
        encounter_reward: float = 0.01,
        thrust_penalty: float = -0.5,
        local_ratio: float = 1.0,
        max_cycles: int = 500,
        render_mode: str | None = None,
        pursuer_radius: float = 0.015,
        evader_radius: float = 0.03,
        poison_radius: float = 0.015,
        obstacle_radius: float = 0.1,
        thrust: float = 0.01,
        damping: float = 0.8,
        pursuer_max_speed: float = 0.05,
        evader_speed: float = 0.01,
        poison_speed: float = 0.01,
    ) -> None:
        """Create the environment; call :meth:`reset` before stepping.

        Args:
            n_pursuers: Number of controllable pursuers (>= 1).
            n_evaders: Number of food items (>= 0).
            n_poisons: Number of poison items (>= 0).
            n_obstacles: Number of static circular obstacles (>= 0).
            n_coop: Pursuers that must touch a food item in the same step to catch it
                (1 <= n_coop <= n_pursuers).
            n_sensors: Range sensors per pursuer (>= 1), evenly spaced in angle.
            sensor_range: Sensor range in arena units (> 0, <= sqrt(2)).
            speed_features: Include the closing-speed channels in observations.
            food_reward: Reward to each pursuer touching a caught food item.
            poison_reward: Reward for touching a poison item.
            encounter_reward: Reward for touching food that is not caught this step.
            thrust_penalty: Multiplied by the acceleration magnitude every step.
            local_ratio: Weight of the agent's own reward vs the team mean, in [0, 1].
            max_cycles: Steps before all pursuers are truncated (>= 1).
            render_mode: None or "rgb_array".
            pursuer_radius: Pursuer radius (0 < r <= 0.1).
            evader_radius: Food radius (0 < r <= 0.1).
            poison_radius: Poison radius (0 < r <= 0.1).
            obstacle_radius: Obstacle radius (0 < r <= 0.3).
            thrust: Acceleration magnitude of a thrust action (>= 0).
            damping: Fraction of a pursuer's velocity kept each step, in [0, 1].
            pursuer_max_speed: Pursuer speed cap per step (> 0, <= 0.1).
            evader_speed: Food drift speed per step (0 <= v <= 0.1).
            poison_speed: Poison drift speed per step (0 <= v <= 0.1).

        Raises:
            ValueError: If any argument is outside its valid range.
        """
        _check_int("n_pursuers", n_pursuers, 1)
        _check_int("n_evaders", n_evaders, 0)
        _check_int("n_poisons", n_poisons, 0)
        _check_int("n_obstacles", n_obstacles, 0)
        _check_int("n_coop", n_coop, 1)
        if n_coop > n_pursuers:
            raise ValueError(
                f"n_coop must be between 1 and n_pursuers={n_pursuers}, got {n_coop!r}"
            )
        _check_int("n_sensors", n_sensors, 1)
        _check_float("sensor_range", sensor_range, 0.0, float(np.sqrt(2.0)), low_open=True)
        if not isinstance(speed_features, (bool, np.bool_)):
            raise ValueError(f"speed_features must be a bool, got {speed_features!r}")
        _check_float("food_reward", food_reward)
        _check_float("poison_reward", poison_reward)
        _check_float("encounter_reward", encounter_reward)
        _check_float("thrust_penalty", thrust_penalty)
        _check_float("local_ratio", local_ratio, 0.0, 1.0)
        _check_int("max_cycles", max_cycles, 1)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        _check_float("pursuer_radius", pursuer_radius, 0.0, 0.1, low_open=True)
        _check_float("evader_radius", evader_radius, 0.0, 0.1, low_open=True)
        _check_float("poison_radius", poison_radius, 0.0, 0.1, low_open=True)
        _check_float("obstacle_radius", obstacle_radius, 0.0, 0.3, low_open=True)
        _check_float("thrust", thrust, 0.0)
        _check_float("damping", damping, 0.0, 1.0)
        _check_float("pursuer_max_speed", pursuer_max_speed, 0.0, 0.1, low_open=True)
        _check_float("evader_speed", evader_speed, 0.0, 0.1)
        _check_float("poison_speed", poison_speed, 0.0, 0.1)

        self.n_pursuers = int(n_pursuers)
        self.n_evaders = int(n_evaders)
        self.n_poisons = int(n_poisons)
        self.n_obstacles = int(n_obstacles)
        self.n_coop = int(n_coop)
        self.n_sensors = int(n_sensors)
        self.sensor_range = float(sensor_range)
        self.speed_features = bool(speed_features)
        self.food_reward = float(food_reward)
        self.poison_reward = float(poison_reward)
        self.encounter_reward = float(encounter_reward)
        self.thrust_penalty = float(thrust_penalty)
        self.local_ratio = float(local_ratio)
        # Public and mutable: pettingzoo's parallel_api_test overrides it after construction.
        self.max_cycles = int(max_cycles)
        self.render_mode = render_mode
        self.pursuer_radius = float(pursuer_radius)
        self.evader_radius = float(evader_radius)
        self.poison_radius = float(poison_radius)
        self.obstacle_radius = float(obstacle_radius)
        self.thrust = float(thrust)
        self.damping = float(damping)
        self.pursuer_max_speed = float(pursuer_max_speed)
        self.evader_speed = float(evader_speed)
        self.poison_speed = float(poison_speed)
        self._speed_scale = 2.0 * max(self.pursuer_max_speed, self.evader_speed, self.poison_speed)

        self.possible_agents = [f"pursuer_{i}" for i in range(self.n_pursuers)]
        self.agents: list[str] = []

        # Sensor geometry is fixed, so precompute directions and the per-axis wall terms.
        angles = np.arange(self.n_sensors) * (2.0 * np.pi / self.n_sensors)
        self._sensor_dirs = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (S, 2)
        self._sensor_dirs_t = np.ascontiguousarray(self._sensor_dirs.T)  # (2, S)
        # A ray along axis a reaches the wall at coordinate 1 (if d_a > 0) or 0 (if d_a < 0) at
        # t = (wall_a - p_a) / d_a; near-parallel rays never reach that pair of walls.
        axis_parallel = np.abs(self._sensor_dirs) < 1e-9  # (S, 2)
        self._wall_coord = (self._sensor_dirs > 0).astype(np.float64)  # (S, 2)
        self._inv_dir = np.where(
            axis_parallel, 0.0, 1.0 / np.where(axis_parallel, 1.0, self._sensor_dirs)
        )
        self._axis_parallel = axis_parallel

        self._features_per_sensor = 8 if self.speed_features else 5
        self._obs_dim = self.n_sensors * self._features_per_sensor + 2
        low = np.zeros((self.n_sensors, self._features_per_sensor), dtype=np.float32)
        if self.speed_features:
            low[:, [3, 5, 7]] = -1.0  # closing speeds can be negative (object receding)
        low = np.concatenate([low.reshape(-1), np.zeros(2, dtype=np.float32)])
        high = np.ones(self._obs_dim, dtype=np.float32)
        self._observation_spaces = {
            agent: spaces.Box(low=low, high=high, shape=(self._obs_dim,), dtype=np.float32)
            for agent in self.possible_agents
        }
        self._action_spaces = {agent: spaces.Discrete(N_ACTIONS) for agent in self.possible_agents}

        self.state_space = self._build_state_space()

        # Radii of every sensed circle in the fixed order obstacles, food, poison, pursuers.
        self._slices = self._type_slices()
        self._circle_radii = np.concatenate(
            [
                np.full(self.n_obstacles, self.obstacle_radius),
                np.full(self.n_evaders, self.evader_radius),
                np.full(self.n_poisons, self.poison_radius),
                np.full(self.n_pursuers, self.pursuer_radius),
            ]
        )  # (M,)
        self._circle_radii_sq = self._circle_radii**2
        # Column of each pursuer's own circle, masked so a pursuer does not see itself.
        self._self_cols = self._slices["pursuer"].start + np.arange(self.n_pursuers)

        self._rng: np.random.Generator | None = None
        self._num_cycles = 0
        self._init_arrays()

    # ------------------------------------------------------------------ spaces

    def observation_space(self, agent: str) -> spaces.Box:
        """Return the (cached) observation space of ``agent``."""
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        """Return the (cached) action space of ``agent``."""
        return self._action_spaces[agent]

    def _build_state_space(self) -> spaces.Box:
        """Box for :meth:`state`: positions in [0, 1], velocities within each type's speed cap."""
        parts_low: list[np.ndarray] = []
        parts_high: list[np.ndarray] = []
        for count, speed in (
            (self.n_pursuers, self.pursuer_max_speed),
            (self.n_evaders, self.evader_speed),
            (self.n_poisons, self.poison_speed),
        ):
            parts_low += [np.zeros(2 * count), np.full(2 * count, -speed)]
            parts_high += [np.ones(2 * count), np.full(2 * count, speed)]
        parts_low.append(np.zeros(2 * self.n_obstacles))
        parts_high.append(np.ones(2 * self.n_obstacles))
        low = np.concatenate(parts_low).astype(np.float32)
        high = np.concatenate(parts_high).astype(np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def _type_slices(self) -> dict[str, slice]:
        bounds = np.cumsum([0, self.n_obstacles, self.n_evaders, self.n_poisons, self.n_pursuers])
        names = ("obstacle", "food", "poison", "pursuer")
        return {name: slice(int(bounds[i]), int(bounds[i + 1])) for i, name in enumerate(names)}

    def _init_arrays(self) -> None:
        self._pursuer_pos = np.zeros((self.n_pursuers, 2))
        self._pursuer_vel = np.zeros((self.n_pursuers, 2))
        self._food_pos = np.zeros((self.n_evaders, 2))
        self._food_vel = np.zeros((self.n_evaders, 2))
        self._poison_pos = np.zeros((self.n_poisons, 2))
        self._poison_vel = np.zeros((self.n_poisons, 2))
        self._obstacle_pos = np.zeros((self.n_obstacles, 2))
        self._food_touched = np.zeros(self.n_pursuers, dtype=bool)
        self._poison_touched = np.zeros(self.n_pursuers, dtype=bool)

    # ------------------------------------------------------------------ episode API

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start a new episode.

        Args:
            seed: Re-creates the random generator when given; None continues the current one
                (a fresh unseeded generator on the very first reset).
            options: Unused; accepted for API compatibility.

        Returns:
            ``(observations, infos)``, dicts keyed by agent id.
        """
        if seed is not None or self._rng is None:
            self._rng = np.random.default_rng(seed)
        rng = self._rng

        self._init_arrays()
        lo = self.obstacle_radius + _OBSTACLE_WALL_MARGIN
        self._obstacle_pos = rng.uniform(lo, 1.0 - lo, size=(self.n_obstacles, 2))
        self._pursuer_pos = self._sample_free(self.n_pursuers, self.pursuer_radius, False)
        self._food_pos = self._sample_free(self.n_evaders, self.evader_radius, True)
        self._food_vel = self._random_velocities(self.n_evaders, self.evader_speed)
        self._poison_pos = self._sample_free(self.n_poisons, self.poison_radius, True)
        self._poison_vel = self._random_velocities(self.n_poisons, self.poison_speed)

        self.agents = list(self.possible_agents)
        self._num_cycles = 0
        #: Food items caught and pursuer-poison contacts in this episode.
        self.food_caught = 0
        self.poison_touched = 0
        obs = self._observe()
        observations = {agent: obs[i] for i, agent in enumerate(self.agents)}
        infos: dict[str, dict[str, Any]] = {agent: {} for agent in self.agents}
        return observations, infos

    def step(
        self, actions: dict[str, int]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Advance the world by one step.

        Args:
            actions: Action in ``0..8`` per live agent; missing agents get no thrust (8).

        Returns:
            ``(observations, rewards, terminations, truncations, infos)``, dicts keyed by agent.

        Raises:
            RuntimeError: If called before :meth:`reset` or after the episode has ended.
            ValueError: If an action is outside ``0..8``.
        """
        if not self.agents:
            raise RuntimeError("step() called with no live agents; call reset() first")
        act = np.fromiter(
            (actions.get(agent, NO_THRUST_ACTION) for agent in self.agents),
            dtype=np.int64,
            count=self.n_pursuers,
        )  # (N,)
        if act.min() < 0 or act.max() >= N_ACTIONS:
            bad = act[(act < 0) | (act >= N_ACTIONS)][0]
            raise ValueError(f"actions must be integers in [0, {N_ACTIONS - 1}], got {bad}")

        accel = _ACTION_DIRS[act] * self.thrust  # (N, 2)
        self._move_pursuers(accel)
        self._food_pos, self._food_vel = self._move_items(
            self._food_pos, self._food_vel, self.evader_radius, self.evader_speed
        )
        self._poison_pos, self._poison_vel = self._move_items(
            self._poison_pos, self._poison_vel, self.poison_radius, self.poison_speed
        )
        local = self._collide_and_reward()
        # |accel| is `thrust` for actions 0..7 and 0 for action 8.
        local += self.thrust_penalty * np.where(act == NO_THRUST_ACTION, 0.0, self.thrust)
        rewards_arr = self.local_ratio * local + (1.0 - self.local_ratio) * local.mean()

        self._num_cycles += 1
        obs = self._observe()
        truncated = self._num_cycles >= self.max_cycles

        agents = self.agents
        observations = {agent: obs[i] for i, agent in enumerate(agents)}
        rewards = dict(zip(agents, rewards_arr.tolist(), strict=True))
        terminations = dict.fromkeys(agents, False)
        truncations = dict.fromkeys(agents, truncated)
        infos: dict[str, dict[str, Any]] = {agent: {} for agent in agents}
        if truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """Global state: pursuer, food and poison positions and velocities, obstacle positions.

        Returns:
            float32 vector of length ``4 * (n_pursuers + n_evaders + n_poisons) +
            2 * n_obstacles``, laid out as ``[pursuer_pos, pursuer_vel, food_pos, food_vel,
            poison_pos, poison_vel, obstacle_pos]`` (each flattened row-major), inside
            ``state_space``.
        """
        parts = [
            self._pursuer_pos,
            self._pursuer_vel,
            self._food_pos,
            self._food_vel,
            self._poison_pos,
            self._poison_vel,
            self._obstacle_pos,
        ]
        flat = np.concatenate([p.reshape(-1) for p in parts]).astype(np.float32)
        # Float32 rounding must not push a value past the float32 bounds.
        return np.clip(flat, self.state_space.low, self.state_space.high)

    def render(self) -> np.ndarray | None:
        """Draw the arena.

        Returns:
            A ``(256, 256, 3)`` uint8 image for ``render_mode="rgb_array"``, else None.
        """
        if self.render_mode != "rgb_array":
            return None
        size = _RENDER_SIZE
        img = np.full((size, size, 3), 255, dtype=np.uint8)
        # Pixel centres in world coordinates; image row 0 is the top (y = 1).
        coords = (np.arange(size) + 0.5) / size
        xs = coords[None, :]  # (1, W)
        ys = coords[::-1][:, None]  # (H, 1)
        layers = (
            (self._obstacle_pos, self.obstacle_radius, (128, 128, 128)),
            (self._food_pos, self.evader_radius, (40, 170, 60)),
            (self._poison_pos, self.poison_radius, (210, 50, 50)),
            (self._pursuer_pos, self.pursuer_radius, (40, 80, 220)),
        )
        min_r = 1.5 / size  # keep tiny objects visible
        for pos, radius, colour in layers:
            if len(pos) == 0:
                continue
            r = max(radius, min_r)
            dx = xs[None] - pos[:, 0, None, None]  # (K, 1, W)
            dy = ys[None] - pos[:, 1, None, None]  # (K, H, 1)
            mask = ((dx * dx + dy * dy) <= r * r).any(axis=0)  # (H, W)
            img[mask] = colour
        return img

    def close(self) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------------ dynamics

    def _random_velocities(self, count: int, speed: float) -> np.ndarray:
        assert self._rng is not None
        theta = self._rng.uniform(0.0, 2.0 * np.pi, size=count)
        return np.stack([np.cos(theta), np.sin(theta)], axis=1) * speed  # (count, 2)

    def _sample_free(self, count: int, radius: float, avoid_pursuers: bool) -> np.ndarray:
        """Draw ``count`` positions for circles of ``radius`` clear of obstacles (and pursuers).

        Candidates are drawn in batches and the first free one per item is kept, so the number of
        generator draws -- and hence determinism -- does not depend on Python-level branching
        per item.
        """
        assert self._rng is not None
        out = np.empty((count, 2))
        todo = np.arange(count)
        for _ in range(_MAX_SAMPLE_ROUNDS):
            if todo.size == 0:
                return out
            cand = self._rng.uniform(radius, 1.0 - radius, size=(todo.size, _SAMPLE_BATCH, 2))
            free = np.ones(cand.shape[:2], dtype=bool)  # (K, B)
            if self.n_obstacles:
                d = np.linalg.norm(cand[:, :, None, :] - self._obstacle_pos, axis=-1)  # (K, B, O)
                free &= (d > self.obstacle_radius + radius).all(axis=-1)
            if avoid_pursuers:
                d = np.linalg.norm(cand[:, :, None, :] - self._pursuer_pos, axis=-1)  # (K, B, N)
                free &= (d > self.pursuer_radius + radius).all(axis=-1)
            found = free.any(axis=1)
            first = free.argmax(axis=1)
            out[todo[found]] = cand[found, first[found]]
            todo = todo[~found]
        raise RuntimeError("could not find free positions; the arena is too crowded")

    def _push_out_of_obstacles(
        self, pos: np.ndarray, radius: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Move circles overlapping their nearest obstacle onto its surface.

        Returns:
            ``(pos, normal, hit)``: corrected positions, outward unit normals ``(K, 2)`` and a
            bool mask of circles that were pushed.
        """
        if self.n_obstacles == 0 or len(pos) == 0:
            return pos, np.zeros_like(pos), np.zeros(len(pos), dtype=bool)
        diff = pos[:, None, :] - self._obstacle_pos[None, :, :]  # (K, O, 2)
        dist = np.linalg.norm(diff, axis=-1)  # (K, O)
        nearest = dist.argmin(axis=1)  # (K,)
        rows = np.arange(len(pos))
        d = dist[rows, nearest]
        hit = d < self.obstacle_radius + radius
        # A circle exactly at an obstacle centre has no direction; push it along +x.
        safe_d = np.where(d > 1e-12, d, 1.0)
        normal = np.where((d > 1e-12)[:, None], diff[rows, nearest] / safe_d[:, None], [1.0, 0.0])
        surface = self._obstacle_pos[nearest] + normal * (self.obstacle_radius + radius)
        pos = np.where(hit[:, None], surface, pos)
        return pos, normal, hit

    def _move_pursuers(self, accel: np.ndarray) -> None:
        vel = self.damping * self._pursuer_vel + accel
        speed = np.linalg.norm(vel, axis=1, keepdims=True)  # (N, 1)
        scale = np.minimum(1.0, self.pursuer_max_speed / np.maximum(speed, 1e-12))
        vel = np.clip(vel * scale, -self.pursuer_max_speed, self.pursuer_max_speed)
        pos = self._pursuer_pos + vel

        pos, normal, hit = self._push_out_of_obstacles(pos, self.pursuer_radius)
        # Stop the velocity component pointing into the obstacle (a pursuer slides along it).
        inward = np.minimum((vel * normal).sum(axis=1), 0.0)  # (N,)
        vel = vel - np.where(hit, inward, 0.0)[:, None] * normal

        r = self.pursuer_radius
        low_hit = pos < r
        high_hit = pos > 1.0 - r
        pos = np.clip(pos, r, 1.0 - r)
        # Stop the velocity component pointing into a wall.
        vel = np.where(low_hit, np.maximum(vel, 0.0), vel)
        vel = np.where(high_hit, np.minimum(vel, 0.0), vel)
        self._pursuer_pos = pos
        self._pursuer_vel = vel

    def _move_items(
        self, pos: np.ndarray, vel: np.ndarray, radius: float, speed: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Drift food or poison one step, bouncing elastically off walls and obstacles."""
        if len(pos) == 0:
            return pos, vel
        pos = pos + vel
        pos, normal, hit = self._push_out_of_obstacles(pos, radius)
        vn = (vel * normal).sum(axis=1)  # (K,)
        reflect = hit & (vn < 0.0)
        vel = vel - np.where(reflect, 2.0 * vn, 0.0)[:, None] * normal
        # Reflect about the walls: mirror the overshoot and point the velocity back inside.
        low, high = radius, 1.0 - radius
        below = pos < low
        above = pos > high
        pos = np.where(below, 2.0 * low - pos, pos)
        pos = np.where(above, 2.0 * high - pos, pos)
        pos = np.clip(pos, low, high)
        vel = np.where(below, np.abs(vel), vel)
        vel = np.where(above, -np.abs(vel), vel)
        # Reflections preserve speed only up to rounding; clip so state() stays in its bounds.
        vel = np.clip(vel, -speed, speed)
        return pos, vel

    def _collide_and_reward(self) -> np.ndarray:
        """Resolve pursuer contacts with food and poison, respawn consumed items.

        Returns:
            Local (pre-blending) reward per pursuer without the thrust penalty, shape ``(N,)``.
        """
        local = np.zeros(self.n_pursuers)
        self._food_touched = np.zeros(self.n_pursuers, dtype=bool)
        self._poison_touched = np.zeros(self.n_pursuers, dtype=bool)
        if self.n_evaders:
            d = np.linalg.norm(
                self._pursuer_pos[:, None, :] - self._food_pos[None, :, :], axis=-1
            )  # (N, E)
            touch = d < self.pursuer_radius + self.evader_radius
            caught = touch.sum(axis=0) >= self.n_coop  # (E,)
            self.food_caught += int(caught.sum())
            local += self.food_reward * (touch & caught).sum(axis=1)
            local += self.encounter_reward * (touch & ~caught).sum(axis=1)
            self._food_touched = touch.any(axis=1)
            if caught.any():
                idx = np.flatnonzero(caught)
                self._food_pos[idx] = self._sample_free(idx.size, self.evader_radius, True)
                self._food_vel[idx] = self._random_velocities(idx.size, self.evader_speed)
        if self.n_poisons:
            d = np.linalg.norm(
                self._pursuer_pos[:, None, :] - self._poison_pos[None, :, :], axis=-1
            )  # (N, P)
            touch = d < self.pursuer_radius + self.poison_radius
            local += self.poison_reward * touch.sum(axis=1)
            self.poison_touched += int(touch.sum())
            self._poison_touched = touch.any(axis=1)
            hit = touch.any(axis=0)  # (P,)
            if hit.any():
                idx = np.flatnonzero(hit)
                self._poison_pos[idx] = self._sample_free(idx.size, self.poison_radius, True)
                self._poison_vel[idx] = self._random_velocities(idx.size, self.poison_speed)
        return local

    # ------------------------------------------------------------------ sensing

    def _observe(self) -> np.ndarray:
        """Compute every pursuer's observation at once.

        Returns:
            float32 array ``(N, obs_dim)``.
        """
        n, s = self.n_pursuers, self.n_sensors
        rng_ = self.sensor_range
        ppos, pvel = self._pursuer_pos, self._pursuer_vel
        centres = np.concatenate(
            [self._obstacle_pos, self._food_pos, self._poison_pos, ppos]
        )  # (M, 2)
        vels = np.concatenate(
            [np.zeros_like(self._obstacle_pos), self._food_vel, self._poison_vel, pvel]
        )  # (M, 2)

        # Ray p + t*d meets circle (c, R) where t^2 - 2 t (m.d) + |m|^2 - R^2 = 0, m = c - p.
        rel = centres[None, :, :] - ppos[:, None, :]  # (N, M, 2)
        proj = rel @ self._sensor_dirs_t  # (N, M, S): m.d
        c_term = (rel * rel).sum(axis=-1) - self._circle_radii_sq  # (N, M): |m|^2 - R^2
        disc = proj * proj - c_term[:, :, None]  # (N, M, S)
        t = proj - np.sqrt(np.maximum(disc, 0.0))  # nearer root
        inside = c_term < 0.0  # the pursuer's centre is within the circle: distance 0
        t = np.where(inside[:, :, None], 0.0, t)
        valid = (disc >= 0.0) & (t >= 0.0) & (t <= rng_)
        valid[np.arange(n), self._self_cols, :] = False  # a pursuer does not sense itself
        dist = np.where(valid, t, np.inf)  # (N, M, S)

        if self.speed_features:
            # Closing speed of object j along ray k: -(v_j - v_i).d_k, positive when approaching.
            closing = -((vels[None, :, :] - pvel[:, None, :]) @ self._sensor_dirs_t)  # (N, M, S)

        feats: list[np.ndarray] = []
        for name in ("obstacle", "food", "poison", "pursuer"):
            sl = self._slices[name]
            if sl.stop == sl.start:
                d_norm = np.ones((n, s))
                spd = np.zeros((n, s))
            else:
                block = dist[:, sl, :]  # (N, K, S)
                nearest = block.argmin(axis=1)[:, None, :]  # (N, 1, S)
                d_min = np.take_along_axis(block, nearest, axis=1)[:, 0, :]  # (N, S)
                seen = np.isfinite(d_min)
                d_norm = np.where(seen, np.minimum(d_min / rng_, 1.0), 1.0)
                if self.speed_features and name != "obstacle":
                    c = np.take_along_axis(closing[:, sl, :], nearest, axis=1)[:, 0, :]
                    spd = np.where(seen, np.clip(c / self._speed_scale, -1.0, 1.0), 0.0)
            feats.append(d_norm)
            if name == "obstacle":
                feats.append(self._barrier_distances(ppos))
            elif self.speed_features:
                feats.append(spd)

        sensors = np.stack(feats, axis=-1).reshape(n, s * self._features_per_sensor)  # (N, S*F)
        flags = np.stack([self._food_touched, self._poison_touched], axis=1)  # (N, 2)
        return np.concatenate([sensors, flags], axis=1).astype(np.float32)

    def _barrier_distances(self, ppos: np.ndarray) -> np.ndarray:
        """Normalised distance along every sensor ray to the arena wall, shape ``(N, S)``."""
        t_axis = (self._wall_coord[None, :, :] - ppos[:, None, :]) * self._inv_dir  # (N, S, 2)
        t_axis = np.where(self._axis_parallel, np.inf, t_axis)
        t = t_axis.min(axis=-1)  # (N, S)
        return np.minimum(t / self.sensor_range, 1.0)
