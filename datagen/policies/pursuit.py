"""Behaviour policies for pursuit (PettingZoo `sisl/pursuit-v5`).

All are deterministic scripted controllers. The expert of teams other than 2 and the adversary
read the env's positions (`base_env`: our vectorised `PursuitEnv`, or PettingZoo's base `Pursuit`
object under `implementation=pettingzoo`): the map, every pursuer's position and every evader's
position. They are therefore **privileged** (they see the whole grid, not the
7x7 observations). The expert of a pair (n = 2) reads only each agent's own view
(`PursuitViewPair`), so the learners can imitate it.

Facts the design rests on (PettingZoo 1.27 source): the 16x16 grid has a 7x9 building in the
middle (x 5..11, y 4..12), so the open cells form a ring. Evaders move uniformly at random (five
actions, bumping into walls means staying) and may step onto pursuers' cells; pursuers may stack.
Each cycle the pursuers move first, then an evader is removed if every open neighbour of its
cell (walls and the building count as closed) holds a pursuer, then the evaders move. So a catch
needs 4 pursuers in the open, 3 by a wall and 2 in a map corner, and the episode ends when every
evader is gone (fewer cycles, less urgency penalty).

- **Expert** (`PursuitExpert`): the team is split by index into groups of 4 (remainders of 1 or 2
  join the first groups as extras, a remainder of 3 forms a group of 3). Each group keeps a target
  evader until it is caught, chosen as the untargeted evader nearest to the group (a group
  smaller than 4 only takes evaders by a wall, which it can surround). Every cycle the group's
  members are matched (`scipy.optimize.linear_sum_assignment`, squared shortest-path distances)
  to the target's open neighbour cells, extras to the target's own cell, and each pursuer takes
  one step along a shortest path (BFS round the building) to its cell. When the evader steps
  away the ring translates with it, so the catch follows as soon as the last member arrives.
  When there are more groups than evaders left, the spare groups wait. No two pursuers of the
  expert are sent to the same catching cell: every pursuer next to an evader at a catch earns +5,
  even stacked ones, and the expert does not inflate its return that way (REFERENCE calls it a
  quirk), so a catch normally pays 5 per open neighbour of the evader. A pair (n = 2) can surround
  nothing but an evader in a map corner, so it *guards* a corner: its two pursuers stand on the
  corner's two open neighbours and every evader that wanders into the corner is caught (+10). It
  goes to the corner with the most expected catches per cycle, computed from the evaders' exact
  random walk (evaders in the corner when the pair arrives plus evaders stepping in over the next
  `corner_window` cycles, over travel plus window), and moves on when another corner's rate is
  `corner_switch` times higher. (A lone pursuer, n = 1, cannot catch anything and stays put.)
- **Pair expert** (`PursuitViewPair`, what `make_expert` returns at n = 2): the privileged pair
  above picks its corner from every evader's position, which a 7x7 view does not show, and BC and
  IQL-CQL trained on its data scored 11 and 2 normalized (docs/algorithms.md). The view pair
  circles the map's edge clockwise and holds each corner while an evader is near it, from views
  alone; it earns less than the privileged pair (table below) and is kept because what the data
  shows must be learnable from what the agents see.
- **Adversary** (`PursuitAdversary`): every pursuer takes the step that maximises its
  shortest-path distance to the nearest evader (staying on ties), so it never surrounds an
  evader and seldom touches one: the team collects the urgency penalty, -0.1 * n per cycle for
  all 500 cycles, plus stray tag rewards.

Two reward facts for reading the figures: evaders caught in the same cycle pay +5 once per
pursuer that takes part (not once per evader), and every pursuer collects the 0.01 tag reward
for each evader next to it, several times per cycle (PettingZoo recomputes it after each agent's
move), so a pair that stands by a corner earns a few points of tag reward per episode.

Development measurements (PettingZoo 1.27, default options, `evaluate(..., seed=0)`; team return
mean +- std over episodes, evaders caught of 30, episode length)::

    .venv/bin/python -c "from datagen.policies.evaluate import evaluate; \
    from datagen.policies.pursuit import make_expert; \
    r = evaluate('pursuit', 8, make_expert, 50, seed=0); print(r.summary())"

    policy     n   episodes  return           caught        length
    expert     2   50          44.2 +-  29.1  14.3         500
    expert     4   50         447.9 +-  28.6  30            150
    expert     8   50         451.9 +-  32.7  30             85
    expert    16   50         443.3 +-  28.2  30             54
    expert    32   50         426.4 +-  34.4  30             39
    adversary  2   20         -99.0 +-   0.4   0            500
    adversary  4   20        -198.0 +-   0.6   0            500
    adversary  8   20        -396.0 +-   1.3   0            500
    adversary 16   10        -791.4 +-   3.1   0            500
    random     2   20         -93.4 +-   2.6   0.1          500
    random     4   20        -184.8 +-   6.5   0.3          500
    random     8   20        -367.7 +-   9.3   0.7          500
    random    16   10        -706.4 +-  28.0   3.9          500
    random    32    3       -1268.3 +-  24.6  18.3          500
    privileged 2  50          60.8 +-  25.8  15.9 +- 2.5   500
    view pair  4  20         -31.3 +-  41.0  15.6         500
    view pair  8  20        -174.0 +-  34.8  17.8         500

(`make_adversary`, `lambda env: RandomPolicy(5)` or, for the privileged pair,
`lambda env: PursuitExpert(5, 2)` or, for the n = 2 rule played by larger teams,
`lambda env: PursuitViewPair(5)` in place of `make_expert` for the other rows; the n = 2 expert
row is `marl-datagen reference --env pursuit --agents 2 --episodes 50`.)

The privileged group-of-4 controller of REFERENCE section 2 scored more (n=8 about 499), likely
partly by stacking pursuers on catching cells: letting two groups share a target here raised n=16
from about 448 to 473 over 5 episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy comes with pettingzoo[sisl] (pursuit's map code imports it).
from scipy.optimize import linear_sum_assignment

from datagen.policies import ScriptedPolicy, TeamAction

#: (dx, dy) of each action: 0 x-1, 1 x+1, 2 y+1, 3 y-1, 4 stay (PettingZoo's `motion_range`).
MOVES = np.array([[-1, 0], [1, 0], [0, 1], [0, -1], [0, 0]], dtype=np.int64)
STAY = 4
#: Actions in the order ties are broken: staying first, so a pursuer at its goal stays put.
_ORDER = np.array([STAY, 0, 1, 2, 3], dtype=np.int64)
#: Distance standing for "unreachable" (a wall cell, or across walls).
FAR = 10_000


@dataclass(frozen=True)
class Grid:
    """Shortest-path geometry of a pursuit map; cell index c = x * y_size + y.

    Attributes:
        x_size: map width.
        y_size: map height.
        is_open: (C,) bool, whether a cell is free of buildings.
        step: (C, 5) int, the cell an agent reaches from each cell with each action (walls and
            the map's edge make it stay).
        dist: (C, C) int, shortest-path distance between cells, FAR when either is a wall.
        slots: (C, 4) int, the open neighbour cells of each cell, padded with -1.
        need: (C,) int, how many pursuers surround an evader in each cell.
        corners: (K,) int, open cells with exactly two open neighbours.
    """

    x_size: int
    y_size: int
    is_open: np.ndarray
    step: np.ndarray
    dist: np.ndarray
    slots: np.ndarray
    need: np.ndarray
    corners: np.ndarray


def build_grid(map_matrix: np.ndarray) -> Grid:
    """The geometry of a map (`Pursuit.map_matrix`, indexed [x, y], -1 for buildings)."""
    x_size, y_size = map_matrix.shape
    n_cells = x_size * y_size
    xs, ys = np.divmod(np.arange(n_cells), y_size)
    is_open = map_matrix.reshape(-1) != -1
    nx = xs[:, None] + MOVES[None, :, 0]
    ny = ys[:, None] + MOVES[None, :, 1]
    inside = (nx >= 0) & (nx < x_size) & (ny >= 0) & (ny < y_size)
    target = np.where(inside, nx.clip(0, x_size - 1) * y_size + ny.clip(0, y_size - 1), -1)
    valid = inside & is_open[target.clip(0)] & is_open[:, None]
    step = np.where(valid, target, np.arange(n_cells)[:, None])
    moves = valid[:, :STAY]
    slots = np.where(moves, target[:, :STAY], -1)
    # Each open neighbour sorted first, so slots[c, :need[c]] lists them.
    slots = -np.sort(-slots, axis=1)
    need = moves.sum(axis=1)
    dist = np.full((n_cells, n_cells), FAR, dtype=np.int64)
    reached = np.diag(is_open)
    frontier = reached.copy()
    depth = 0
    while frontier.any():
        dist[frontier] = depth
        # A cell joins the frontier when one of its open neighbours is on it (moves are symmetric).
        grown = np.zeros_like(frontier)
        for a in range(STAY):
            grown |= frontier[:, step[:, a]] & moves[None, :, a]
        frontier = grown & ~reached
        reached |= frontier
        depth += 1
    corners = np.flatnonzero(is_open & (need == 2))
    return Grid(x_size, y_size, is_open, step, dist, slots, need, corners)


def base_env(env: Any) -> Any:
    """The env whose positions the privileged policies read, under a TeamEnv (or raw): our
    vectorised `PursuitEnv`, or PettingZoo's base `Pursuit` object."""
    raw = env.unwrapped
    return getattr(raw, "env", raw)


def pursuit_map(base: Any) -> np.ndarray:
    """(x_size, y_size) map, -1 on the building (PettingZoo's `Pursuit.map_matrix`)."""
    engine = getattr(base, "engine", None)
    return base.map_matrix if engine is None else engine.map_matrix


def _cells(layer: Any, y_size: int) -> np.ndarray:
    positions = np.array([agent.current_pos for agent in layer.allies], dtype=np.int64)
    if len(positions) == 0:
        return np.zeros(0, dtype=np.int64)
    return positions[:, 0] * y_size + positions[:, 1]


def pursuer_cells(base: Any) -> np.ndarray:
    """(N,) cell (x * y_size + y) of every pursuer, in agent order."""
    engine = getattr(base, "engine", None)
    if engine is None:
        return _cells(base.pursuer_layer, base.y_size)
    x, y = engine.pursuer_positions()[0].T
    return x * engine.y_size + y


def evaders_gone(base: Any) -> np.ndarray:
    """(E,) bool: the evaders caught so far."""
    engine = getattr(base, "engine", None)
    return np.asarray(base.evaders_gone) if engine is None else ~engine.evader_positions()[1][0]


def evader_cells(base: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ids, cells) of the evaders still in play; ids index `evaders_gone`."""
    engine = getattr(base, "engine", None)
    if engine is None:
        return np.flatnonzero(~base.evaders_gone), _cells(base.evader_layer, base.y_size)
    positions, present = engine.evader_positions()
    ids = np.flatnonzero(present[0])
    x, y = positions[0, ids].T
    return ids, x * engine.y_size + y


def steps_towards(grid: Grid, cells: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """(N,) actions taking each agent one step along a shortest path to its goal cell."""
    reach = grid.step[cells][:, _ORDER]
    return _ORDER[np.argmin(grid.dist[reach, goals[:, None]], axis=1)]


def corner_odds(grid: Grid, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """How a randomly walking evader (five actions, uniform; bumps stay) meets the map's corners.

    Returns:
        inside: (horizon + 1, C, K), the probability that an evader starting in each cell is in
            each corner after t moves.
        entered: (horizon + 1, C, K), the expected number of times it steps into each corner
            from a neighbour within its first t moves.
    """
    n_cells = len(grid.is_open)
    walk = np.zeros((n_cells, n_cells))
    for a in range(len(MOVES)):
        np.add.at(walk, (np.arange(n_cells), grid.step[:, a]), 1.0 / len(MOVES))
    corners = grid.corners
    slots = grid.slots[corners, :2]  # (K, 2)
    columns = np.concatenate([corners, slots.reshape(-1)])
    odds = np.zeros((horizon + 1, n_cells, len(columns)))
    odds[0] = np.eye(n_cells)[:, columns]
    for t in range(horizon):
        odds[t + 1] = walk @ odds[t]
    inside = odds[:, :, : len(corners)]
    near = odds[:, :, len(corners) :].reshape(horizon + 1, n_cells, len(corners), 2).sum(axis=3)
    # From a neighbour, exactly one of the five actions enters the corner.
    entered = np.zeros_like(inside)
    entered[1:] = np.cumsum(near[:-1] / len(MOVES), axis=0)
    return inside, entered


def team_groups(n_agents: int) -> list[np.ndarray]:
    """Split agents 0..n-1 into catching groups: 4 each, remainders of 1-2 as extras of the first
    groups, a remainder of 3 as a group of its own; teams under 4 are one group."""
    if n_agents < 4:
        return [np.arange(n_agents)]
    n_groups, rest = divmod(n_agents, 4)
    sizes = [4] * n_groups
    if rest == 3:
        sizes.append(3)
    else:
        for i in range(rest):
            sizes[i % n_groups] += 1
    bounds = np.cumsum([0, *sizes])
    return [np.arange(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


class PursuitExpert(ScriptedPolicy):
    """Groups of 4 surround one evader each; a pair guards a corner (privileged: reads positions).

    Args:
        n_actions: size of each agent's action space (5).
        n_agents: team size.
        corner_window: cycles of guarding a pair weighs against the travel to a corner.
        corner_switch: how much better (factor) another corner must score before the pair moves.
    """

    def __init__(
        self,
        n_actions: int,
        n_agents: int,
        corner_window: int = 20,
        corner_switch: float = 1.2,
    ) -> None:
        super().__init__(n_actions, "expert", privileged=True)
        self.n_agents = n_agents
        self.groups = team_groups(n_agents)
        self.corner_window = corner_window
        self.corner_switch = corner_switch
        self._grid: Grid | None = None
        self._map_key: bytes | None = None
        self._targets: list[int | None] = [None] * len(self.groups)
        self._corner: int | None = None
        self._corner_odds: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        self._targets = [None] * len(self.groups)
        self._corner = None
        self._ensure_grid(base_env(env))

    def _ensure_grid(self, base: Any) -> Grid:
        matrix = pursuit_map(base)
        key = matrix.tobytes() + bytes(matrix.shape)
        if self._grid is None or key != self._map_key:
            self._grid, self._map_key = build_grid(matrix), key
            self._corner_odds = None
        return self._grid

    def spec(self) -> dict[str, Any]:
        return {
            **super().spec(),
            "groups": [len(group) for group in self.groups],
            "corner_window": self.corner_window,
            "corner_switch": self.corner_switch,
        }

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        base = base_env(env)
        grid = self._ensure_grid(base)
        pursuers = pursuer_cells(base)
        ids, evaders = evader_cells(base)
        goals = pursuers.copy()
        if len(ids) == 0:
            return steps_towards(grid, pursuers, goals)
        cell_of = dict(zip(ids.tolist(), evaders.tolist(), strict=True))
        # Groups whose target is still in play (and catchable by them) keep it.
        taken: set[int] = set()
        for g, members in enumerate(self.groups):
            target = self._targets[g]
            if target is None or target not in cell_of:
                self._targets[g] = None
            elif len(members) < 4 and grid.need[cell_of[target]] > len(members):
                self._targets[g] = None
            else:
                taken.add(target)
        rings: dict[int, list[np.ndarray]] = {}
        for g, members in enumerate(self.groups):
            if len(members) == 2:
                goals[members] = self._guard_corner(grid, pursuers[members], evaders)
                continue
            if len(members) < 2:
                continue
            if self._targets[g] is None:
                self._targets[g] = self._pick_target(grid, pursuers[members], ids, evaders, taken)
                if self._targets[g] is None:
                    continue
                taken.add(self._targets[g])
            rings.setdefault(self._targets[g], []).append(members)
        # More groups than evaders: an idle group waits rather than crowd another group's ring.
        for target, parts in rings.items():
            members = np.concatenate(parts)
            goals[members] = self._ring(grid, pursuers[members], cell_of[target])
        return steps_towards(grid, pursuers, goals)

    @staticmethod
    def _pick_target(
        grid: Grid, members: np.ndarray, ids: np.ndarray, evaders: np.ndarray, taken: set[int]
    ) -> int | None:
        """The untargeted evader nearest to the group (mean shortest-path distance), or None when
        every evader has a group; a group under 4 prefers evaders it can surround."""
        free = ~np.isin(ids, list(taken))
        if not free.any():
            return None
        cost = grid.dist[members][:, evaders].mean(axis=0).astype(np.float64)
        cost += FAR * 4 * (grid.need[evaders] > len(members))
        cost[~free] = np.inf
        return int(ids[np.argmin(cost)])

    @staticmethod
    def _ring(grid: Grid, members: np.ndarray, evader: int) -> np.ndarray:
        """Goal of each member: the evader's open neighbour cells, extras on the evader itself."""
        need = int(grid.need[evader])
        cells = grid.slots[evader, :need]
        if len(members) > need:
            cells = np.concatenate([cells, np.full(len(members) - need, evader)])
        cost = grid.dist[members][:, cells].astype(np.float64) ** 2
        rows, cols = linear_sum_assignment(cost)
        goals = members.copy()
        goals[rows] = cells[cols]
        return goals

    def _guard_corner(self, grid: Grid, members: np.ndarray, evaders: np.ndarray) -> np.ndarray:
        """Goals of a pair: the two open neighbours of the corner it guards.

        The pair heads for the corner with the most expected catches per cycle: the expected
        evaders found in it when the pair arrives plus those stepping into it over the next
        `corner_window` cycles (from the evaders' exact random walk, `corner_odds`), divided by
        the cycles spent (travel plus window). It moves on only when another corner's rate beats
        the current one's by the factor `corner_switch`.
        """
        corners = grid.corners
        if len(corners) == 0:
            return members.copy()
        inside, entered = self._odds(grid)
        # Cycles until both are on the corner's neighbours (they check right after moving).
        to_slots = grid.dist[members][:, grid.slots[corners, :2]]  # (2, K, 2)
        straight = np.maximum(to_slots[0, :, 0], to_slots[1, :, 1])
        crossed = np.maximum(to_slots[0, :, 1], to_slots[1, :, 0])
        horizon = len(inside) - 1
        arrival = np.clip(np.minimum(straight, crossed) - 1, 0, horizon - self.corner_window)
        k = np.arange(len(corners))
        found = inside[arrival[:, None], evaders[None, :], k[:, None]].sum(axis=1)
        end = arrival + self.corner_window
        entering = entered[end[:, None], evaders[None, :], k[:, None]]
        entering -= entered[arrival[:, None], evaders[None, :], k[:, None]]
        rate = (found + entering.sum(axis=1)) / end
        best = int(np.argmax(rate))
        if self._corner is None or rate[best] > self.corner_switch * rate[self._corner]:
            self._corner = best
        return self._ring(grid, members, int(corners[self._corner]))

    def _odds(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        if self._corner_odds is None:
            horizon = grid.x_size + grid.y_size + self.corner_window
            self._corner_odds = corner_odds(grid, horizon)
        return self._corner_odds


class PursuitAdversary(ScriptedPolicy):
    """Every pursuer steps as far as it can from the nearest evader (privileged: reads positions),
    so nothing is ever surrounded."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "adversarial", privileged=True)
        self._grid: Grid | None = None
        self._map_key: bytes | None = None

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        base = base_env(env)
        matrix = pursuit_map(base)
        key = matrix.tobytes() + bytes(matrix.shape)
        if self._grid is None or key != self._map_key:
            self._grid, self._map_key = build_grid(matrix), key
        grid = self._grid
        pursuers = pursuer_cells(base)
        _, evaders = evader_cells(base)
        if len(evaders) == 0:
            return np.full(len(pursuers), STAY, dtype=np.int64)
        reach = grid.step[pursuers][:, _ORDER]
        nearest = grid.dist[reach][:, :, evaders].min(axis=2)
        return _ORDER[np.argmax(nearest, axis=1)]


#: Actions by compass direction (x grows east, y grows south): PettingZoo's `motion_range`.
WEST, EAST, SOUTH, NORTH = 0, 1, 2, 3
#: The clockwise direction of travel along each side of the map, keyed by where the wall is.
CLOCKWISE = {NORTH: EAST, EAST: SOUTH, SOUTH: WEST, WEST: NORTH}
OPPOSITE = {NORTH: SOUTH, SOUTH: NORTH, EAST: WEST, WEST: EAST}


class PairView:
    """One pursuer's view (`(2r+1, 2r+1, 3)`: walls, pursuers, evaders; cell (x+dx, y+dy) at
    `[r + dy, r + dx]`, off-map cells read as wall), with the questions the view pair asks."""

    def __init__(self, view: np.ndarray) -> None:
        self.view = view
        self.r = view.shape[0] // 2

    def at(self, channel: int, offset: tuple[int, int]) -> float:
        """The layer's value at an offset; 0 beyond the view."""
        dx, dy = offset
        if max(abs(dx), abs(dy)) > self.r:
            return 0.0
        return float(self.view[self.r + dy, self.r + dx, channel])

    def walled(self, side: int, k: int) -> bool:
        """Whether the whole line k cells away on one side is wall."""
        dx, dy = MOVES[side]
        line = self.view[:, self.r + dx * k, 0] if dx else self.view[self.r + dy * k, :, 0]
        return bool((line > 0).all())

    def wall_distance(self, side: int) -> int | None:
        """Distance to the nearest wholly walled line on one side, None when none is in view."""
        return next((k for k in range(1, self.r + 1) if self.walled(side, k)), None)

    def on_edge(self, side: int) -> bool:
        """Whether the agent stands on the map's edge on that side: every line beyond is wall and
        the farthest line on the other side is not (which tells the edge from the building)."""
        beyond = all(self.walled(side, k) for k in range(1, self.r + 1))
        return beyond and not self.walled(OPPOSITE[side], self.r)

    def step(self, side: int) -> int:
        """A move to that side, or staying when a wall or a pursuer is there (so the two never
        merge: two pursuers on one cell would see the same view and act alike forever)."""
        ahead = tuple(int(v) for v in MOVES[side])
        return STAY if self.at(0, ahead) > 0 or self.at(1, ahead) > 0 else side


class PursuitViewPair(ScriptedPolicy):
    """The pair expert (n = 2): both pursuers circle the map's edge clockwise together and hold
    each map corner while evaders are near it, reading nothing but their own views.

    A pair can catch only an evader in a map corner, with one pursuer on each of the corner's two
    open neighbours: `before` (on the edge arriving at the corner) and `after` (on the edge leaving
    it). Every decision is a function of one agent's view, the same for both agents, so a shared
    network of the observation can represent the policy exactly (REFERENCE's privileged pair, which
    picks corners from every evader's position, cannot be imitated from 7x7 views;
    docs/algorithms.md measures both). The rules, in order:

    - near a map corner (a wholly walled row and column in view give the agent's cell relative to
      the corner): at `after` with the partner at `before`, both stay while an evader is in the
      corner's 4x4 block (both agents see all of it) and both move on when it is empty; at
      `after` with the partner behind on the edge, wait for it; at `before` or on the corner cell,
      close up to `after` / `before`; a lone agent waits at the (0, 0) corner's `after` cell, which
      is where the pair first meets;
    - on the map's edge, step clockwise;
    - elsewhere, step west, else north (this reaches the edge from every open cell of the
      default map).

    A move onto a cell holding a pursuer waits instead. Measured in docs/datasets.md and
    docs/algorithms.md.

    Args:
        n_actions: size of each agent's action space (5).
        block: side of the square of cells by the corner that the pair watches for evaders.
    """

    def __init__(self, n_actions: int, block: int = 4) -> None:
        super().__init__(n_actions, "expert", privileged=False)
        self.block = block

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "pair": "view", "block": self.block}

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return np.array([self.choose_one(np.asarray(view)) for view in obs], dtype=np.int64)

    def choose_one(self, view: np.ndarray) -> int:
        """The action of one agent from its own view."""
        see = PairView(view)
        distance = {side: see.wall_distance(side) for side in CLOCKWISE}
        for wall_y in (NORTH, SOUTH):
            for wall_x in (WEST, EAST):
                if distance[wall_y] is not None and distance[wall_x] is not None:
                    return self._at_corner(see, distance, wall_y, wall_x)
        return self._travel(see)

    @staticmethod
    def _travel(see: PairView) -> int:
        """Clockwise along the map's edge; off the edge, west, else north."""
        for side in CLOCKWISE:
            if see.on_edge(side):
                return see.step(CLOCKWISE[side])
        return see.step(WEST) if see.at(0, (-1, 0)) == 0 else see.step(NORTH)

    def _at_corner(
        self, see: PairView, distance: dict[int, int | None], wall_y: int, wall_x: int
    ) -> int:
        def shift(cell: tuple[int, int], side: int, k: int = 1) -> tuple[int, int]:
            return cell[0] + k * int(MOVES[side][0]), cell[1] + k * int(MOVES[side][1])

        corner = shift(shift((0, 0), wall_x, distance[wall_x] - 1), wall_y, distance[wall_y] - 1)
        walls = {wall_y, wall_x}
        leaving = next(w for w in walls if CLOCKWISE[w] not in walls)
        out = CLOCKWISE[leaving]
        into = CLOCKWISE[next(w for w in walls if w != leaving)]
        after, before = shift(corner, out), shift(corner, OPPOSITE[into])

        def partner(*cells: tuple[int, int]) -> bool:
            return any(see.at(1, cell) > 0 for cell in cells)

        if (0, 0) == after:
            if partner(before):
                return STAY if self._evader_near(see, corner, walls) else see.step(out)
            behind = [corner] + [shift(before, OPPOSITE[into], k) for k in range(1, see.r + 1)]
            if partner(*behind):
                return STAY
            if partner(*[shift(after, out, k) for k in range(1, see.r + 1)]):
                return see.step(out)
            return STAY if walls == {NORTH, WEST} else see.step(out)
        if (0, 0) == before:
            if partner(after):
                return STAY if self._evader_near(see, corner, walls) else into
            return see.step(into)
        if (0, 0) == corner:
            return see.step(OPPOSITE[into]) if partner(after) else see.step(out)
        return self._travel(see)

    def _evader_near(self, see: PairView, corner: tuple[int, int], walls: set[int]) -> bool:
        """Whether an evader is in the block x block square of cells in the corner."""
        (ix, iy), (jx, jy) = (MOVES[OPPOSITE[w]] for w in sorted(walls))
        return any(
            see.at(2, (corner[0] + i * ix + j * jx, corner[1] + i * iy + j * jy)) > 0
            for i in range(self.block)
            for j in range(self.block)
        )


