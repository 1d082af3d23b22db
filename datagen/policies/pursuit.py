"""Behaviour policies for pursuit (PettingZoo `sisl/pursuit-v5`).

Facts the policies rest on (PettingZoo 1.27 source): the 16x16 grid has a 7x9 building in the
middle (x 5..11, y 4..12), so the open cells form a ring. Evaders move uniformly at random (five
actions, bumping into walls means staying) and may step onto pursuers' cells; pursuers may stack.
Each cycle the pursuers move first, then an evader is removed if every open neighbour of its
cell (walls and the building count as closed) holds a pursuer, then the evaders move. So a catch
needs 4 pursuers in the open, 3 by a wall and 2 in a map corner, and the episode ends when every
evader is gone (fewer cycles, less urgency penalty).

- **Expert** (`PursuitViewExpert`, observation-only, the same rule at every team size): each
  pursuer reads only its own 7x7x3 view. It plans for everyone it sees: among the visible
  evaders whose open neighbour cells the visible pursuers can fill, the one completed soonest
  first, each cell to the pursuer standing on it or to the nearest other one (ties by offsets
  from the evader, which every viewer orders alike), until it has a cell, and heads there. With
  3 or more pursuers in view it also closes in on an evader it cannot surround yet; otherwise it
  patrols with the view pair's rule (below). A step never enters a cell that holds a pursuer or
  one next to a pursuer that outranks it, so no two pursuers ever share a cell and the rule is
  deterministic; no index, memory or env internals enter it, so its data is a function of the
  stored observations (details in the class docstring).
- **Privileged** (`PursuitExpert`, `make_privileged`; the expert of datasets made before the
  observation-only expert, at n >= 4): reads the env's positions (`base_env`: our vectorised
  `PursuitEnv`, or PettingZoo's base `Pursuit` object under `implementation=pettingzoo`), the
  whole grid rather than the 7x7 views. The team is split by index into groups of 4 (remainders
  of 1 or 2 join the first groups as extras, a remainder of 3 forms a group of 3). Each group
  keeps a target evader until it is caught, chosen as the untargeted evader nearest to the group
  (a group smaller than 4 only takes evaders by a wall, which it can surround). Every cycle the
  group's members are matched (`scipy.optimize.linear_sum_assignment`, squared shortest-path
  distances) to the target's open neighbour cells, extras to the target's own cell, and each
  pursuer takes one step along a shortest path (BFS round the building) to its cell; spare
  groups wait. No two pursuers are sent to the same catching cell: every pursuer next to an
  evader at a catch earns +5, even stacked ones, and it does not inflate its return that way. A
  pair (n = 2) *guards* the corner with the most expected catches per cycle, computed from the
  evaders' exact random walk (`corner_odds`; `corner_window`, `corner_switch`). It cannot be
  imitated from the views: among the 197 observations that occur more than once in a 20-episode
  n = 4 privileged dataset, 90 carry different behaviour distributions, and a plain BC MLP on it
  scored 2 of 100 normalized at n = 4.
- **Adversary** (`PursuitAdversary`, privileged): every pursuer takes the step that maximises its
  shortest-path distance to the nearest evader (staying on ties), so it never surrounds an
  evader and seldom touches one: the team collects the urgency penalty, -0.1 * n per cycle for
  all 500 cycles, plus stray tag rewards.
- **View pair** (`PursuitViewPair`, observation-only; the n = 2 expert of the version-1 datasets,
  and the expert's patrol): both pursuers circle the map's edge clockwise and hold each map
  corner's two open neighbours while an evader is in the corner's 4x4 block.

Two reward facts for reading the figures: evaders caught in the same cycle pay +5 once per
pursuer that takes part (not once per evader), and every pursuer collects the 0.01 tag reward
for each evader next to it, several times per cycle (PettingZoo recomputes it after each agent's
move), so a pair that stands by a corner earns a few points of tag reward per episode.

References (`marl-datagen reference --env pursuit --agents N --episodes 50`, seed 0, our
vectorised engine; team return mean +- std over episodes, evaders caught of 30, episode length;
% of privileged = the expert's normalized score on the privileged scale,
`normalized_score(..., reference="privileged")`)::

    n   expert                       privileged                  random                   % of
    2     32.3 +- 27.6  13.0  500      60.8 +- 25.8  15.9  500     -93.9 +-  1.8   0.0  500   81.5
    4    114.4 +- 51.8  23.0  500     447.9 +- 28.6  30    150    -186.2 +-  5.0   0.2  500   47.4
    8    197.6 +- 78.1  29.9  334     451.9 +- 32.7  30     85    -368.3 +- 10.7   0.7  500   69.0
    16   248.0 +- 61.4  30    144     443.3 +- 28.2  30     53    -705.8 +- 30.3   3.7  500   83.0
    32   346.8 +- 78.6  30     41     426.4 +- 34.4  30     39   -1267.8 +- 44.4  18.5  500   95.3

The expert plays a 500-cycle episode at n = 4 in about 0.7 s of pure Python on the development
machine (the exploratory view rule it replaced took about 1.2 s).

Learnability (`test_bc_learns_the_expert` in tests/datagen/test_policy_pursuit_views.py): plain BC
(CNN encoder, hidden 128, 4,000 updates) on 20 expert episodes at n = 8 scores 91.3 normalized
at n = 8 (+148.2, 29.9 caught) when it samples its actions, 77 when it acts greedily: its slips
put pursuers on shared cells (per step, 2.6 of the 8 stood on a cell another already held,
against 0.4 sampling), which the expert's data never shows and a greedy policy never leaves.
An MLP (hidden 256, 8,000 updates) scored 80 sampling, 44.5 greedily.

Design measurements (`evaluate(..., seed=0)`; return, caught):

- The view pair alone scores more at n = 2 (+44.7, 14.4 caught, 40 episodes): holding a corner
  with a partner is all a pair can do, and the expert's no-sharing rule delays the pair's moves
  about corners. One rule for every team size is the point, so the pair is the expert's patrol,
  not its n = 2 expert.
- The same rule with a random action (probability 0.5) for a pursuer sharing its cell instead
  of the no-sharing rule scores more (100 episodes: +166.9, 25.4 caught at n = 4; +286.5, 30 at
  n = 8; 20 episodes: +362.6 at n = 16, +426.8 at n = 32) but its strength is in the random
  actions: two pursuers on one cell see one view, so any deterministic policy (a greedy learner
  included) moves them together for good (that rule without its random action: -60.9 at n = 4,
  20 episodes), and BC on its data (n = 4, 20 episodes, MLP) scored 8 normalized acting
  greedily, 59 sampling.
- Giving way whenever another pursuer next to the target cell ranks first by side alone (no
  evader terms in the rank) costs more: +53.5 at n = 4, +129.4 at n = 8 (30 episodes).
- Without the chase (`chase_from` beyond the team): +71.6 at n = 4, +81.8 at n = 8; chasing
  with 2 in view: -45.1 at n = 2 (the pair leaves its corners) (30 episodes).
- The view pair's rule played by larger teams: -31.3 at n = 4, -174.0 at n = 8 (20 episodes).
- The exploratory rule it replaced (each pursuer's own nearest evader first, 10 % random
  actions, random patrol): +19.1 at n = 4, +99.8 at n = 8, 263.9 at n = 16 (20 episodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy comes with pettingzoo[sisl] (pursuit's map code imports it).
from scipy.optimize import linear_sum_assignment

from datagen.policies import ScriptedPolicy

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
    """Groups of 4 surround one evader each; a pair guards a corner (privileged: reads positions;
    the class keeps the name it had when it was the expert at n >= 4, as older datasets record).

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
        super().__init__(n_actions, "privileged", privileged=True)
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
    """The view pair: both pursuers circle the map's edge clockwise together and hold each map
    corner while evaders are near it, reading nothing but their own views. It was the n = 2
    expert of the version-1 datasets (`pursuit-n2-expert-v1`); `PursuitViewExpert` patrols with it.

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

    A move onto a cell holding a pursuer waits instead. Measured in docs/algorithms.md and the
    module docstring.

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


#: Offsets (dx, dy) of the four moves, in action order (west, east, south, north).
STEPS = tuple((int(dx), int(dy)) for dx, dy in MOVES[:STAY])

Cell = tuple[int, int]


class PursuitViewExpert(ScriptedPolicy):
    """The expert at every team size: each pursuer surrounds the evaders it sees together with the
    pursuers it sees, and otherwise patrols as the view pair does, reading nothing but its own view.

    A view is `(7, 7, 3)`: cell (x+dx, y+dy) at `[3 + dy, 3 + dx]`; channel 0 walls (the building
    and off the map), 1 pursuers (counts, the agent included), 2 evaders. Everything below is in
    offsets from the agent, which every viewer of the same cells computes alike (a translation).

    - **Plan.** An evader's ring is its open neighbour cells (cells beyond the view count as
      open). The agent plans for everyone it sees: among the visible evaders whose free ring
      cells the visible pursuers can fill, take the one completed soonest (fewest missing cells,
      then the longest and the total Manhattan distance of a greedy matching, then the evader's
      offset), give each of its ring cells to the pursuer standing on it or to the nearest other
      pursuer (ties by offsets from the evader), and repeat with the pursuers left, until the
      agent has a cell. It heads for that cell along a shortest path (BFS over its view, unknown
      cells open; crossing the evader's cell costs 3).
    - **Chase.** When it gets no cell that way but sees at least `chase_from` pursuers (itself
      included), it plans the same way over every visible evader, those it cannot surround
      included, so three pursuers close in on an evader in the open until a fourth arrives.
    - **Patrol.** Otherwise it acts as `PursuitViewPair`: clockwise along the map's edge, holding
      a corner's two open neighbours with a partner while an evader is by the corner. A pair
      (n = 2) can catch only in map corners, and then this is the whole rule.
    - **Never two on a cell.** A step may not enter a cell that holds a pursuer, nor one next to
      a pursuer that outranks the agent there; then the agent takes the best step left, or stays.
      Rank, first to last: a pursuer off the evaders' cells before one on an evader's cell, one
      next to no evader before one next to an evader (such a pursuer mostly holds a ring cell, so
      making it give way costs least), then by the side of the cell it stands on (west, east,
      south, north). Every pursuer next to the cell sees all that (it lies within 3 cells of
      each), so exactly one of them may enter (measured, the evader terms raised the return from
      +53.5 to +123.5 at n = 4 and from +129.4 to +209.1 at n = 8 over 30 episodes). Pursuers
      start apart, so no two ever share a cell: two on one cell would see the same view and act
      alike for good, which a deterministic rule cannot undo (a random action there would, but a
      learner that acts greedily could not copy it).

    The rule is deterministic and a function of the view alone: no index, no memory, `env` is not
    read, so one network of the observation can represent it at every team size.

    Args:
        n_actions: size of each agent's action space (5).
        chase_from: pursuers in view (the agent included) from which it chases an evader it
            cannot surround with them.
        block: side of the square by a corner the patrolling pair watches (`PursuitViewPair`).
    """

    def __init__(self, n_actions: int, chase_from: int = 3, block: int = 4) -> None:
        super().__init__(n_actions, "expert", privileged=False)
        self.chase_from = chase_from
        self.patrol = PursuitViewPair(n_actions, block)

    def spec(self) -> dict[str, Any]:
        return {
            **super().spec(),
            "team": "view",
            "chase_from": self.chase_from,
            "block": self.patrol.block,
        }

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return np.array([self.action_one(np.asarray(view)) for view in obs], dtype=np.int64)

    def action_one(self, view: np.ndarray) -> int:
        """The action of one agent from its own view."""
        see = PairView(view)
        r = see.r
        walls = {(int(x) - r, int(y) - r) for y, x in zip(*np.nonzero(view[:, :, 0]), strict=True)}
        team: list[Cell] = [(0, 0)]  # index 0 is the agent
        counts = view[:, :, 1]
        for y, x in zip(*np.nonzero(counts), strict=True):
            n_here = int(round(float(counts[y, x]))) - int(y == r and x == r)
            team += [(int(x) - r, int(y) - r)] * n_here
        ys, xs = np.nonzero(view[:, :, 2])
        evaders = sorted((int(x) - r, int(y) - r) for y, x in zip(ys, xs, strict=True))
        if evaders:
            plan = self._plan(evaders, team, walls, complete=True)
            if plan is None and len(team) >= self.chase_from:
                plan = self._plan(evaders, team, walls, complete=False)
            if plan is not None:
                dist = _distances(*plan, walls, r + 2)
                best, choice = dist.get((0, 0), FAR), STAY
                for action, cell in enumerate(STEPS):
                    d = dist.get(cell, FAR)
                    if d < best and _may_enter(see, action):
                        best, choice = d, action
                return choice
        action = self.patrol.choose_one(view)
        return action if action == STAY or _may_enter(see, action) else STAY

    @staticmethod
    def _plan(
        evaders: list[Cell], team: list[Cell], walls: set[Cell], complete: bool
    ) -> tuple[Cell, Cell] | None:
        """(the agent's ring cell, its evader) in the greedy plan for every visible pursuer, or
        None when the agent gets no cell (with `complete`, only evaders the pursuers left can
        surround are taken)."""
        rings = {e: [c for c in _around(e) if c not in walls] for e in evaders}
        left = list(range(len(team)))
        todo = list(evaders)
        while todo:
            best = None
            for e in todo:
                matched = _match(e, rings[e], team, left, complete)
                if matched is not None and (best is None or matched[0] < best[0]):
                    best = (matched[0], e, matched[1])
            if best is None:
                return None
            _, e, cells = best
            if 0 in cells:
                return cells[0], e
            left = [i for i in left if i not in cells]
            todo.remove(e)
        return None


def _distances(goal: Cell, evader: Cell, walls: set[Cell], span: int) -> dict[Cell, int]:
    """Path lengths to `goal` from every cell within `span` of the agent (BFS; walls closed,
    unknown cells open, entering the evader's cell costs 3)."""
    dist = {goal: 0}
    frontier = [goal]
    while frontier:
        grown = []
        for cx, cy in frontier:
            for mx, my in STEPS:
                cell = (cx + mx, cy + my)
                if max(abs(cell[0]), abs(cell[1])) > span or cell in dist or cell in walls:
                    continue
                dist[cell] = dist[(cx, cy)] + (3 if cell == evader else 1)
                grown.append(cell)
        frontier = grown
    return dist


def _rank(see: PairView, cell: Cell, side: int) -> tuple[bool, bool, int]:
    """Who goes first into a cell among the pursuers next to it (lowest first): the pursuer at
    `cell`, standing on the target's `side` (an index of STEPS)."""
    on_evader = see.at(2, cell) > 0
    by_evader = any(see.at(2, (cell[0] + dx, cell[1] + dy)) > 0 for dx, dy in STEPS)
    return on_evader, by_evader, side


def _may_enter(see: PairView, action: int) -> bool:
    """Whether the agent may take a move: its target cell holds no pursuer and no pursuer next
    to it outranks the agent (`_rank`)."""
    tx, ty = STEPS[action]
    if see.at(1, (tx, ty)) > 0:
        return False
    mine = _rank(see, (0, 0), STEPS.index((-tx, -ty)))
    for side, (dx, dy) in enumerate(STEPS):
        cell = (tx + dx, ty + dy)
        if cell != (0, 0) and see.at(1, cell) > 0 and _rank(see, cell, side) < mine:
            return False
    return True


def _around(cell: Cell) -> list[Cell]:
    return [(cell[0] + dx, cell[1] + dy) for dx, dy in STEPS]


def _match(
    e: Cell, ring: list[Cell], team: list[Cell], left: list[int], complete: bool
) -> tuple[tuple, dict[int, Cell]] | None:
    """Pursuers `left` (indices into `team`) on evader e's ring cells: (sort key, {pursuer:
    cell}), or None when `complete` and they are too few to fill it.

    A pursuer on a ring cell keeps it (one per cell); the free cells go greedily to the nearest
    other pursuers (Manhattan), ties by the pursuer's and then the cell's offset from e, which
    every viewer orders alike. The key: cells left unfilled, the longest and the total distance
    of the matching, e's offset.
    """
    cells: dict[int, Cell] = {}
    free = []
    for c in ring:
        holder = next((i for i in left if team[i] == c and i not in cells), None)
        if holder is None:
            free.append(c)
        else:
            cells[holder] = c
    movers = [i for i in left if i not in cells]
    if complete and len(free) > len(movers):
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
    taken: set[Cell] = set()
    longest = total = 0
    for d, _, _, i, c in pairs:
        if i in cells or c in taken:
            continue
        cells[i] = c
        taken.add(c)
        longest, total = max(longest, d), total + d
    return (len(free) - len(taken), longest, total, e), cells


def _n_actions(env: Any) -> int:
    return int(env.action_space(env.possible_agents[0]).n)


def make_expert(env: Any) -> PursuitViewExpert:
    """The observation-only expert, the same rule at every team size."""
    return PursuitViewExpert(_n_actions(env))


def make_privileged(env: Any) -> PursuitExpert:
    """The privileged controller (reads every position) for a TeamEnv from
    `make_env("pursuit", n)`."""
    return PursuitExpert(_n_actions(env), len(env.possible_agents))


def make_adversary(env: Any) -> PursuitAdversary:
    """The adversary for a TeamEnv from `make_env("pursuit", n)`."""
    return PursuitAdversary(_n_actions(env))


def episode_metrics(env: Any) -> dict[str, float]:
    """Evaders caught so far (read at the episode's end)."""
    return {"evaders_caught": float(np.sum(evaders_gone(base_env(env))))}
