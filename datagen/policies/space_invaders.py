"""Behaviour policies for space_invaders (PettingZoo `atari/space_invaders-v2` at n = 2, Gymnasium
`ALE/SpaceInvaders-v5` at n = 1, both behind sticky actions 0.25 and frame skip 4).

The expert is **privileged**: it reads the Atari 2600's RAM through the ALE (`ale.getRAM()`), not
the 84x84 observations. Addresses, found by stepping the emulator and matching RAM bytes against
the screen (`tests/datagen/test_policy_space_invaders.py` checks them against the screen again):

    16       alien descent; the top alien row's top edge is at screen y = 31 + 2 * ram[16]
    17       aliens left in the wave
    18..23   one byte per alien row, bottom row first; bit c set = the alien of column c (from
             the left) is alive; rows are 18 px apart, aliens 8 px wide and 10 px tall
    26       alien block x: column c's left edge is at screen x = ram[26] - 1 + 16 c
    28, 29   player 1 and 2 x (35 .. 117); the sprite spans x - 1 .. x + 6 at y 185 .. 194, and
             its bullet leaves at screen x = ram[28 + i] + 3, from y = 174, 2 px a frame
    81, 82   the two enemy bullets' y (top edge at 2 * value + 5, 8 px long, 1 px a frame down);
             a value above 100 means the slot is empty
    83, 84   their x (screen x = value - 2)

The game draws enemy bullets and player bullets on alternate frames, and with a frame skip of 4 a
policy always sees the same parity: at n = 1 the observed frames hardly ever show an enemy bullet
(7 of 359 in one random episode; at n = 2, 328 of 328), so RAM is the only reliable source.

Facts of the game that shape the policies: players move 0.5 px a frame (2 px a decision); the
team shares three lives (both counters drop together) and each hit pays +200 to the partner in
the two-player game; aliens are worth 5 (bottom row) to 30 (top row).

- **Expert** (`SpaceInvadersExpert`). Each decision, every player (1) lists the alien columns still
  alive and, for each, where its lowest alien will be when a bullet fired now reaches it (the
  block's drift measured from `ram[26]`'s last changes); the two players of n = 2 take distinct
  columns, the pair with the least total walk; (2) checks a few movement plans (stay, or walk
  4 .. 82 px left or right and stop) against both enemy bullets' paths through its row, and takes
  the safe plan that ends nearest its column, or, when none is safe, the one hit latest; (3) fires
  whenever its bullet would meet the lowest alien of some column. It never lets itself be hit on
  purpose: the partner's +200 is not sought.
- **Adversary** (`SpaceInvadersAdversary`): never fires and walks under the nearest enemy bullet
  (or, with none in the air, under the alien block's centre), so the team loses its lives fast
  and shoots no aliens. In the two-player game each hit still pays the partner 200, which the
  adversary cannot avoid.

Episodes are capped at the env's default `max_cycles` of 10,000 frames (2,500 decisions): the
expert rarely dies, and uncapped its two-player episodes ran 4,700 to 7,100 decisions (26 s each)
for 8,800 to 13,800 points, while random play ends by about 2,500 frames either way.

Reference figures (`marl-datagen reference --env space_invaders --episodes 50`, seed 0, team return
mean ± std, alien points and team lives lost per episode, decisions per episode):

    n  policy   team return       alien points  lives lost  length
    1  random    172.0 ±  98.8     172.0        3.00          551
       expert   1311.8 ± 717.2    1311.8        2.52         1508
    2  random    862.5 ± 158.6     262.5        3.00          452
       expert   4105.9 ± 273.1    3925.9        0.90         2471

The expert scores 7.6x random at n = 1 and 4.8x at n = 2 (15x random's alien points). Its weak
spot is the last alien of a wave: it moves 5 px every 4 frames, 2.5 times a player's speed, and a
lone player often misses it until it lands, which ends the game (in the single-player game the
landing takes every remaining life at once, counted in lives lost; in the two-player game the game
just ends). That is why the single-player expert's returns spread so widely.

The adversary (3 episodes, `evaluate(..., seed=0)`): 0 at n = 1, 600 at n = 2 (three partner
bonuses, no alien points).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datagen.policies import ScriptedPolicy

NOOP, FIRE, RIGHT, LEFT, RIGHT_FIRE, LEFT_FIRE = range(6)
_MOVE = {0: NOOP, 1: RIGHT, -1: LEFT}
_MOVE_FIRE = {0: FIRE, 1: RIGHT_FIRE, -1: LEFT_FIRE}

# RAM addresses (see the module docstring).
RAM_DESCENT = 16
RAM_ALIENS_LEFT = 17
RAM_ROWS = slice(18, 24)
RAM_BLOCK_X = 26
RAM_PLAYER_X = (28, 29)
RAM_ENEMY_BULLET_Y = (81, 82)
RAM_ENEMY_BULLET_X = (83, 84)

N_ROWS = N_COLUMNS = 6
PLAYER_MIN_X, PLAYER_MAX_X = 35, 117
PLAYER_SPEED = 0.5  # px a frame
PLAYER_TOP, PLAYER_BOTTOM = 185, 194
BULLET_OFFSET = 3  # a player's bullet leaves at x + 3
BULLET_START_Y = 174
BULLET_SPEED = 2.0  # px a frame, up
ENEMY_BULLET_LEN = 8
ENEMY_BULLET_SPEED = 1.0  # px a frame, down
ENEMY_BULLET_EMPTY = 100  # larger y values mean an empty slot
ALIEN_WIDTH, ALIEN_HEIGHT = 8, 10
COLUMN_PITCH, ROW_PITCH = 16, 18
FRAMES_PER_DECISION = 4  # the pipeline's frame skip

#: Plans checked against enemy bullets: walk this far (px), then stop.
_PLAN_DISTANCES = (4, 8, 12, 16, 24, 40, 82)
_DODGE_MARGIN = 2.0  # extra px on each side of the player when checking for hits
_AIM_TOLERANCE = 3.0  # |bullet x - alien centre| at which a player fires
ROW_COST = 24.0  # px of walk one row of height is worth when picking columns


def ale_of(env: Any) -> Any:
    """The `ale_py.ALEInterface` under a space_invaders env built by `make_env` (either game)."""
    raw = env.unwrapped
    if hasattr(raw, "ale"):
        return raw.ale
    return raw.env.unwrapped.ale


def read_state(ram: np.ndarray) -> dict[str, Any]:
    """The game state the policies use, decoded from the 128 RAM bytes.

    Returns:
        players: (2,) player x (RAM units, see the module docstring).
        alive: (6, 6) bool aliens, [row, column], row 0 at the bottom.
        rows_top: (6,) screen y of each row's top edge.
        columns_left: (6,) screen x of each column's left edge.
        bullets: (K, 3) enemy bullets in the air, (x, top y, bottom y) on screen.
    """
    ram = ram.astype(np.int64)
    bits = ram[RAM_ROWS]
    alive = ((bits[:, None] >> np.arange(N_COLUMNS)[None, :]) & 1).astype(bool)
    top = 31 + 2 * ram[RAM_DESCENT]
    rows_top = top + ROW_PITCH * (N_ROWS - 1 - np.arange(N_ROWS))
    columns_left = ram[RAM_BLOCK_X] - 1 + COLUMN_PITCH * np.arange(N_COLUMNS)
    bullets = [
        (ram[ax] - 2, 2 * ram[ay] + 5, 2 * ram[ay] + 5 + ENEMY_BULLET_LEN - 1)
        for ay, ax in zip(RAM_ENEMY_BULLET_Y, RAM_ENEMY_BULLET_X, strict=True)
        if ram[ay] <= ENEMY_BULLET_EMPTY
    ]
    return {
        "players": ram[list(RAM_PLAYER_X)],
        "alive": alive,
        "rows_top": rows_top,
        "columns_left": columns_left,
        "bullets": np.array(bullets, dtype=np.float64).reshape(-1, 3),
    }


def first_hit(x: float, direction: int, distance: float, bullets: np.ndarray) -> float:
    """Frames until an enemy bullet hits a player at RAM x `x` who walks `distance` px in
    `direction` (then stands), or `inf` when none does."""
    earliest = np.inf
    for bx, top, bottom in bullets:
        enter = max(0.0, (PLAYER_TOP - bottom) / ENEMY_BULLET_SPEED)
        leave = (PLAYER_BOTTOM - top) / ENEMY_BULLET_SPEED + 1
        if leave < 0:
            continue
        # The player's x over [enter, leave] spans [lo, hi] (it walks monotonically).
        ends = [
            np.clip(x + direction * min(PLAYER_SPEED * t, distance), PLAYER_MIN_X, PLAYER_MAX_X)
            for t in (enter, leave)
        ]
        lo, hi = min(ends), max(ends)
        # The sprite covers x - 1 .. x + 6: a bullet at bx hits x in [bx - 6, bx + 1].
        if hi >= bx - 6 - _DODGE_MARGIN and lo <= bx + 1 + _DODGE_MARGIN:
            earliest = min(earliest, enter)
    return earliest


def safest_move(x: float, goal: float, bullets: np.ndarray) -> int:
    """The first move (-1, 0, +1) of the safe plan ending nearest `goal`; with no safe plan, of
    the plan hit latest."""
    plans = [(0, 0.0)] + [(d, float(s)) for d in (1, -1) for s in _PLAN_DISTANCES]
    best, best_key = 0, None
    for direction, distance in plans:
        end = np.clip(x + direction * distance, PLAYER_MIN_X, PLAYER_MAX_X)
        if direction and end == x:
            continue
        hit = first_hit(x, direction, distance, bullets)
        safe = hit == np.inf
        key = (not safe, -hit if not safe else abs(end - goal), distance)
        if best_key is None or key < best_key:
            best, best_key = direction, key
    if best_key is not None and not best_key[0] and abs(x - goal) < 1 and best != 0:
        # At the goal and safe standing: stand.
        if first_hit(x, 0, 0.0, bullets) == np.inf:
            return 0
    return best


class BlockDrift:
    """The alien block's horizontal speed (px a frame, signed), measured from `ram[26]` since the
    block last turned, over at most `window` decisions."""

    def __init__(self, window: int = 16) -> None:
        self.window = window
        self.frame = 0
        self.samples: list[tuple[int, int]] = []
        self.direction = 0

    def update(self, block_x: int) -> float:
        if self.samples:
            step = block_x - self.samples[-1][1]
            if step and np.sign(step) != self.direction:
                # Turned at a wall (or started): measure afresh from here.
                self.direction = int(np.sign(step))
                self.samples = []
        self.samples.append((self.frame, block_x))
        self.samples = self.samples[-self.window :]
        self.frame += FRAMES_PER_DECISION
        (f0, x0), (f1, x1) = self.samples[0], self.samples[-1]
        if f1 - f0 < 2 * FRAMES_PER_DECISION or x1 == x0:
            return 0.0
        return (x1 - x0) / (f1 - f0)


BLOCK_MIN_X, BLOCK_MAX_X = 23, 130  # ram[26] range of a block whose only live column is 0


def reflect(x: float, lo: float, hi: float) -> float:
    """Where a point that moved to `x` unbounded is after bouncing between `lo` and `hi`."""
    if hi <= lo:
        return lo
    period = 2 * (hi - lo)
    y = (x - lo) % period
    return lo + (period - y if y > hi - lo else y)


def column_targets(
    state: dict[str, Any], drift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each column with a live alien: the player x that puts a bullet fired now through the
    middle of its lowest alien when the bullet gets there (the block bounces between the walls).

    Returns:
        columns: (C,) column indices.
        goals: (C,) player x (RAM units).
        rows: (C,) the row of each column's lowest alien (0 = bottom).
    """
    alive = state["alive"]
    columns = np.flatnonzero(alive.any(axis=0))
    if len(columns) == 0:
        return columns, np.zeros(0), np.zeros(0, dtype=np.int64)
    # The block turns when its outermost live column reaches a wall.
    lo = BLOCK_MIN_X - COLUMN_PITCH * columns[0]
    hi = BLOCK_MAX_X - COLUMN_PITCH * columns[-1]
    block_x = state["columns_left"][0] + 1
    goals, rows = [], []
    for c in columns:
        row = int(np.flatnonzero(alive[:, c])[0])
        rows.append(row)
        bottom = state["rows_top"][row] + ALIEN_HEIGHT - 1
        flight = max(0.0, (BULLET_START_Y - bottom) / BULLET_SPEED) + 1
        moved = reflect(block_x + drift * flight, lo, hi)
        centre = moved - 1 + COLUMN_PITCH * c + (ALIEN_WIDTH - 1) / 2
        goals.append(centre - BULLET_OFFSET)
    return columns, np.array(goals, dtype=np.float64), np.array(rows, dtype=np.int64)


