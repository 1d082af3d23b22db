"""Pursuit, vectorised: PettingZoo's `sisl/pursuit-v5` played over a batch of episodes with numpy.

Our own code, written from the rules of PettingZoo 1.27's pursuit (read in its source, which stays
the reference the exactness test compares against, tests/datagen/test_pursuit_vectorised.py). For
the same seed and actions it reproduces PettingZoo's parallel env bit for bit: observations,
rewards, terminations, truncations and `state()`.

Two ways in:

- `VectorPursuit(n_envs, **pettingzoo_kwargs)`: B episodes at once. `reset(seeds)` returns
  observations (B, N, obs_range, obs_range, 3); `step(actions (B, N))` returns
  `(obs, rewards (B, N), terminated (B, N), truncated (B, N))`; `done` (B,) says which episodes
  have ended. An episode that ended stays ended until the next `reset`: its actions are ignored,
  its rewards are 0, its observation and state stay those of its last step, its `terminated` /
  `truncated` keep their final values, and it draws nothing from its generator.
- `PursuitEnv(**pettingzoo_kwargs)`: one episode as a PettingZoo `ParallelEnv`, interchangeable
  with `pettingzoo.make("parallel", "sisl/pursuit-v5", **pettingzoo_kwargs)`: the same keyword
  arguments, agent names, spaces, `state()` and `state_space`.

The rules (PettingZoo's, coordinates (x, y) on an x_size by y_size grid)
-----------------------------------------------------------------------
- Map: a rectangular building of cells with 0.3 < x / x_size < 0.7 and 0.2 < y / y_size < 0.8.
  Agents never enter it; a move into it or off the grid means staying.
- Actions: 0 x-1, 1 x+1, 2 y+1, 3 y-1, 4 stay.
- Reset: two uniform draws place a spawn window of `constraint_window` times the grid's size;
  then the pursuers, then the evaders, are placed one by one by drawing x then y until the cell
  is open and neither holds nor touches (up, down, left, right) an earlier agent of the same kind.
- A cycle (one parallel step): pursuers move one after another in agent order. After each move
  every pursuer's tag reward is recomputed: `tag_reward` times the evaders on its four
  neighbouring cells, each coordinate clipped into the grid (so on the map's edge its own cell
  counts), divided by n_pursuers. After the last move, evaders are caught: with `surround`, when
  every in-grid neighbour that is not building holds a pursuer (PettingZoo's count, including
  its quirk of checking the building only for neighbours with 0 < x and 0 < y), and every
  pursuer next to a caught evader gets `catch_reward` (once, however many it caught); without
  `surround`, when at least `n_catch` pursuers stand on its cell, which all get `catch_reward`.
  Caught evaders leave, every remaining evader takes a uniform random action (one `integers(5)`
  draw each, in evader order, from the episode's generator) unless `freeze_evaders`, and
  `urgency_reward` goes to every pursuer.
- Reward bookkeeping: PettingZoo is an AEC env turned parallel. After each agent's move the AEC
  env sets every agent's reward to the base env's latest reward vector L: the tag rewards above,
  plus, at the last move only, `catch_reward` and then `urgency_reward`, and then mixed
  `local_ratio * L + (1 - local_ratio) * mean(L)` with `local_ratio = 1 - shared_reward`. The
  parallel wrapper adds these N vectors in move order, so an agent's reward for a cycle is the
  sum over the N moves of the whole team's reward vector after each move (not just its own move:
  AEC `_cumulative_rewards` plays no part in the parallel API). We add in the same order and
  take each mean over one contiguous row, as numpy does for PettingZoo, so every float64 matches.
- End: terminated when no evader is left; truncated (and then not terminated) once `max_cycles`
  cycles were played.
- Observations: the (obs_range, obs_range) window of cells around each pursuer, layout
  (y, x, channel): channel 0 walls (building cells and cells off the grid, 1.0), 1 pursuers and
  2 evaders (counts), float32. An even obs_range sees obs_range - 1 cells each way round; its
  last row and column always read as wall (as PettingZoo's do). `state()` is the whole grid in
  the same layout, (y_size, x_size, 3).

Randomness: each episode has its own `numpy.random.Generator`, built by gymnasium's
`seeding.np_random(seed)` exactly as PettingZoo builds its own at `reset(seed=...)`; a reset
without a seed continues the episode's stream, as PettingZoo's does. All draws (window,
positions, evader moves) are made in PettingZoo's order, so a seed gives PettingZoo's episode.

Batch layout: cells are numbered c = x * y_size + y. Pursuers are (B, N) cells, evaders (B, E)
cells with an (B, E) `alive` mask (caught evaders keep their last cell); occupancy grids are
(B, C + 1) counts with a last, always-empty column standing for "off the grid". Per cycle the
N reward vectors of the N moves are one (N, B, N) array: pursuer i has moved by move j when
i <= j, and each pursuer's tag count depends only on its own cell while the evaders stand still.

Deviations from PettingZoo: custom `evader_controller`s are not supported (PettingZoo never
calls `pursuer_controller`, and neither do we); `render_mode="rgb_array"` draws our own simple
picture (grid, observation windows, agents; no counts), not PettingZoo's pygame one, and there
is no "human" mode; a spawn window with no free cell left raises ValueError where PettingZoo
loops forever.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

__all__ = ["N_ACTIONS", "PursuitEnv", "VectorPursuit", "building_map"]

#: (dx, dy) of each action: 0 x-1, 1 x+1, 2 y+1, 3 y-1, 4 stay.
MOVES = np.array([[-1, 0], [1, 0], [0, 1], [0, -1], [0, 0]], dtype=np.int64)
N_ACTIONS = len(MOVES)
STAY = 4
#: The neighbours the tag reward and the catch rule look at, in PettingZoo's order.
NEIGHBOURS = MOVES[:4]
#: Side of one grid cell in `PursuitEnv.render` images, in pixels.
PIXELS_PER_CELL = 30


def building_map(x_size: int, y_size: int) -> np.ndarray:
    """(x_size, y_size) int32 map, -1 on the building in the middle, 0 elsewhere."""
    fx = np.arange(x_size) / x_size
    fy = np.arange(y_size) / y_size
    inside_x = (fx > 0.3) & (fx < 1.0 - 0.3)
    inside_y = (fy > 0.2) & (fy < 1.0 - 0.2)
    return np.where(inside_x[:, None] & inside_y[None, :], -1, 0).astype(np.int32)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return value


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class VectorPursuit:
    """B episodes of pursuit played at once; see the module docstring.

    Args:
        n_envs: number of episodes B played side by side.
        x_size, y_size, max_cycles, shared_reward, n_evaders, n_pursuers, obs_range, n_catch,
        freeze_evaders, tag_reward, catch_reward, urgency_reward, surround, constraint_window:
            PettingZoo's pursuit keyword arguments, with its defaults and meanings.

    Raises:
        ValueError: an argument out of range (PettingZoo fails on these too, or hangs).
    """

    def __init__(
        self,
        n_envs: int,
        *,
        x_size: int = 16,
        y_size: int = 16,
        max_cycles: int = 500,
        shared_reward: bool = True,
        n_evaders: int = 30,
        n_pursuers: int = 8,
        obs_range: int = 7,
        n_catch: int = 2,
        freeze_evaders: bool = False,
        tag_reward: float = 0.01,
        catch_reward: float = 5.0,
        urgency_reward: float = -0.1,
        surround: bool = True,
        constraint_window: float = 1.0,
    ) -> None:
        self.n_envs = _check_int("n_envs", n_envs, 1)
        self.x_size = _check_int("x_size", x_size, 1)
        self.y_size = _check_int("y_size", y_size, 1)
        #: Public and mutable, like PettingZoo's attribute of the same name.
        self.max_cycles = _check_int("max_cycles", max_cycles, 1)
        self.shared_reward = _check_flag("shared_reward", shared_reward)
        self.n_evaders = _check_int("n_evaders", n_evaders, 1)
        self.n_pursuers = _check_int("n_pursuers", n_pursuers, 1)
        self.obs_range = _check_int("obs_range", obs_range, 1)
        self.n_catch = _check_int("n_catch", n_catch, 0)
        self.freeze_evaders = _check_flag("freeze_evaders", freeze_evaders)
        self.tag_reward = _check_number("tag_reward", tag_reward)
        self.catch_reward = _check_number("catch_reward", catch_reward)
        self.urgency_reward = _check_number("urgency_reward", urgency_reward)
        self.surround = _check_flag("surround", surround)
        self.constraint_window = _check_number("constraint_window", constraint_window)
        if not 0.0 <= constraint_window <= 1.0:
            raise ValueError(f"constraint_window must be in [0, 1], got {constraint_window!r}")
        # PettingZoo's blend of own and team reward: 0 when shared (the team mean for everyone).
        self._local_ratio = 1.0 - float(self.shared_reward)
        self._build_geometry()
        self._build_canvas()

        n, e = self.n_envs, self.n_evaders
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._pursuers = np.zeros((n, self.n_pursuers), dtype=np.int64)  # (B, N) cells
        self._evaders = np.zeros((n, e), dtype=np.int64)  # (B, E) cells
        self._alive = np.zeros((n, e), dtype=bool)  # (B, E) evaders not caught yet
        self._frames = np.zeros(n, dtype=np.int64)
        self._terminated = np.zeros(n, dtype=bool)
        self._truncated = np.zeros(n, dtype=bool)
        self._started = False
        # Pursuer i has made its move by move j of a cycle when i <= j: (N moves, 1, N agents).
        moves = np.arange(self.n_pursuers)
        self._moved = (moves[None, :] <= moves[:, None])[:, None, :]
        self._rows = np.arange(n)[:, None] * (self.n_cells + 1)  # (B, 1) offsets into flat grids

    # ------------------------------------------------------------------ geometry

    def _build_geometry(self) -> None:
        """Per-cell tables of the map: moves, tag neighbours, catch neighbours, catch needs."""
        x_size, y_size = self.x_size, self.y_size
        self.map_matrix = building_map(x_size, y_size)
        n_cells = self.n_cells = x_size * y_size
        cells = np.arange(n_cells)
        xs, ys = np.divmod(cells, y_size)
        closed = self.map_matrix.reshape(-1) == -1

        nx = xs[:, None] + MOVES[None, :, 0]  # (C, 5)
        ny = ys[:, None] + MOVES[None, :, 1]
        inside = (nx >= 0) & (nx < x_size) & (ny >= 0) & (ny < y_size)
        target = nx.clip(0, x_size - 1) * y_size + ny.clip(0, y_size - 1)
        #: (C, 5): the cell reached from each cell by each action.
        self._move = np.where(inside & ~closed[target], target, cells[:, None])
        #: (C, 4): the tag reward's neighbours, each coordinate clipped into the grid.
        self._tag_cells = target[:, :4]
        #: (C, 4): the catch rule's neighbours; off the grid is the empty column n_cells.
        self._near = np.where(inside[:, :4], target[:, :4], n_cells)
        # PettingZoo's count of cells to occupy: 4, less one per grid edge the cell is on, less
        # the building neighbours among those with 0 < x < x_size and 0 < y < y_size.
        checked = (nx[:, :4] > 0) & (nx[:, :4] < x_size) & (ny[:, :4] > 0) & (ny[:, :4] < y_size)
        on_x_edge = (xs == 0) | (xs == x_size - 1)
        on_y_edge = (ys == 0) | (ys == y_size - 1)
        walls = (checked & closed[target[:, :4]]).sum(axis=1)
        #: (C,): pursuers needed round an evader in each cell.
        self._need = 4 - on_x_edge.astype(np.int64) - on_y_edge.astype(np.int64) - walls

    def _build_canvas(self) -> None:
        """The padded grid observations are cut from: (y, x, channel), wall all round."""
        self._offset = (self.obs_range - 1) // 2
        off, width = self._offset, 2 * self._offset + 1
        self._padded_shape = (self.y_size + 2 * off, self.x_size + 2 * off, 3)
        canvas = np.zeros(self._padded_shape, dtype=np.float32)
        canvas[..., 0] = 1.0
        canvas[off : off + self.y_size, off : off + self.x_size, 0] = np.abs(self.map_matrix.T)
        self._canvas_template = canvas
        padded_x = self._padded_shape[1]
        u, v, c = np.meshgrid(np.arange(width), np.arange(width), np.arange(3), indexing="ij")
        #: (W * W * 3,): flat offsets of a window's (row, column, channel) from its corner.
        self._window = ((u * padded_x + v) * 3 + c).reshape(-1)
        blank = np.zeros((self.obs_range, self.obs_range, 3), dtype=np.float32)
        blank[..., 0] = 1.0
        self._blank_obs = blank
        self._canvas = np.broadcast_to(canvas, (self.n_envs, *canvas.shape)).copy()

    # ------------------------------------------------------------------ the batched API

    @property
    def done(self) -> np.ndarray:
        """(B,) bool: which episodes have ended (terminated or truncated)."""
        return self._terminated | self._truncated

    def reset(self, seeds: Sequence[int | None] | None = None) -> np.ndarray:
        """Start a new episode in every slot.

        Args:
            seeds: one seed (or None) per episode. Episode b reseeds its generator with
                `seeds[b]` as PettingZoo's `reset(seed=seeds[b])` does; None continues its
                stream (a fresh generator from OS entropy the first time). None for all: every
                episode continues its stream.

        Returns:
            (B, N, obs_range, obs_range, 3) float32 observations.

        Raises:
            ValueError: wrong number of seeds, or no free cell left in the spawn window.
        """
        seeds = [None] * self.n_envs if seeds is None else list(seeds)
        if len(seeds) != self.n_envs:
            raise ValueError(f"expected {self.n_envs} seeds, got {len(seeds)}")
        for b, seed in enumerate(seeds):
            if seed is not None or self._rngs[b] is None:
                self._rngs[b], _ = seeding.np_random(None if seed is None else int(seed))
            self._pursuers[b], self._evaders[b] = self._spawn(self._rngs[b])
        self._alive[:] = True
        self._frames[:] = 0
        self._terminated[:] = False
        self._truncated[:] = False
        self._started = True
        self._pursuer_grid = self._occupancy(self._pursuers)
        self._evader_grid = self._occupancy(self._evaders, self._alive)
        self._obs = self._observe()
        return self._obs

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Play one cycle of every running episode.

        Args:
            actions: (B, N) integer actions in 0..4 (those of ended episodes are ignored).

        Returns:
            obs: (B, N, obs_range, obs_range, 3) float32.
            rewards: (B, N) float64, each agent's reward for the cycle (0 in ended episodes).
            terminated: (B, N) bool, every evader caught (stays True once set).
            truncated: (B, N) bool, `max_cycles` reached (stays True once set).

        Raises:
            RuntimeError: before the first `reset`.
            ValueError: actions of the wrong shape, type or range.
        """
        if not self._started:
            raise RuntimeError("step() called before reset()")
        n_envs, n_agents = self.n_envs, self.n_pursuers
        actions = np.asarray(actions)
        if actions.shape != (n_envs, n_agents) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions must be integers of shape {(n_envs, n_agents)}, got "
                f"{actions.dtype} {actions.shape}"
            )
        active = ~self.done  # (B,)
        legal = (actions >= 0) & (actions < N_ACTIONS)
        if not legal[active].all():
            raise ValueError(f"actions must be in 0..{N_ACTIONS - 1}, got {actions[~legal]}")
        actions = np.where(active[:, None], actions, STAY)

        old = self._pursuers
        new = self._move[old, actions]  # (B, N)
        # Evaders stand still during the cycle: each pursuer's tag count depends on its own cell.
        tag_old = self._count_near(self._evader_grid, self._tag_cells[old])  # (B, N)
        tag_new = self._count_near(self._evader_grid, self._tag_cells[new])
        counts = np.where(self._moved, tag_new[None], tag_old[None])  # (N moves, B, N)
        local = self.tag_reward * counts / n_agents

        pursuer_grid = self._occupancy(new)
        caught, catchers = self._catch(new, pursuer_grid, self._alive & active[:, None])
        local[-1] += self.catch_reward * catchers
        local[-1] += self.urgency_reward
        team = local.mean(axis=-1)  # (N moves, B): each mean over one contiguous row
        mixed = self._local_ratio * local + (1 - self._local_ratio) * team[..., None]
        # The parallel wrapper sums the N vectors from 0 in move order; + 0.0 as it starts at 0.
        rewards = np.add.accumulate(mixed, axis=0)[-1] + 0.0
        rewards[~active] = 0.0

        self._pursuers = new
        self._alive &= ~caught
        if not self.freeze_evaders:
            self._evaders = self._move[self._evaders, self._evader_actions(active)]
        self._frames += active
        truncated = active & (self._frames >= self.max_cycles)
        terminated = active & ~self._alive.any(axis=1) & ~truncated
        self._truncated |= truncated
        self._terminated |= terminated
        self._pursuer_grid = pursuer_grid
        self._evader_grid = self._occupancy(self._evaders, self._alive)
        self._obs = self._observe()
        shape = (n_envs, n_agents)
        return (
            self._obs,
            rewards,
            np.broadcast_to(self._terminated[:, None], shape).copy(),
            np.broadcast_to(self._truncated[:, None], shape).copy(),
        )

    def observe(self) -> np.ndarray:
        """(B, N, obs_range, obs_range, 3) float32: the latest observations."""
        self._require_reset()
        return self._obs

    def state(self) -> np.ndarray:
        """(B, y_size, x_size, 3) float32: every episode's whole grid, as PettingZoo's `state()`."""
        self._require_reset()
        off = self._offset
        return self._canvas[:, off : off + self.y_size, off : off + self.x_size].copy()

    # ------------------------------------------------------------------ read-only views

    def pursuer_positions(self) -> np.ndarray:
        """(B, N, 2) int64: every pursuer's (x, y)."""
        return np.stack(np.divmod(self._pursuers, self.y_size), axis=-1)

    def evader_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """((B, E, 2) int64 (x, y) of every evader, (B, E) bool: not caught yet). A caught evader
        keeps the cell it was caught in."""
        return np.stack(np.divmod(self._evaders, self.y_size), axis=-1), self._alive.copy()

    @property
    def frames(self) -> np.ndarray:
        """(B,) int64: cycles played in each episode."""
        return self._frames.copy()

    # ------------------------------------------------------------------ internals

    def _require_reset(self) -> None:
        if not self._started:
            raise RuntimeError("call reset() first")

    def _spawn(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Place one episode's pursuers then evaders, drawing exactly as PettingZoo does."""
        window = self.constraint_window
        x_start = rng.uniform(0.0, 1.0 - window)
        y_start = rng.uniform(0.0, 1.0 - window)
        x_bounds = int(self.x_size * x_start), int(self.x_size * (x_start + window))
        y_bounds = int(self.y_size * y_start), int(self.y_size * (y_start + window))
        pursuers = self._place(rng, self.n_pursuers, x_bounds, y_bounds)
        evaders = self._place(rng, self.n_evaders, x_bounds, y_bounds)
        return pursuers, evaders

    def _place(
        self,
        rng: np.random.Generator,
        count: int,
        x_bounds: tuple[int, int],
        y_bounds: tuple[int, int],
    ) -> np.ndarray:
        """`count` cells drawn x then y until open and away from the earlier ones (rejection)."""
        (x_low, x_high), (y_low, y_high) = x_bounds, y_bounds
        closed = self.map_matrix == -1
        # taken[x + 1, y + 1]: cell (x, y) holds or touches an agent placed before.
        taken = np.zeros((self.x_size + 2, self.y_size + 2), dtype=bool)
        cells = np.empty(count, dtype=np.int64)
        for k in range(count):
            free = ~closed[x_low:x_high, y_low:y_high]
            free &= ~taken[x_low + 1 : x_high + 1, y_low + 1 : y_high + 1]
            if not free.any():
                raise ValueError(
                    f"no free cell left in the spawn window for agent {k} of {count} "
                    f"(x in [{x_low}, {x_high}), y in [{y_low}, {y_high}))"
                )
            while True:
                x = int(rng.integers(x_low, x_high))
                y = int(rng.integers(y_low, y_high))
                if not closed[x, y] and not taken[x + 1, y + 1]:
                    break
            taken[x + 1, y + 1] = taken[x + 2, y + 1] = taken[x, y + 1] = True
            taken[x + 1, y + 2] = taken[x + 1, y] = True
            cells[k] = x * self.y_size + y
        return cells

    def _occupancy(self, cells: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        """(B, C + 1) int64 agents per cell (the last column, off the grid, stays 0)."""
        flat = cells + self._rows
        if present is not None:
            flat = flat[present]
        counts = np.bincount(flat.reshape(-1), minlength=self.n_envs * (self.n_cells + 1))
        return counts.reshape(self.n_envs, self.n_cells + 1)

    def _count_near(self, grid: np.ndarray, near: np.ndarray) -> np.ndarray:
        """(B, N) sum of `grid` over each row's (B, N, 4) cells `near`."""
        return grid.reshape(-1)[near + self._rows[..., None]].sum(axis=-1)

    def _catch(
        self, pursuers: np.ndarray, pursuer_grid: np.ndarray, alive: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Which evaders are caught ((B, E) bool) and which pursuers took part ((B, N) bool)."""
        evaders = self._evaders
        if self.surround:
            held = pursuer_grid.reshape(-1)[self._near[evaders] + self._rows[..., None]] > 0
            caught = alive & (held.sum(axis=-1) == self._need[evaders])
        else:
            caught = alive & (pursuer_grid.reshape(-1)[evaders + self._rows] >= self.n_catch)
        caught_grid = self._occupancy(evaders, caught) > 0
        if self.surround:
            catchers = self._count_near(caught_grid, self._near[pursuers]) > 0
        else:
            catchers = caught_grid.reshape(-1)[pursuers + self._rows]
        return caught, catchers

    def _evader_actions(self, active: np.ndarray) -> np.ndarray:
        """(B, E) actions of the evaders: one draw per evader left, in order, per running
        episode (as PettingZoo's evader controller), staying for the others."""
        movers = self._alive & active[:, None]
        counts = movers.sum(axis=1)
        actions = np.full(self._alive.shape, STAY, dtype=np.int64)
        draws = [self._rngs[b].integers(N_ACTIONS, size=counts[b]) for b in np.flatnonzero(counts)]
        if draws:
            actions[movers] = np.concatenate(draws)
        return actions

    def _observe(self) -> np.ndarray:
        """Fill the padded canvases from the occupancy grids and cut every pursuer's window."""
        n_envs, off = self.n_envs, self._offset
        canvas = self._canvas
        canvas[:] = self._canvas_template
        inner = canvas[:, off : off + self.y_size, off : off + self.x_size]
        grid_shape = (n_envs, self.x_size, self.y_size)
        inner[..., 1] = self._pursuer_grid[:, :-1].reshape(grid_shape).transpose(0, 2, 1)
        inner[..., 2] = self._evader_grid[:, :-1].reshape(grid_shape).transpose(0, 2, 1)
        padded_y, padded_x, _ = self._padded_shape
        x, y = np.divmod(self._pursuers, self.y_size)
        # Cell (x, y) sits at padded (y + off, x + off): its window starts at padded (y, x).
        corner = ((np.arange(n_envs)[:, None] * padded_y + y) * padded_x + x) * 3  # (B, N)
        width = 2 * off + 1
        windows = canvas.reshape(-1)[corner[..., None] + self._window]
        windows = windows.reshape(n_envs, self.n_pursuers, width, width, 3)
        if width == self.obs_range:
            return windows
        # An even obs_range: the last row and column stay wall.
        obs = np.broadcast_to(self._blank_obs, windows.shape[:2] + self._blank_obs.shape).copy()
        obs[:, :, :width, :width] = windows
        return obs


class PursuitEnv(ParallelEnv):
    """One pursuit episode as a PettingZoo ParallelEnv, on `VectorPursuit` with B = 1.

    `PursuitEnv(**kwargs)` and `pettingzoo.make("parallel", "sisl/pursuit-v5", **kwargs)` take
    the same keyword arguments and, for the same seeds and actions, return the same
    observations, rewards, terminations, truncations and states (see the module docstring for
    the few deviations: custom evader controllers, rendering).

    Args:
        PettingZoo's `Pursuit` keyword arguments, with its defaults. `evader_controller` must be
        None; `pursuer_controller` is accepted and, as in PettingZoo, never used; `render_mode`
        is None or "rgb_array".
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "name": "pursuit_v5",
        "is_parallelizable": True,
        "render_fps": 5,
    }

    def __init__(
        self,
        *,
        x_size: int = 16,
        y_size: int = 16,
        max_cycles: int = 500,
        shared_reward: bool = True,
        n_evaders: int = 30,
        n_pursuers: int = 8,
        obs_range: int = 7,
        n_catch: int = 2,
        freeze_evaders: bool = False,
        evader_controller: Any = None,
        pursuer_controller: Any = None,
        tag_reward: float = 0.01,
        catch_reward: float = 5.0,
        urgency_reward: float = -0.1,
        surround: bool = True,
        render_mode: str | None = None,
        constraint_window: float = 1.0,
    ) -> None:
        if evader_controller is not None:
            raise ValueError(
                "the vectorised pursuit has no custom evader_controller; use PettingZoo's env"
            )
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.engine = VectorPursuit(
            1,
            x_size=x_size,
            y_size=y_size,
            max_cycles=max_cycles,
            shared_reward=shared_reward,
            n_evaders=n_evaders,
            n_pursuers=n_pursuers,
            obs_range=obs_range,
            n_catch=n_catch,
            freeze_evaders=freeze_evaders,
            tag_reward=tag_reward,
            catch_reward=catch_reward,
            urgency_reward=urgency_reward,
            surround=surround,
            constraint_window=constraint_window,
        )
        self.possible_agents = [f"pursuer_{i}" for i in range(n_pursuers)]
        self.agents: list[str] = []
        # PettingZoo shares one space object between all agents; so do we.
        high = max(n_pursuers, n_evaders)
        obs_space = spaces.Box(0, high, shape=(obs_range, obs_range, 3), dtype=np.float32)
        action_space = spaces.Discrete(N_ACTIONS)
        self.observation_spaces = dict.fromkeys(self.possible_agents, obs_space)
        self.action_spaces = dict.fromkeys(self.possible_agents, action_space)
        self.state_space = spaces.Box(0, high, shape=(y_size, x_size, 3), dtype=np.float32)

    @property
    def max_cycles(self) -> int:
        """Cycles before truncation (public and mutable: `parallel_api_test` assigns it)."""
        return self.engine.max_cycles

    @max_cycles.setter
    def max_cycles(self, value: int) -> None:
        self.engine.max_cycles = _check_int("max_cycles", value, 1)

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self.action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        obs = self.engine.reset([seed])[0]
        self.agents = list(self.possible_agents)
        return (
            {agent: obs[i] for i, agent in enumerate(self.agents)},
            {agent: {} for agent in self.agents},
        )

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            return {}, {}, {}, {}, {}
        team = np.array([[actions[agent] for agent in self.agents]])
        if not np.issubdtype(team.dtype, np.integer):
            raise ValueError(f"actions must be integers in 0..{N_ACTIONS - 1}, got {actions}")
        obs, rewards, terminated, truncated = self.engine.step(team)
        agents = self.agents
        if self.engine.done[0]:
            self.agents = []
        return (
            {agent: obs[0, i] for i, agent in enumerate(agents)},
            dict(zip(agents, rewards[0].tolist(), strict=True)),
            dict(zip(agents, terminated[0].tolist(), strict=True)),
            dict(zip(agents, truncated[0].tolist(), strict=True)),
            {agent: {} for agent in agents},
        )

    def state(self) -> np.ndarray:
        """(y_size, x_size, 3) float32: walls, pursuers, evaders over the whole grid."""
        return self.engine.state()[0]

    def render(self) -> np.ndarray | None:
        """An RGB picture (y_size * 30, x_size * 30, 3) uint8 of our own: black ground, white
        building, each pursuer's view shaded orange, evaders as blue and pursuers as red squares.
        None without `render_mode="rgb_array"`."""
        if self.render_mode is None:
            return None
        state = self.state()
        off = self.engine._offset
        image = np.zeros(state.shape[:2] + (3,), dtype=np.float64)
        image[state[..., 0] > 0] = 255.0
        (positions,) = self.engine.pursuer_positions()
        orange = np.array([255.0, 152.0, 72.0])
        for x, y in positions:
            view = image[max(y - off, 0) : y + off + 1, max(x - off, 0) : x + off + 1]
            view += (orange - view) * 0.5
        cells = np.repeat(np.repeat(image, PIXELS_PER_CELL, 0), PIXELS_PER_CELL, 1)
        inset = np.zeros((PIXELS_PER_CELL, PIXELS_PER_CELL), dtype=bool)
        inset[PIXELS_PER_CELL // 4 : -PIXELS_PER_CELL // 4] = True
        inset &= inset.T
        for channel, colour in ((2, (0, 0, 255)), (1, (255, 0, 0))):
            marked = np.kron(state[..., channel] > 0, inset)
            cells[marked] = colour
        return cells.astype(np.uint8)

    def close(self) -> None:
        """Nothing to release."""
