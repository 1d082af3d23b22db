"""Behaviour policies for knights_archers_zombies (PettingZoo `knights_archers_zombies-v11`).

Actions: 0 forward, 1 backward, 2 turn -10 deg (CCW), 3 turn +10 deg (CW), 4 attack, 5 nothing.

- **Expert** (`KazViewExpert`, observation-only). Each agent's action is computed by
  `view_actions` from its own vector view alone (`obs_method="vector"`, as stored in datasets):
  row 0 (its own rect's top-left corner divided by the screen size, and its heading) and the
  zombie slots, which are the view's last `max_zombies` rows at every team size (each a zombie's
  top-left corner relative to the agent's, all zeros when the slot is empty). It reads no other
  row (team-mates, swords, arrows), never the env (`choose` ignores `env` and `alive`: a dead
  agent's view is all zeros and gets NOTHING), keeps no memory, and uses no agent index: the
  same function for every agent and every team size. Centres come back from the corners (a
  zombie's rect is 29x31; an agent's 32x32 image grows to `round(32 (|cos| + |sin|))` a side when
  rotated). The rule: attack when an arrow released now along the heading would hit a zombie
  (the arrow's flight, 45 px a cycle, checked against every zombie walking down 5 px a cycle,
  with the collision boxes shrunk by 8 px a side to absorb the zombies' sideways wobble);
  otherwise turn towards the lowest zombie on screen (the next to escape); with no zombie, face
  up and wait. Archers and knights follow the same rule (a knight's attack is a swing of its
  mace, so knights stand at the bottom as turrets): the vector view does not say which one an
  agent is, except through its row index in a layout that depends on the team split, which a
  set encoder over rows cannot see. The attack action is kept pressed while the heading hits,
  so an archer's cooldown counts down (it only counts on attack calls). The view only goes
  through products, sums, roundings and comparisons, so a view gives bit-identical actions in
  any team and batch.
  Choices measured on the way (n = 2, seed 0, 50 episodes): turning to the nearest zombie
  instead of the lowest let 2 episodes end early (41.74 ± 6.31 kills: a zombie at the far side
  escaped); attacking whenever the heading is the one of the 36 nearest to the nearest zombie
  (no flight check) plays as well, but plain BC did not learn it (8 normalized at n = 2 after
  8,000 updates: the network attacks without aiming and the first zombie escapes).
- **Privileged** (`KazExpert`, the class of the expert of older datasets, which it was): reads
  the game's sprites through `env.unwrapped` (player positions, headings and attack cooldowns,
  zombie positions and wobble counters, arrows in flight). Archers aim and fire: for each of the
  37 headings reachable by turning, the arrow's flight is simulated against every zombie to find
  which heading hits which zombie and when, counting the turns and the cooldown still to serve.
  An archer fires when its current heading hits a zombie, else turns towards the (heading,
  zombie) pair of least cost = cycles to the hit + 0.3 x cycles before the zombie escapes.
  Zombies an arrow in flight will hit are left alone, archers spread over distinct zombies, and
  a zombie a knight is walking into (knight below it, within 450 px, zombie above y = 500) is
  left to the knight. A cooling archer keeps sending attack whenever it has nothing better to
  do, without ever firing a wasted arrow. Knights take the nearest unclaimed zombie that has
  walked past y = 60 (a fresh one could land on them), walk to a post 60 px below it, face it
  and swing when the mace's sweep (+40 to -60 deg around the heading over six cycles) hits it
  with probability >= 0.9 over the zombie's random sideways steps (left 0.4, right 0.3, none
  0.3 every third cycle; none into a wall); a knight that a zombie could touch next cycle steps
  away first. Its choices depend on the agent's type, the cooldowns and the wobble counters,
  none of which a view shows: oracle data and a ceiling, not something to imitate.
- **Adversary** (`KazAdversary`, privileged): archers turn their backs on the zombies (face
  straight down) and shoot into the floor; knights walk into the nearest zombie without ever
  swinging. Nothing stops the first zombie, so the game ends after about 145 cycles with almost
  no kills.

Measured with `marl-datagen reference --env knights_archers_zombies --agents N --episodes 50`
(seed 0, default options, 900 cycles; team return mean ± std per episode; kills = the mean of
`episode_metrics`; % of privileged = the expert's normalized score on the privileged scale,
`normalized_score(..., reference="privileged")`):

    n   policy       team return     zombies killed   episode length   % of privileged
    2   expert       42.88 ± 0.59    42.88            900              99.4
        privileged   43.14 ± 0.75    43.14            900
        random        1.16 ± 0.97     1.16            165
    4   expert       43.54 ± 0.50    43.56            900             100.3
        privileged   43.40 ± 0.63    43.42            900
        random        2.50 ± 1.90     2.54            182
    8   expert       43.52 ± 0.50    43.54            900              99.5
        privileged   43.70 ± 0.46    43.74            900
        random        5.38 ± 3.36     5.48            223
    16  expert       43.70 ± 0.46    43.82            900             100.4
        privileged   43.56 ± 0.50    43.60            900
        random       11.90 ± 6.14    11.98            341

The expert kills 37x, 17x, 7.9x and 3.7x the zombies random kills at n = 2, 4, 8, 16 (target
3x). One episode takes about 1, 2, 4 and 9 s for the expert at n = 2, 4, 8, 16 on the 2-core
machine (the privileged controller about twice that); the n = 16 reference took 21 minutes.

45 zombies spawn in 900 cycles and the last one or two are still walking in when the episode
ends, so both controllers are at the ceiling (random does better at large n only because its
episodes last longer). Plain BC (`bc`, hidden 64, 1,000 updates) on 20 expert episodes at n = 4
plays at 100.1 normalized at n = 4 (43.6 kills, 10 episodes; `test_bc_learns_the_expert`, marked
slow, about 5 minutes; 2,000 updates give the same). At n = 2 the same recipe reaches only 51
and 46 normalized after 1,000 and 2,000 updates (one archer: a single wrong turn lets a zombie
escape and ends the game), so the learnability test trains at n = 4.

`episode_metrics` gives the zombies killed (see `zombies_spawned`), which can exceed the team
return by one: PettingZoo never pays out a kill scored on the last cycle, or by a player who died
in the same cycle. Note that PettingZoo's KAZ does not reset its zombie spawn timer on `reset()`:
a reused env replays a seed exactly only after episodes whose lengths are multiples of
`spawn_delay` (the suite's env restarts the timer on every reset).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo.butterfly.knights_archers_zombies.src import constants as const

from datagen.policies import ScriptedPolicy

FORWARD, BACKWARD, TURN_CCW, TURN_CW, ATTACK, NOTHING = range(6)

# Geometry of the sprites (pixels): zombie 29x31, arrow image 46x46 (its bounding box grows when
# rotated), knight and mace 32x32. A zombie escapes (and ends the game) when its top passes
# y = 689, i.e. its centre passes 704; its centre x stays within [83, 1165] (the walls).
_ZOMBIE_HALF = np.array([14.5, 15.5])
_ARROW_SIDE = 46.0
_ZOMBIE_ESCAPE_Y = 704.0
_ZOMBIE_X_RANGE = (83.0, 1165.0)
_ZOMBIE_LIFE = 137  # cycles from the spawn row (y = 5, 5 px a cycle) past the escape line
_TURN_DEG = float(const.PLAYER_ANG_RATE)
_OFFSETS = np.arange(-18, 19)  # candidate headings, in turns from the current one
_FLIGHT = np.arange(1, 25)  # arrow cycles simulated after release
_SWORD_ARCS = np.arange(const.MAX_ARC - const.SWORD_SPEED, const.MIN_ARC - 1, -const.SWORD_SPEED)
_SWORD_REACH = 32.0  # (mace + knight widths) / 2
_MACE_HALF = 16.0
_KNIGHT_STANDOFF = 60.0
_KNIGHT_ENGAGE = 110.0  # within this distance a knight faces its zombie instead of walking
_KNIGHT_TOP = 60.0  # knights leave zombies above this line alone (fresh ones drop on them)
_SWING_ODDS = 0.9  # a knight swings when a zombie is hit with this chance over the wobbles
_HAND_OFF = 450.0  # archers leave a zombie to a knight this close to it...
_URGENT_Y = 500.0  # ...until the zombie is this far down
_AIM_MARGIN = 8.0  # pixels shaved off each side of the arrow-zombie box when aiming
_URGENCY = 0.3  # archers' target cost: cycles to hit + this * cycles until the zombie escapes
_WOBBLE_STEPS = np.array([-1.0, 0.0, 1.0])  # a zombie's sideways step, in units of 30 px
_WOBBLE_PROBS = np.array([0.4, 0.3, 0.3])


def _heading(direction: Any) -> float:
    """Heading in degrees clockwise from straight up (screen y points down)."""
    return float(np.degrees(np.arctan2(direction[0], -direction[1])))


def _unit(heading_deg: np.ndarray) -> np.ndarray:
    rad = np.radians(heading_deg)
    return np.stack([np.sin(rad), -np.cos(rad)], axis=-1)


def _wrap(deg: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(deg) + 180.0) % 360.0 - 180.0


def _zombies(raw: Any) -> np.ndarray:
    """(Z, 2) centres of the zombies on screen."""
    centres = [zombie.rect.center for zombie in raw.zombie_list]
    return np.array(centres, dtype=np.float64).reshape(-1, 2)


def _wobble_phase(raw: Any) -> np.ndarray:
    """(Z,) each zombie's wobble counter: it steps sideways when the counter reaches 3."""
    return np.array([z.wobble_interval._current_step for z in raw.zombie_list], dtype=np.int64)