def _n_actions(env: Any) -> int:
    return int(env.action_space(env.possible_agents[0]).n)


def make_expert(env: Any) -> PursuitExpert | PursuitViewPair:
    """The expert for a TeamEnv from `make_env("pursuit", n)`: the view pair at n = 2 (as strong
    a pair as views allow, and imitable), else the privileged groups of 4."""
    if len(env.possible_agents) == 2:
        return PursuitViewPair(_n_actions(env))
    return PursuitExpert(_n_actions(env), len(env.possible_agents))


def make_adversary(env: Any) -> PursuitAdversary:
    """The adversary for a TeamEnv from `make_env("pursuit", n)`."""
    return PursuitAdversary(_n_actions(env))


def episode_metrics(env: Any) -> dict[str, float]:
    """Evaders caught so far (read at the episode's end)."""
    return {"evaders_caught": float(np.sum(evaders_gone(base_env(env))))}


class PursuitViewTeam(ScriptedPolicy):
    """An observation-only team rule for n >= 4 (exploratory, not wired into `make_expert`).

    Every pursuer reads only its own (7, 7, 3) view (cell (x+dx, y+dy) at `[3 + dy, 3 + dx]`;
    channel 0 walls, 1 pursuers (itself included), 2 evaders) and applies the same rule:

    - evaders in view: for each visible evader, its ring is its open neighbour cells (cells
      beyond the view count as open). Evaders are tried in order of how many ring cells already
      hold a pursuer (most first), then nearest to the agent. For an evader, the visible pursuers
      standing on its ring keep their cells; the free ring cells are matched greedily to the other
      visible pursuers by Manhattan distance, ties broken by each pursuer's and cell's offset from
      the evader (the same order whichever pursuer computes it). The agent takes its matched cell
      and steps along a shortest path (BFS over its view, unknown cells open); when it gets no
      cell at any evader it patrols;
    - patrol (no evader, or no cell): step away from the nearest visible pursuer when one is
      within `spread` cells, else a uniform random open move;
    - every agent also plays a uniform random action with probability `eps` (two pursuers on one
      cell see the same view and would otherwise act alike forever).

    The distribution is a function of the view alone (no index, no memory, `env` is not read).

    Measured (our vectorised engine, `evaluate(..., seed=0)`, defaults; team return mean +- std,
    evaders caught of 30, episode length; privileged = `PursuitExpert`, random = `RandomPolicy`)::

        .venv/bin/python -c "from datagen.policies.evaluate import evaluate; \
        from datagen.policies.pursuit import PursuitViewTeam; \
        print(evaluate('pursuit', 8, lambda env: PursuitViewTeam(5), 20, seed=0).summary())"

        n   episodes  view rule               privileged              random
        4   20          19.1 +- 44.6  14.3  500   444.1 +- 28.6  30  155   -184.8 +-  6.5   0.3
        8   20          99.8 +- 62.1  28.9  459   455.7 +- 27.6  30   84   -367.7 +-  9.3   0.7
        16  20         263.9 +- 50.0  30.0  155   444.9 +- 30.6  30   53   -711.7 +- 25.8   3.3
        32  10 / 20    400.3 +- 23.6  30.0   46   431.1 +- 33.5  30   39  -1268.0 +- 35.4  18.5

    Variants over 10 episodes, within the noise of the defaults: `eps=0.2, spread=5` (n = 4: +0.7,
    13.1 caught), `circle=0.8` (n = 4: +31.6, 14.8; n = 8: +59.7, 27.7), `order="missing"`
    (n = 4: +6.0, 13.7; n = 8: +116.3, 29.2).

    Args:
        n_actions: size of each agent's action space (5).
        eps: probability of a uniform random action.
        spread: distance under which a patrolling pursuer steps away from another.
        circle: weight of the view pair's clockwise walk along the map's edge in a lone patrol
            (0: uniform random open moves only).
        order: which visible evader to try first: "held" (most ring cells held) or "missing"
            (fewest ring cells still free, which favours evaders by walls).
    """

    def __init__(
        self,
        n_actions: int,
        eps: float = 0.1,
        spread: int = 3,
        circle: float = 0.0,
        order: str = "held",
    ) -> None:
        super().__init__(n_actions, "expert", privileged=False)
        self.eps = eps
        self.spread = spread
        self.circle = circle
        self.order = order

    def spec(self) -> dict[str, Any]:
        return {
            **super().spec(),
            "team": "view",
            "eps": self.eps,
            "spread": self.spread,
            "circle": self.circle,
            "order": self.order,
        }

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return np.array([int(np.argmax(self.probs_one(np.asarray(v)))) for v in obs])

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        probs = np.stack([self.probs_one(np.asarray(view)) for view in obs]).astype(np.float32)
        cumulative = probs.cumsum(axis=1)
        draws = rng.random(len(probs))[:, None]
        actions = np.minimum((draws > cumulative).sum(axis=1), self.n_actions - 1)
        return TeamAction(actions.astype(np.int64), probs, np.zeros(len(probs), dtype=np.int8))

    def probs_one(self, view: np.ndarray) -> np.ndarray:
        """(A,) action distribution of one agent from its own view."""
        base = self._rule(view)
        return (1.0 - self.eps) * base + self.eps / self.n_actions

    # -- the rule ---------------------------------------------------------------------------

    def _rule(self, view: np.ndarray) -> np.ndarray:
        r = view.shape[0] // 2
        wall = view[:, :, 0] > 0
        pursuers = np.rint(view[:, :, 1]).astype(np.int64)
        pursuers[r, r] -= 1  # the agent itself
        evaders = [(int(x) - r, int(y) - r) for y, x in np.argwhere(view[:, :, 2] > 0)]

        def closed(dx: int, dy: int) -> bool:
            return max(abs(dx), abs(dy)) <= r and bool(wall[r + dy, r + dx])

        others = [
            (int(x) - r, int(y) - r)
            for y, x in np.argwhere(pursuers > 0)
            for _ in range(int(pursuers[y, x]))
        ]
        team = [(0, 0), *others]  # index 0 is the agent
        if evaders:
            rings = {}
            for ex, ey in evaders:
                cells = [(ex + int(m[0]), ey + int(m[1])) for m in MOVES[:STAY]]
                rings[(ex, ey)] = [c for c in cells if not closed(*c)]
            held = {e: sum(1 for c in ring if c in team) for e, ring in rings.items()}
            if self.order == "missing":
                first = {e: len(ring) - held[e] for e, ring in rings.items()}
            else:
                first = {e: -held[e] for e in rings}
            order = sorted(rings, key=lambda e: (first[e], abs(e[0]) + abs(e[1]), e))
            for e in order:
                goal = self._my_cell(e, rings[e], team)
                if goal is not None:
                    return self._towards(goal, wall, r, avoid=e)
        return self._patrol(others, wall, r)

    @staticmethod
    def _my_cell(
        e: tuple[int, int], ring: list[tuple[int, int]], team: list[tuple[int, int]]
    ) -> tuple[int, int] | None:
        """The ring cell the agent (team[0]) takes at evader e, or None."""
        free = list(ring)
        movers = []
        for i, p in enumerate(team):
            if p in free:
                free.remove(p)  # one pursuer keeps each ring cell
                if i == 0:
                    return p
            else:
                movers.append(i)
        if 0 not in movers or not free:
            return None
        pairs = sorted(
            (
                abs(team[i][0] - c[0]) + abs(team[i][1] - c[1]),
                (team[i][0] - e[0], team[i][1] - e[1]),
                (c[0] - e[0], c[1] - e[1]),
                i,
                c,
            )
            for i in movers
            for c in free
        )
        used_p: set[int] = set()
        used_c: set[tuple[int, int]] = set()
        for _, _, _, i, c in pairs:
            if i in used_p or c in used_c:
                continue
            if i == 0:
                return c
            used_p.add(i)
            used_c.add(c)
        return None

    def _towards(
        self, goal: tuple[int, int], wall: np.ndarray, r: int, avoid: tuple[int, int]
    ) -> np.ndarray:
        """One-hot of the step along a shortest path (BFS over the view padded by one unknown,
        open ring) from the agent to goal; the evader's cell costs extra (it is passable)."""
        probs = np.zeros(self.n_actions)
        if goal == (0, 0):
            probs[STAY] = 1.0
            return probs
        span = r + 2
        dist: dict[tuple[int, int], int] = {goal: 0}
        frontier = [goal]
        while frontier:
            grown = []
            for cx, cy in frontier:
                for m in MOVES[:STAY]:
                    nx, ny = cx + int(m[0]), cy + int(m[1])
                    if max(abs(nx), abs(ny)) > span or (nx, ny) in dist:
                        continue
                    if max(abs(nx), abs(ny)) <= r and wall[r + ny, r + nx]:
                        continue
                    dist[(nx, ny)] = dist[(cx, cy)] + 1 + 2 * ((nx, ny) == avoid)
                    grown.append((nx, ny))
            frontier = grown
        best, choice = FAR, STAY
        for a in (STAY, 0, 1, 2, 3):
            cell = (int(MOVES[a][0]), int(MOVES[a][1]))
            if a != STAY and wall[r + cell[1], r + cell[0]]:
                continue
            d = dist.get(cell, FAR)
            if d < best:
                best, choice = d, a
        probs[choice] = 1.0
        return probs

    def _patrol(self, others: list[tuple[int, int]], wall: np.ndarray, r: int) -> np.ndarray:
        probs = np.zeros(self.n_actions)
        moves = [a for a in range(STAY) if not wall[r + MOVES[a][1], r + MOVES[a][0]]]
        if not moves:
            probs[STAY] = 1.0
            return probs
        near = [p for p in others if abs(p[0]) + abs(p[1]) <= self.spread]
        if near:
            px, py = min(near, key=lambda p: (abs(p[0]) + abs(p[1]), p))
            gain = {a: abs(int(MOVES[a][0]) - px) + abs(int(MOVES[a][1]) - py) for a in moves}
            top = max(gain.values())
            moves = [a for a in moves if gain[a] == top]
        probs[moves] = 1.0 / len(moves)
        if not near and self.circle > 0:
            probs *= 1.0 - self.circle
            probs[PursuitViewPair._travel(PairView(wall[:, :, None] * np.eye(3)[0]))] += self.circle
        return probs


def make_view_team(env: Any) -> PursuitViewTeam:
    """The observation-only team rule (exploratory; `make_expert` does not return it yet)."""
    return PursuitViewTeam(_n_actions(env))