def assign_columns(players: np.ndarray, goals: np.ndarray, rows: np.ndarray) -> list[int]:
    """Index into `goals` for each player: distinct when there are enough, least total cost =
    walk + `ROW_COST` per row above the bottom (the lowest aliens land first and end the game)."""
    n_players, n_goals = len(players), len(goals)
    cost = np.abs(players[:, None] - goals[None, :]) + ROW_COST * rows[None, :]  # (P, G)
    if n_players == 1 or n_goals == 1:
        return [int(np.argmin(cost[i])) for i in range(n_players)]
    best, best_cost = None, np.inf
    for a in range(n_goals):
        for b in range(n_goals):
            if a != b and cost[0, a] + cost[1, b] < best_cost:
                best, best_cost = [a, b], cost[0, a] + cost[1, b]
    return best


class SpaceInvadersExpert(ScriptedPolicy):
    """Dodge, walk under the nearest alien column (distinct columns for two players), fire when
    aligned; privileged (reads the ALE RAM)."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "expert", privileged=True)
        self.drift = BlockDrift()

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        self.drift = BlockDrift()

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        ram = ale_of(env).getRAM()
        state = read_state(ram)
        drift = self.drift.update(int(ram[RAM_BLOCK_X]))
        players = state["players"][: len(alive)].astype(np.float64)
        _, goals, rows = column_targets(state, drift)
        if len(goals) == 0:
            return np.full(len(alive), NOOP, dtype=np.int64)
        assignment = assign_columns(players, goals, rows)
        actions = np.full(len(alive), NOOP, dtype=np.int64)
        for i, x in enumerate(players):
            goal = goals[assignment[i]]
            # A block faster than the player cannot be chased: wait where it will come back.
            if abs(drift) >= PLAYER_SPEED and np.sign(goal - x) == np.sign(drift):
                goal = x
            goal = float(np.clip(goal, PLAYER_MIN_X, PLAYER_MAX_X))
            move = safest_move(x, goal, state["bullets"])
            aligned = np.abs(goals - x).min() <= _AIM_TOLERANCE
            actions[i] = (_MOVE_FIRE if aligned else _MOVE)[move]
        return actions


class SpaceInvadersAdversary(ScriptedPolicy):
    """Never fire; the first player stands under the enemy bullet nearest the ground (else under
    the alien block), the second keeps out of the bullets' way."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "adversarial", privileged=True)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        state = read_state(ale_of(env).getRAM())
        players = state["players"][: len(alive)].astype(np.float64)
        bullets = state["bullets"]
        actions = np.full(len(alive), NOOP, dtype=np.int64)
        x = players[0]
        if len(bullets):
            # Centre the sprite (x - 1 .. x + 6) under the lowest bullet.
            goal = bullets[np.argmax(bullets[:, 2]), 0] - 2.5
        else:
            goal = state["columns_left"][0] + (COLUMN_PITCH * (N_COLUMNS - 1) + ALIEN_WIDTH) / 2
        if abs(goal - x) >= 1:
            actions[0] = RIGHT if goal > x else LEFT
        for i in range(1, len(players)):
            # Every hit pays the partner 200, so the team scores least when only one is hit.
            actions[i] = _MOVE[safest_move(players[i], players[i], bullets)]
        return actions