def _arrow_hits(
    start: np.ndarray, heading: np.ndarray, delay: np.ndarray, zombies: np.ndarray, margin: float
) -> np.ndarray:
    """Cycle (from now) at which arrows would first hit each zombie, inf if they miss.

    Args:
        start: (2,) where the arrows leave from.
        heading: (H,) arrow headings in degrees.
        delay: (H,) cycles from now until each arrow is released (0: this cycle).
        zombies: (Z, 2) zombie centres now; they walk 5 px down per cycle (their random sideways
            wobble is absorbed by `margin`).
        margin: pixels shaved off the collision box on each side.

    Returns:
        (H, Z) float: the cycle of the hit (release cycle + flight), or inf.
    """
    unit = _unit(heading)  # (H, 2)
    arrow = start + const.ARROW_SPEED * _FLIGHT[None, :, None] * unit[:, None, :]  # (H, K, 2)
    when = delay[:, None] + _FLIGHT[None, :] - 1  # (H, K): cycle of each check
    zombie = (
        zombies[None, None, :, :]
        + np.stack([np.zeros_like(when), const.ZOMBIE_Y_SPEED * when], axis=-1)[:, :, None, :]
    )  # (H, K, Z, 2)
    rad = np.radians(heading)
    half_arrow = 0.5 * _ARROW_SIDE * (np.abs(np.cos(rad)) + np.abs(np.sin(rad)))  # (H,)
    reach = half_arrow[:, None, None, None] + _ZOMBIE_HALF - margin  # (H, 1, 1, 2)
    on_screen = (arrow[..., 0] > 0) & (arrow[..., 0] < const.SCREEN_WIDTH) & (arrow[..., 1] > 0)
    hit = (np.abs(arrow[:, :, None, :] - zombie) < reach).all(axis=-1) & on_screen[:, :, None]
    hit &= zombie[..., 1] <= _ZOMBIE_ESCAPE_Y  # a hit after the zombie escaped is no hit
    first = np.where(hit, when[:, :, None] + 1.0, np.inf).min(axis=1)  # (H, Z)
    return first


