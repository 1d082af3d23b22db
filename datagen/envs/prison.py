"""Prison: a tiny multi-agent environment of independent prisoners, for debugging and baselines.

This is our own implementation, written from a description of the "prison" environment that
PettingZoo shipped in its butterfly family until version 1.18 (it was removed there). It keeps the
spirit of that environment, not its code: the dynamics, rendering and defaults below are ours.

World
-----
``n_prisoners`` prisoners (``prisoner_0`` .. ``prisoner_{n-1}``) each live alone in a cell. The
cells are laid out in two columns and stacked in ``ceil(n / 2)`` floors; prisoner ``i`` lives on
floor ``i // 2`` in column ``i % 2``. The prisoners never interact: the env is ``n`` independent
copies of one single-agent task, which makes it a good debugging env and simple baseline.

Inside its cell a prisoner moves along one horizontal axis. Its position is an integer
``x`` in ``[0, cell_width]``; the left wall is at ``x = 0`` and the right wall at
``x = cell_width``. A prisoner *touches* a wall when its position equals that wall's position.

Actions (``Discrete(3)`` for every prisoner)
--------------------------------------------
====== ======= ==================================================
action meaning effect on the position
====== ======= ==================================================
0      left    ``x <- max(x - speed, 0)``
1      stay    ``x <- x``
2      right   ``x <- min(x + speed, cell_width)``
====== ======= ==================================================

All positions are integers, so the dynamics are exact (no floating point accumulation).

Start positions
---------------
On ``reset`` every prisoner starts strictly between its walls, so no wall is touched at reset.
By default each prisoner's start is drawn independently and uniformly from the integers
``1 .. cell_width - 1`` with the env's own ``numpy.random.Generator``. With
``synchronized_start=True`` every prisoner starts at the centre ``cell_width // 2`` (no
randomness). ``reset(options={"start_positions": [...]})`` sets the starts explicitly (one
integer per prisoner, each in ``1 .. cell_width - 1``); other option keys are ignored.

Reward
------
Each prisoner remembers the wall it touched last (none right after reset). After every step a
prisoner receives ``+1.0`` if it touches a wall that is not the wall it touched last, else
``0.0``. Hence

* the first wall touched after reset scores (either wall: there is no "last wall" yet),
* afterwards only the wall opposite the last one scores, i.e. each full crossing scores once,
* staying at, or coming back to, the wall touched last scores nothing.

There is no early termination. All prisoners are truncated together after ``max_cycles`` steps
(default 150), after which ``agents`` is empty.

Observations
------------
``obs_type="vector"`` (default): ``Box(shape=(1,), float32)`` holding the normalised position
``x / cell_width`` in ``[0, 1]`` (0 = at the left wall, 1 = at the right wall). With
``include_last_wall=True`` the shape is ``(2,)`` and the second value codes the wall touched
last: ``-1`` left, ``0`` none yet, ``+1`` right.

``obs_type="image"``: ``Box(shape=(H, W, 3), uint8)`` with ``(H, W) = image_size``, an RGB image
of the prisoner's own cell drawn with numpy: dark background, grey walls in pixel columns ``0``
and ``W - 1``, a grey floor in row ``H - 1``, and the prisoner as a coloured figure (a vertical
bar in rows ``H // 4 .. H - 2`` plus a 3-pixel-wide head in row ``H // 4``) centred on pixel
column :func:`pixel_column` ``(x)``, which maps ``[0, cell_width]`` linearly onto the interior
columns ``1 .. W - 2`` (rounding half up). With the defaults (``cell_width = 45``,
``W = 48``) the mapping is exact: column ``x + 1``. With ``include_last_wall=True`` the wall
touched last is drawn in green instead of grey.

Note that a position alone does not tell in which direction the prisoner should go next (that
depends on the wall touched last), so a memoryless policy on the default observation cannot
reach the maximum return below; use ``include_last_wall=True``, frame stacking or a recurrent
policy for that.

Global state
------------
``state_type="vector"`` (default): ``Box(shape=(2 * n,), float32)``; ``state[:n]`` are the
normalised positions of all prisoners and ``state[n:]`` their last-wall codes (-1, 0, +1). This
is the full Markov state apart from the step counter.
``state_type="image"``: the :meth:`PrisonEnv.render` image of the whole prison,
``Box(shape=(ceil(n / 2) * H, 2 * W, 3), uint8)`` (last-touched walls always highlighted).

Cosmetics
---------
``identical_aliens`` and ``random_aliens`` only change sprite colours in images (they do not
change the vector observation or the dynamics). By default prisoner ``i`` gets palette colour
``i mod len(PALETTE)``; ``identical_aliens=True`` gives all prisoners the same colour;
``random_aliens=True`` draws the colour(s) from the palette with the env's generator at every
reset (one shared colour when both are set).

Best achievable return (derivation)
-----------------------------------
Let ``W = cell_width``, ``s = speed``, ``T = max_cycles`` and let a prisoner start at ``x0`` with
``0 < x0 < W``. Moving at most ``s`` per step, it needs at least ``t_L = ceil(x0 / s)`` steps to
touch the left wall and ``t_R = ceil((W - x0) / s)`` steps to touch the right one, so its first
reward comes no earlier than step ``t_first = min(t_L, t_R)``. Between two consecutive rewards
it must travel from one wall to the other, distance ``W``, which takes at least
``c = ceil(W / s)`` steps. So ``k`` rewards need ``t_first + (k - 1) * c <= T`` steps and

    max return = 0                                 if t_first > T
    max return = 1 + floor((T - t_first) / c)      otherwise.

The bound is achieved exactly by the policy of :func:`optimal_actions`: head at full speed for
the nearest wall, then bounce between the walls at full speed (clipping at a wall makes every
crossing take exactly ``c`` steps). :func:`max_episode_return` evaluates the formula per
prisoner; :func:`expected_max_episode_return` averages it over the start distribution.

With the defaults (``W = 45``, ``s = 1``, ``T = 150``) the maximum is 3 or 4 per prisoner
(mean 3.68 over random starts, 3 from the synchronised centre start). A uniformly random team of
8 scores 3.08 +- 1.49 per episode
(``marl-datagen collect --env prison --agents 8 --episodes 200 --seed 0``).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

__all__ = [
    "LEFT",
    "NO_WALL",
    "PALETTE",
    "RIGHT",
    "PrisonEnv",
    "expected_max_episode_return",
    "max_episode_return",
    "optimal_actions",
    "pixel_column",
]

#: Last-wall codes used in observations, the vector state and :func:`optimal_actions`.
LEFT = -1
NO_WALL = 0
RIGHT = 1

#: Action ids.
ACTION_LEFT = 0
ACTION_STAY = 1
ACTION_RIGHT = 2

#: Sprite colours (RGB); none equals the background, wall or highlight colour.
PALETTE = np.array(
    [
        (230, 60, 60),
        (60, 120, 240),
        (240, 200, 40),
        (200, 80, 220),
        (40, 210, 210),
        (250, 140, 30),
        (240, 240, 240),
        (150, 90, 40),
        (255, 120, 180),
        (120, 240, 120),
        (100, 60, 200),
        (190, 220, 60),
    ],
    dtype=np.uint8,
)
BACKGROUND = np.array((16, 16, 24), dtype=np.uint8)
WALL = np.array((128, 128, 128), dtype=np.uint8)
HIGHLIGHT = np.array((0, 170, 0), dtype=np.uint8)

OBS_TYPES = ("vector", "image")
STATE_TYPES = ("vector", "image")
RENDER_MODES = ("rgb_array",)


def _ceil_div(a: np.ndarray | int, b: int) -> np.ndarray:
    """Exact integer ceil(a / b) for non-negative integer ``a`` and positive integer ``b``."""
    return -(-np.asarray(a, dtype=np.int64) // b)


def max_episode_return(
    start_positions: Any, cell_width: int = 45, speed: int = 1, max_cycles: int = 150
) -> np.ndarray:
    """Best achievable return of each prisoner in one episode (see the module docstring).

    Args:
        start_positions: integer start positions, each strictly between the walls
            (``0 < x0 < cell_width``); scalar or array of any shape.
        cell_width: distance between the two walls.
        speed: distance moved per left/right action.
        max_cycles: number of steps in the episode.

    Returns:
        int64 array with the shape of ``start_positions``:
        ``1 + floor((max_cycles - t_first) / ceil(cell_width / speed))`` where
        ``t_first = min(ceil(x0 / speed), ceil((cell_width - x0) / speed))``, or 0 when
        ``t_first > max_cycles``.
    """
    x0 = np.asarray(start_positions, dtype=np.int64)
    if np.any(x0 <= 0) or np.any(x0 >= cell_width):
        raise ValueError(f"start_positions must be in 1..{cell_width - 1}, got {x0.tolist()}")
    t_first = np.minimum(_ceil_div(x0, speed), _ceil_div(cell_width - x0, speed))
    crossing = int(_ceil_div(cell_width, speed))
    best = 1 + (max_cycles - t_first) // crossing
    return np.where(t_first <= max_cycles, best, 0).astype(np.int64)


def expected_max_episode_return(
    cell_width: int = 45,
    speed: int = 1,
    max_cycles: int = 150,
    synchronized_start: bool = False,
) -> float:
    """Mean of :func:`max_episode_return` per prisoner over the env's start distribution.

    Exact: uniform over the integers ``1 .. cell_width - 1``, or the centre
    ``cell_width // 2`` when ``synchronized_start``. Multiply by ``n_prisoners`` for the team.
    """
    if synchronized_start:
        starts = np.array([cell_width // 2])
    else:
        starts = np.arange(1, cell_width)
    return float(max_episode_return(starts, cell_width, speed, max_cycles).mean())


def optimal_actions(positions: Any, last_wall: Any, cell_width: int) -> np.ndarray:
    """Actions of the return-maximising scripted policy (vectorised over prisoners).

    Go to the nearest wall (left on a tie) while no wall has been touched, then always head for
    the wall opposite the one touched last. Achieves :func:`max_episode_return` exactly.

    Args:
        positions: integer positions in ``[0, cell_width]`` (``PrisonEnv.positions``).
        last_wall: last-wall codes -1/0/+1 (``PrisonEnv.last_wall``).
        cell_width: distance between the walls.

    Returns:
        int64 array of actions (0 = left, 2 = right).
    """
    x = np.asarray(positions, dtype=np.int64)
    last = np.asarray(last_wall, dtype=np.int64)
    go_left_first = x <= cell_width - x
    go_left = np.where(last == NO_WALL, go_left_first, last == RIGHT)
    return np.where(go_left, ACTION_LEFT, ACTION_RIGHT).astype(np.int64)


def pixel_column(position: Any, cell_width: int, image_width: int) -> np.ndarray:
    """Pixel column of a prisoner's figure in its cell image.

    Maps ``[0, cell_width]`` linearly onto the interior columns ``1 .. image_width - 2``,
    rounding half up, in exact integer arithmetic.
    """
    x = np.asarray(position, dtype=np.int64)
    return 1 + (2 * x * (image_width - 3) + cell_width) // (2 * cell_width)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_choice(name: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {valid}, got {value!r}")
    return value


class PrisonEnv(ParallelEnv):
    """Prisoners pacing between the two walls of their cells; see the module docstring."""

    metadata = {"name": "prison_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        n_prisoners: int = 8,
        obs_type: str = "vector",
        synchronized_start: bool = False,
        cell_width: int = 45,
        speed: int = 1,
        image_size: tuple[int, int] = (16, 48),
        max_cycles: int = 150,
        render_mode: str | None = None,
        state_type: str = "vector",
        include_last_wall: bool = False,
        identical_aliens: bool = False,
        random_aliens: bool = False,
    ) -> None:
        """Create the env.

        Args:
            n_prisoners: number of prisoners (>= 1).
            obs_type: ``"vector"`` (normalised position) or ``"image"`` (RGB image of the cell).
            synchronized_start: start every prisoner at ``cell_width // 2`` instead of at random.
            cell_width: integer distance between the two walls of a cell (>= 2).
            speed: integer distance moved by a left/right action (>= 1).
            image_size: ``(height, width)`` in pixels of one cell image (height >= 3,
                width >= 4); used by image observations, image state and ``render``.
            max_cycles: steps per episode before truncation (>= 1).
            render_mode: ``None`` or ``"rgb_array"``.
            state_type: ``"vector"`` (positions and last walls) or ``"image"`` (whole prison).
            include_last_wall: also observe the wall touched last (see module docstring).
            identical_aliens: draw all prisoners in the same colour (images only).
            random_aliens: draw sprite colours at random at each reset (images only).
        """
        self.n_prisoners = _check_int("n_prisoners", n_prisoners, 1)
        self.obs_type = _check_choice("obs_type", obs_type, OBS_TYPES)
        self.synchronized_start = _check_bool("synchronized_start", synchronized_start)
        self.cell_width = _check_int("cell_width", cell_width, 2)
        self.speed = _check_int("speed", speed, 1)
        if (
            not isinstance(image_size, (tuple, list))
            or len(image_size) != 2
            or not all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in image_size
            )
            or image_size[0] < 3
            or image_size[1] < 4
        ):
            raise ValueError(
                "image_size must be a (height, width) pair of integers with height >= 3 and "
                f"width >= 4, got {image_size!r}"
            )
        self.image_size = (int(image_size[0]), int(image_size[1]))
        # Public and mutable: pettingzoo's parallel_api_test assigns it.
        self.max_cycles = _check_int("max_cycles", max_cycles, 1)
        if render_mode is not None:
            _check_choice("render_mode", render_mode, (None, *RENDER_MODES))
        self.render_mode = render_mode
        self.state_type = _check_choice("state_type", state_type, STATE_TYPES)
        self.include_last_wall = _check_bool("include_last_wall", include_last_wall)
        self.identical_aliens = _check_bool("identical_aliens", identical_aliens)
        self.random_aliens = _check_bool("random_aliens", random_aliens)

        n = self.n_prisoners
        self.possible_agents = [f"prisoner_{i}" for i in range(n)]
        self.agents: list[str] = []
        self._agent_index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self.n_floors = (n + 1) // 2

        height, width = self.image_size
        if obs_type == "vector":
            size = 2 if self.include_last_wall else 1
            low = np.array([0.0, -1.0][:size], dtype=np.float32)
            high = np.ones(size, dtype=np.float32)
            make_obs_space = lambda: spaces.Box(low, high, dtype=np.float32)  # noqa: E731
        else:
            make_obs_space = lambda: spaces.Box(  # noqa: E731
                0, 255, shape=(height, width, 3), dtype=np.uint8
            )
        # One object per agent, returned unchanged by observation_space / action_space.
        self.observation_spaces = {agent: make_obs_space() for agent in self.possible_agents}
        self.action_spaces = {agent: spaces.Discrete(3) for agent in self.possible_agents}
        if self.state_type == "vector":
            self.state_space = spaces.Box(
                low=np.concatenate([np.zeros(n), -np.ones(n)]).astype(np.float32),
                high=np.ones(2 * n, dtype=np.float32),
                dtype=np.float32,
            )
        else:
            self.state_space = spaces.Box(
                0, 255, shape=(self.n_floors * height, 2 * width, 3), dtype=np.uint8
            )

        # Empty cell: background, walls in the outer columns, floor in the bottom row.
        cell = np.empty((height, width, 3), dtype=np.uint8)
        cell[:] = BACKGROUND
        cell[:, 0] = WALL
        cell[:, width - 1] = WALL
        cell[height - 1, :] = WALL
        self._empty_cell = cell

        self._rng: np.random.Generator | None = None
        self._positions = np.full(n, self.cell_width // 2, dtype=np.int64)
        self._start_positions = self._positions.copy()
        self._last_wall = np.zeros(n, dtype=np.int64)
        self._colours = self._default_colours()
        self._cycle = 0

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    # ------------------------------------------------------------------ read-only views
    @property
    def positions(self) -> np.ndarray:
        """Copy of the integer positions of all prisoners (index ``i`` = ``prisoner_i``)."""
        return self._positions.copy()

    @property
    def start_positions(self) -> np.ndarray:
        """Copy of the start positions of the current episode."""
        return self._start_positions.copy()

    @property
    def last_wall(self) -> np.ndarray:
        """Copy of the last-wall codes of all prisoners (-1 left, 0 none, +1 right)."""
        return self._last_wall.copy()

    @property
    def cycle(self) -> int:
        """Number of steps taken in the current episode."""
        return self._cycle

    def max_episode_returns(self) -> np.ndarray:
        """:func:`max_episode_return` for the current episode's starts and settings."""
        return max_episode_return(
            self._start_positions, self.cell_width, self.speed, self.max_cycles
        )

    # ------------------------------------------------------------------ API
    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        elif self._rng is None:
            self._rng = np.random.default_rng()
        n = self.n_prisoners
        starts = None if options is None else options.get("start_positions")
        if starts is not None:
            starts = np.asarray(starts)
            if (
                starts.shape != (n,)
                or not np.issubdtype(starts.dtype, np.integer)
                or np.any(starts < 1)
                or np.any(starts > self.cell_width - 1)
            ):
                raise ValueError(
                    f"start_positions must be {n} integers in 1..{self.cell_width - 1}, "
                    f"got {starts.tolist()!r}"
                )
            positions = starts.astype(np.int64)
        elif self.synchronized_start:
            positions = np.full(n, self.cell_width // 2, dtype=np.int64)
        else:
            positions = self._rng.integers(1, self.cell_width, size=n, dtype=np.int64)
        if self.random_aliens:
            size = 1 if self.identical_aliens else n
            picks = self._rng.integers(0, len(PALETTE), size=size)
            self._colours = np.broadcast_to(PALETTE[picks], (n, 3)).copy()
        else:
            self._colours = self._default_colours()
        self._positions = positions
        self._start_positions = positions.copy()
        self._last_wall = np.zeros(n, dtype=np.int64)
        self._cycle = 0
        self.agents = list(self.possible_agents)
        return self._observations(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        if set(actions) != set(self.agents):
            missing = sorted(set(self.agents) - set(actions))
            unknown = sorted(set(actions) - set(self.agents))
            raise ValueError(
                f"actions must have one entry per live agent; missing {missing}, unknown {unknown}"
            )
        act = np.empty(self.n_prisoners, dtype=np.int64)
        for agent, action in actions.items():
            act[self._agent_index[agent]] = np.asarray(action).item()
        bad = (act < 0) | (act > 2)
        if np.any(bad):
            raise ValueError(
                f"actions must be 0 (left), 1 (stay) or 2 (right), got {act[bad].tolist()}"
            )

        width = self.cell_width
        pos = np.clip(self._positions + (act - 1) * self.speed, 0, width)
        touched = np.where(pos == 0, LEFT, np.where(pos == width, RIGHT, NO_WALL))
        scored = (touched != NO_WALL) & (touched != self._last_wall)
        self._last_wall = np.where(touched != NO_WALL, touched, self._last_wall)
        self._positions = pos
        self._cycle += 1

        agents = self.agents
        observations = self._observations()
        rewards = dict(zip(agents, scored.astype(np.float64).tolist(), strict=True))
        terminations = {agent: False for agent in agents}
        truncated = self._cycle >= self.max_cycles
        truncations = {agent: truncated for agent in agents}
        infos = {agent: {} for agent in agents}
        if truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        if self.state_type == "vector":
            return np.concatenate([self._positions / self.cell_width, self._last_wall]).astype(
                np.float32
            )
        return self._prison_image()

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            warnings.warn(
                "PrisonEnv.render() called with render_mode=None; pass render_mode='rgb_array'",
                stacklevel=2,
            )
            return None
        return self._prison_image()

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ internals
    def _default_colours(self) -> np.ndarray:
        idx = np.zeros(self.n_prisoners, dtype=np.int64)
        if not self.identical_aliens:
            idx = np.arange(self.n_prisoners) % len(PALETTE)
        return PALETTE[idx]

    def _observations(self) -> dict[str, np.ndarray]:
        # Observations are views into one array built fresh for this call.
        if self.obs_type == "vector":
            columns = [self._positions / self.cell_width]
            if self.include_last_wall:
                columns.append(self._last_wall)
            obs = np.stack(columns, axis=1).astype(np.float32)
        else:
            obs = self._cell_images(highlight=self.include_last_wall)
        return {agent: obs[i] for i, agent in enumerate(self.possible_agents)}

    def _cell_images(self, highlight: bool) -> np.ndarray:
        """Images of every prisoner's cell, shape (n, H, W, 3), uint8."""
        n = self.n_prisoners
        height, width = self.image_size
        cells = np.broadcast_to(self._empty_cell, (n, height, width, 3)).copy()
        if highlight:
            cells[self._last_wall == LEFT, :, 0] = HIGHLIGHT
            cells[self._last_wall == RIGHT, :, width - 1] = HIGHLIGHT
        cols = pixel_column(self._positions, self.cell_width, width)
        head = height // 4
        rows = np.arange(head, height - 1)
        idx = np.arange(n)
        cells[idx[:, None], rows[None, :], cols[:, None]] = self._colours[:, None, :]
        for offset in (-1, 1):
            c = cols + offset
            inside = (c >= 1) & (c <= width - 2)
            cells[idx[inside], head, c[inside]] = self._colours[inside]
        return cells

    def _prison_image(self) -> np.ndarray:
        """The whole prison: floors stacked top to bottom, two cells side by side."""
        height, width = self.image_size
        cells = self._cell_images(highlight=True)
        if self.n_prisoners % 2:
            cells = np.concatenate([cells, self._empty_cell[None]], axis=0)
        grid = cells.reshape(self.n_floors, 2, height, width, 3).transpose(0, 2, 1, 3, 4)
        return np.ascontiguousarray(grid.reshape(self.n_floors * height, 2 * width, 3))