def make_expert(env: Any) -> SpaceInvadersExpert:
    return SpaceInvadersExpert(env.action_space(env.possible_agents[0]).n)


def make_adversary(env: Any) -> SpaceInvadersAdversary:
    return SpaceInvadersAdversary(env.action_space(env.possible_agents[0]).n)


def _bcd(byte: int) -> int:
    return (byte >> 4) * 10 + (byte & 0x0F)


def team_score(ram: np.ndarray, n_players: int) -> int:
    """The players' scores shown on screen, summed: player i's is BCD in ram[102 + i]
    (hundreds) and ram[104 + i] (units); it wraps at 10,000."""
    return sum(100 * _bcd(int(ram[102 + i])) + _bcd(int(ram[104 + i])) for i in range(n_players))


def lives_lost(env: Any) -> int:
    """Team lives lost so far (the two players of n = 2 share three lives)."""
    ale = ale_of(env)
    lives = ale.allLives()[0] if len(env.possible_agents) == 2 else ale.lives() - 1
    return int(2 - lives)


def episode_metrics(env: Any) -> dict[str, float]:
    """Alien points (score from destroying aliens and the mothership) and team lives lost.

    At n = 2 every hit pays the partner 200; the score holds no count of hits, so alien points
    are the score minus 200 per life lost. Two hits within one death (rare: about one random
    episode in six) count 200 too many as alien points.
    """
    ram = ale_of(env).getRAM()
    n_players = len(env.possible_agents)
    lost = lives_lost(env)
    bonus = 200 * lost if n_players == 2 else 0
    return {"alien_points": float(team_score(ram, n_players) - bonus), "lives_lost": float(lost)}