def _sword_hits(
    centre: np.ndarray, heading: float, zombies: np.ndarray, phase: np.ndarray, margin: float
) -> np.ndarray:
    """(Z,) chance that a swing started now hits each zombie.

    The mace circles the knight at 32 px from heading +40 deg to -60 deg over six cycles while
    the zombies walk down 5 px a cycle and, every third cycle, step 30 px left (p = 0.4), right
    (0.3) or not at all (0.3); `phase` is each zombie's wobble counter (0..2).
    """
    sweep = _unit(heading + _SWORD_ARCS)  # (6, 2)
    mace = centre + _SWORD_REACH * sweep  # (6, 2)
    cycle = np.arange(len(_SWORD_ARCS))  # (6,)
    # Wobbles seen by the check of cycle c: those at the end of cycles before c.
    first = (3 - phase)[None, :]  # (1, Z) first cycle that sees the first wobble
    n_wobbles = (cycle[:, None] >= first).astype(int) + (cycle[:, None] >= first + 3)  # (6, Z)
    shift = _WOBBLE_STEPS[:, None, None, None] * (n_wobbles >= 1)[None, None]
    shift = shift + _WOBBLE_STEPS[None, :, None, None] * (n_wobbles >= 2)[None, None]  # (3,3,6,Z)
    # A sideways step that would cross a wall is not taken.
    left_ok = zombies[:, 0] - const.ZOMBIE_X_SPEED >= _ZOMBIE_X_RANGE[0]
    right_ok = zombies[:, 0] + const.ZOMBIE_X_SPEED <= _ZOMBIE_X_RANGE[1]
    shift = np.where((shift < 0) & ~left_ok, 0.0, shift)
    shift = np.where((shift > 0) & ~right_ok, 0.0, shift)
    zx = zombies[:, 0] + const.ZOMBIE_X_SPEED * shift
    zy = zombies[:, 1] + const.ZOMBIE_Y_SPEED * cycle[:, None]  # (6, Z)
    reach = _MACE_HALF + _ZOMBIE_HALF - margin
    hit_x = np.abs(zx - mace[:, 0, None]) < reach[0]
    hit_y = np.abs(zy - mace[:, 1, None]) < reach[1]
    hit = (hit_x & hit_y).any(axis=2)  # (3, 3, Z)
    weight = _WOBBLE_PROBS[:, None] * _WOBBLE_PROBS[None, :]  # (3, 3)
    return (weight[:, :, None] * hit).sum(axis=(0, 1))


def _in_danger(centre: np.ndarray, heading: float, zombies: np.ndarray) -> bool:
    """Whether a zombie could touch a knight at `centre` next cycle (with a sideways wobble)."""
    rad = np.radians(heading)
    half = 16.0 * (abs(np.cos(rad)) + abs(np.sin(rad)))  # rotated 32x32 bounding box
    reach = np.array([half + _ZOMBIE_HALF[0] + const.ZOMBIE_X_SPEED, half + _ZOMBIE_HALF[1] + 10])
    return bool((np.abs(zombies - centre) < reach).all(axis=-1).any())


class KazExpert(ScriptedPolicy):
    """Aim-and-fire archers and chasing knights (privileged: reads the game's sprites; the class
    keeps the name it had when it was the expert, as recorded in older datasets)."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "privileged", privileged=True)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        players = [raw.agent_map[agent] for agent in env.possible_agents]
        zombies = _zombies(raw)
        actions = np.full(len(players), NOTHING, dtype=np.int64)
        # Knights pick their zombies first; archers leave a knight's zombie alone while the knight
        # is close to it and the zombie is not yet near the bottom.
        knight_gap = np.full(len(zombies), np.inf)
        taken = np.zeros(len(zombies), dtype=bool)
        phase = _wobble_phase(raw)
        for i, player in enumerate(players):
            if alive[i] and player.is_alive and not player.agent_name.startswith("archer"):
                actions[i] = self._knight(player, zombies, phase, taken, knight_gap)
        skip = self._doomed(raw, zombies)
        skip |= (knight_gap < _HAND_OFF) & (zombies[:, 1] < _URGENT_Y)
        claimed = np.zeros(len(zombies), dtype=bool)
        for i, player in enumerate(players):
            if alive[i] and player.is_alive and player.agent_name.startswith("archer"):
                actions[i] = self._archer(player, zombies, skip, claimed)
        return actions

    def _doomed(self, raw: Any, zombies: np.ndarray) -> np.ndarray:
        """(Z,) zombies that an arrow already in flight will hit."""
        doomed = np.zeros(len(zombies), dtype=bool)
        if not len(zombies):
            return doomed
        for player in raw.agent_map.values():
            if not player.agent_name.startswith("archer"):
                continue
            for arrow in player.weapons:
                start = np.array(arrow.rect.center, dtype=np.float64)
                hits = _arrow_hits(
                    start, np.array([_heading(arrow.direction)]), np.zeros(1), zombies, 4.0
                )[0]
                if np.isfinite(hits).any():
                    doomed[int(np.argmin(hits))] = True
        return doomed

    def _archer(
        self, player: Any, zombies: np.ndarray, doomed: np.ndarray, claimed: np.ndarray
    ) -> int:
        timeout = player.timeout
        # Attack calls until one fires: the cooldown only counts down on attack calls.
        calls = 1 if timeout is None else timeout.step_interval - timeout._current_step
        idle_attack = ATTACK if calls > 1 else NOTHING  # count the cooldown down without firing
        if not len(zombies):
            return idle_attack
        heading = _heading(player.direction)
        start = np.array(player.rect.center, dtype=np.float64)
        delay = np.abs(_OFFSETS) + calls - 1
        hits = _arrow_hits(start, heading + _TURN_DEG * _OFFSETS, delay, zombies, _AIM_MARGIN)
        live = ~doomed
        if np.isfinite(hits[_OFFSETS == 0][0][live]).any():
            return ATTACK
        escape = (_ZOMBIE_ESCAPE_Y - zombies[:, 1]) / const.ZOMBIE_Y_SPEED
        cost = hits + _URGENCY * escape[None, :]
        cost[:, doomed] = np.inf
        free = cost[:, ~claimed]
        if np.isfinite(free).any():
            cost = np.where(claimed[None, :], np.inf, cost)
        if not np.isfinite(cost).any():
            # Nothing in reach: face the most urgent zombie meanwhile.
            target = int(np.argmax(zombies[:, 1]))
            rel = zombies[target] - start
            err = _wrap(_heading(rel) - heading)
            if abs(err) <= _TURN_DEG / 2:
                return idle_attack
            return TURN_CW if err > 0 else TURN_CCW
        h, z = np.unravel_index(int(np.argmin(cost)), cost.shape)
        claimed[z] = True
        offset = int(_OFFSETS[h])
        if offset == 0:
            return ATTACK
        return TURN_CW if offset > 0 else TURN_CCW

    def _knight(
        self,
        player: Any,
        zombies: np.ndarray,
        phase: np.ndarray,
        taken: np.ndarray,
        gap: np.ndarray,
    ) -> int:
        if player.timeout is not None:
            return NOTHING  # frozen after a swing: every action only counts the freeze down
        centre = np.array(player.rect.center, dtype=np.float64)
        heading = _heading(player.direction)
        ok = zombies[:, 1] > _KNIGHT_TOP
        if not ok.any():
            # Nothing to chase: face up and hold a line near the bottom.
            err = float(_wrap(0.0 - heading))
            if abs(err) > _TURN_DEG / 2:
                return TURN_CW if err > 0 else TURN_CCW
            return BACKWARD if centre[1] < 560.0 else NOTHING
        if (_sword_hits(centre, heading, zombies, phase, 2.0) >= _SWING_ODDS).any():
            return ATTACK
        rel = zombies - centre
        dist = np.hypot(rel[:, 0], rel[:, 1])
        choice = np.where(ok & ~taken, dist, np.inf)
        if not np.isfinite(choice).any():
            choice = np.where(ok, dist, np.inf)
        z = int(np.argmin(choice))
        # Claim it; a knight below its zombie (the zombie walks into it) takes it off the archers.
        gap[z] = min(gap[z], dist[z] if rel[z][1] < 0 else np.inf)
        taken[z] = True
        if _in_danger(centre, heading, zombies):
            # Too close to swing safely: take the step that gets furthest from the zombies.
            moves = centre + const.KNIGHT_SPEED * np.array([1.0, -1.0])[:, None] * _unit(
                np.array(heading)
            )
            clearance = [np.min(np.hypot(*(zombies - m).T)) for m in moves]
            if max(clearance) > dist.min():
                return FORWARD if clearance[0] >= clearance[1] else BACKWARD
        if dist[z] > _KNIGHT_ENGAGE:
            # Stand just below the target, facing it: it walks into the swing.
            post = zombies[z] + np.array([0.0, _KNIGHT_STANDOFF])
            post[1] = min(post[1], float(player.y_bot_limit))
            to_post = post - centre
            err = float(_wrap(_heading(to_post) - heading))
            if abs(err) > _TURN_DEG / 2:
                return TURN_CW if err > 0 else TURN_CCW
            step = centre + const.KNIGHT_SPEED * _unit(np.array(heading))
            if not _in_danger(step, heading, zombies):
                return FORWARD
        err = float(_wrap(_heading(rel[z]) - heading))
        if abs(err) > _TURN_DEG / 2:
            return TURN_CW if err > 0 else TURN_CCW
        if rel[z][1] > 0:  # the target is below: it will not walk into the swing, go to it
            step = centre + const.KNIGHT_SPEED * _unit(np.array(heading))
            if not _in_danger(step, heading, zombies):
                return FORWARD
        return NOTHING


# --- Observation-only expert -------------------------------------------------------------------

_SCALE = np.array([const.SCREEN_WIDTH, const.SCREEN_HEIGHT], dtype=np.float64)
_PLAYER_SIDE = 32.0  # archer and knight images, before rotation
_ZOMBIE_CENTRE = np.array([14.0, 15.0])  # pygame's centre of a 29x31 rect: x + 29 // 2, y + 31 // 2
_UP = np.array([0.0, -1.0])
_HALF_TURN_COS = float(np.cos(np.radians(_TURN_DEG / 2)))


def _shot_hits(
    start: np.ndarray, unit: np.ndarray, zombies: np.ndarray, margin: float
) -> np.ndarray:
    """Which zombies an arrow released now by each agent would hit: `_arrow_hits` for a team of
    views, one heading each, given as a unit vector.

    Args:
        start: (N, 2) where each agent's arrow leaves from (its centre).
        unit: (N, 2) each agent's heading (x right, y down).
        zombies: (N, Z, 2) zombie centres; absent ones must be masked by the caller.
        margin: pixels shaved off the collision box on each side.

    Returns:
        (N, Z) bool.
    """
    flight = const.ARROW_SPEED * _FLIGHT  # (K,)
    arrow = start[:, None, :] + flight[None, :, None] * unit[:, None, :]  # (N, K, 2)
    zombie_y = zombies[:, None, :, 1] + const.ZOMBIE_Y_SPEED * (_FLIGHT - 1)[None, :, None]
    half_arrow = 0.5 * _ARROW_SIDE * np.abs(unit).sum(axis=-1)  # (N,)
    reach = half_arrow[:, None] + (_ZOMBIE_HALF - margin)  # (N, 2)
    on_screen = (arrow[..., 0] > 0) & (arrow[..., 0] < const.SCREEN_WIDTH) & (arrow[..., 1] > 0)
    hit = np.abs(arrow[..., 0, None] - zombies[:, None, :, 0]) < reach[:, None, None, 0]
    hit &= np.abs(arrow[..., 1, None] - zombie_y) < reach[:, None, None, 1]  # (N, K, Z)
    hit &= on_screen[..., None] & (zombie_y <= _ZOMBIE_ESCAPE_Y)
    return hit.any(axis=1)


def view_actions(obs: np.ndarray, n_zombie_rows: int) -> np.ndarray:
    """The observation-only expert's action of each agent, from its own vector view alone.

    Every agent follows the same rule, archer or knight (a knight's shot is a swing of its
    mace): attack when an arrow released now along its heading would hit a zombie (its flight
    simulated against the zombies walking down); otherwise turn towards the lowest zombie on
    screen (the next to escape), clockwise when it lies clockwise of the heading; with no zombie
    on screen, face up and wait. A dead agent's view is all zeros: NOTHING. Only products, sums,
    roundings and comparisons touch the view (no trigonometry), so one view gives bit-identical
    actions in any team or batch.

    Args:
        obs: (N, R, 5) vector views (row 0 the agent: 0, x, y of its rect's top-left corner
            normalised by the screen size, heading; the last `n_zombie_rows` rows the zombie
            slots: distance, top-left corner relative to the agent's, heading; all-zero rows for
            empty slots).
        n_zombie_rows: the env's `max_zombies`.

    Returns:
        (N,) int64 actions.
    """
    obs = np.asarray(obs, dtype=np.float64)
    me = obs[:, 0]  # (N, 5)
    unit = me[:, 3:5]  # (N, 2)
    corner = me[:, 1:3] * _SCALE  # (N, 2) top-left corner, px: the rect grows as it rotates
    side = np.round(_PLAYER_SIDE * np.abs(unit).sum(axis=-1))  # (N,) the rotated image's side
    centre = corner + (side // 2)[:, None]
    slots = obs[:, -n_zombie_rows:]  # (N, Z, 5)
    present = slots.any(axis=-1)  # (N, Z)
    zombies = corner[:, None, :] + np.rint(slots[..., 1:3] * _SCALE) + _ZOMBIE_CENTRE  # (N, Z, 2)

    fire = (_shot_hits(centre, unit, zombies, _AIM_MARGIN) & present).any(axis=1)  # (N,)
    lowest = np.argmax(np.where(present, slots[..., 2], -np.inf), axis=1)  # (N,) next to escape
    to_lowest = zombies[np.arange(len(obs)), lowest] - centre  # (N, 2)
    cross = unit[:, 0] * to_lowest[:, 1] - unit[:, 1] * to_lowest[:, 0]  # > 0: clockwise
    aim = np.where(cross > 0, TURN_CW, TURN_CCW)
    # Face up: turn until the heading is within half a turn step of straight up.
    upright = (unit * _UP).sum(axis=-1) >= _HALF_TURN_COS
    face_up = np.where(upright, NOTHING, np.where(unit[:, 0] < 0, TURN_CW, TURN_CCW))
    actions = np.where(fire, ATTACK, np.where(present.any(axis=1), aim, face_up))
    return np.where(me.any(axis=1), actions, NOTHING).astype(np.int64)


class KazViewExpert(ScriptedPolicy):
    """Aim-and-fire for every agent, from its own vector view alone (not privileged).

    Args:
        n_actions: size of each agent's action space (6).
        n_zombie_rows: the env's `max_zombies`: the zombie slots are the views' last rows.
    """

    def __init__(self, n_actions: int, n_zombie_rows: int) -> None:
        super().__init__(n_actions, "expert", privileged=False)
        self.n_zombie_rows = n_zombie_rows

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        del env, alive  # a function of each agent's view: a dead agent's view is all zeros
        return view_actions(obs, self.n_zombie_rows)


class KazAdversary(ScriptedPolicy):
    """Archers turn their backs on the zombies (face straight down) and shoot into the floor;
    knights walk into the nearest zombie without ever swinging (privileged)."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "adversarial", privileged=True)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        zombies = _zombies(raw)
        actions = np.full(len(alive), NOTHING, dtype=np.int64)
        for i, agent in enumerate(env.possible_agents):
            player = raw.agent_map[agent]
            if not (alive[i] and player.is_alive):
                continue
            heading = _heading(player.direction)
            archer = agent.startswith("archer")
            if archer:
                want = 180.0
            elif len(zombies):
                rel = zombies - np.array(player.rect.center, dtype=np.float64)
                want = _heading(rel[int(np.argmin(np.hypot(rel[:, 0], rel[:, 1])))])
            else:
                continue
            err = float(_wrap(want - heading))
            if abs(err) > _TURN_DEG / 2:
                actions[i] = TURN_CW if err > 0 else TURN_CCW
            else:
                actions[i] = ATTACK if archer else FORWARD
        return actions


def make_expert(env: Any) -> KazViewExpert:
    """The observation-only expert (`KazViewExpert`); reads only the env's `max_zombies` option,
    which fixes where the zombie rows of a view start."""
    n_zombie_rows = int(env.options.get("max_zombies", 10))
    return KazViewExpert(env.action_space(env.possible_agents[0]).n, n_zombie_rows)


def make_privileged(env: Any) -> KazExpert:
    return KazExpert(env.action_space(env.possible_agents[0]).n)


def make_adversary(env: Any) -> KazAdversary:
    return KazAdversary(env.action_space(env.possible_agents[0]).n)


def zombies_spawned(raw: Any) -> int | None:
    """Zombies spawned in the episode just played, or None when that cannot be known.

    The spawn timer (`zombie_spawn_interval`, never reset between episodes) ticks once a cycle
    while fewer than `max_zombies` zombies are on screen. A zombie ends the game `_ZOMBIE_LIFE`
    cycles after it spawns, so with the default options (a spawn every 20 cycles, cap 10) at most
    8 are ever on screen, the timer never pauses, and the spawns follow from the cycles played and
    the timer's final count. When the cap could be reached the count is unknown.
    """
    timer = raw.zombie_spawn_interval
    period = timer.step_interval
    if -(-_ZOMBIE_LIFE // period) + 1 >= raw.max_zombies:
        return None
    end = timer._current_step
    begin = (end - raw.frames) % period
    return (begin + raw.frames - end) // period


def episode_metrics(env: Any) -> dict[str, float]:
    """Zombies killed in the episode just played: spawned minus still on screen (zombies leave
    the screen only when killed). Exact with the default options; empty when not computable.

    It can exceed the team return by one now and then: a kill scored on the last cycle, or by a
    player killed in the same cycle, is never paid out as a reward by PettingZoo.
    """
    raw = env.unwrapped
    spawned = zombies_spawned(raw)
    if spawned is None:
        return {}
    return {"zombies_killed": float(spawned - len(raw.zombie_list))}
