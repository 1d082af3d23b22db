"""Behaviour policies for knights_archers_zombies (PettingZoo `butterfly/knights_archers_zombies-v11`).

DRAFT
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo.butterfly.knights_archers_zombies.src import constants as const

from datagen.policies import ScriptedPolicy

FORWARD, BACKWARD, TURN_CCW, TURN_CW, ATTACK, NOTHING = range(6)

# Geometry of the sprites (pixels): zombie 29x31, arrow image 46x46 (its bounding box grows when
# rotated), knight and mace 32x32. Zombies escape (and end the game) past y = 689.
_ZOMBIE_HALF = np.array([14.5, 15.5])
_ARROW_SIDE = 46.0
_ZOMBIE_ESCAPE_Y = 689.0
_TURN_DEG = float(const.PLAYER_ANG_RATE)
_OFFSETS = np.arange(-18, 19)  # candidate headings, in turns from the current one
_FLIGHT = np.arange(1, 25)  # arrow cycles simulated after release
_SWORD_ARCS = np.arange(const.MAX_ARC - const.SWORD_SPEED, const.MIN_ARC - 1, -const.SWORD_SPEED)
_SWORD_REACH = 32.0  # (mace + knight widths) / 2
_MACE_HALF = 16.0
_KNIGHT_STANDOFF = 60.0


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
    first = np.where(hit, when[:, :, None] + 1.0, np.inf).min(axis=1)  # (H, Z)
    return first


def _sword_hits(centre: np.ndarray, heading: float, zombies: np.ndarray, margin: float) -> np.ndarray:
    """(Z,) zombies a swing started now would hit: the mace circles the knight at 32 px from
    heading +40 deg to -60 deg over six cycles while the zombies walk down."""
    sweep = _unit(heading + _SWORD_ARCS)  # (6, 2)
    mace = centre + _SWORD_REACH * sweep  # (6, 2)
    when = np.arange(len(_SWORD_ARCS), dtype=np.float64)
    zombie = zombies[None, :, :] + np.stack([0.0 * when, const.ZOMBIE_Y_SPEED * when], -1)[
        :, None, :
    ]  # (6, Z, 2)
    reach = _MACE_HALF + _ZOMBIE_HALF - margin
    return (np.abs(zombie - mace[:, None, :]) < reach).all(axis=-1).any(axis=0)


def _in_danger(centre: np.ndarray, heading: float, zombies: np.ndarray) -> bool:
    """Whether a zombie could touch a knight at `centre` next cycle (with a sideways wobble)."""
    rad = np.radians(heading)
    half = 16.0 * (abs(np.cos(rad)) + abs(np.sin(rad)))  # rotated 32x32 bounding box
    reach = np.array([half + _ZOMBIE_HALF[0] + const.ZOMBIE_X_SPEED, half + _ZOMBIE_HALF[1] + 10])
    return bool((np.abs(zombies - centre) < reach).all(axis=-1).any())


class KazExpert(ScriptedPolicy):
    """Aim-and-fire archers and chasing knights (privileged)."""

    def __init__(self, n_actions: int, margin: float = 8.0, urgency: float = 0.3) -> None:
        super().__init__(n_actions, "expert", privileged=True)
        self.margin = margin
        self.urgency = urgency
        self.knight_top = 60.0
        self.hand_off = 450.0
        self.urgent_y = 500.0

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        raw = env.unwrapped
        players = [raw.agent_map[agent] for agent in env.possible_agents]
        zombies = _zombies(raw)
        actions = np.full(len(players), NOTHING, dtype=np.int64)
        # Knights pick their zombies first; archers leave a knight's zombie alone while the knight
        # is close to it and the zombie is not yet near the bottom.
        knight_gap = np.full(len(zombies), np.inf)
        for i, player in enumerate(players):
            if alive[i] and player.is_alive and not player.agent_name.startswith("archer"):
                actions[i] = self._knight(player, zombies, knight_gap)
        skip = self._doomed(raw, zombies)
        skip |= (knight_gap < self.hand_off) & (zombies[:, 1] < self.urgent_y)
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
        hits = _arrow_hits(start, heading + _TURN_DEG * _OFFSETS, delay, zombies, self.margin)
        live = ~doomed
        if np.isfinite(hits[_OFFSETS == 0][0][live]).any():
            return ATTACK
        escape = (_ZOMBIE_ESCAPE_Y - zombies[:, 1]) / const.ZOMBIE_Y_SPEED
        cost = hits + self.urgency * escape[None, :]
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

    def _knight(self, player: Any, zombies: np.ndarray, gap: np.ndarray) -> int:
        if player.timeout is not None:
            return NOTHING  # frozen after a swing: every action only counts the freeze down
        centre = np.array(player.rect.center, dtype=np.float64)
        heading = _heading(player.direction)
        ok = zombies[:, 1] > self.knight_top
        if not ok.any():
            # Nothing to chase: face up and hold a line near the bottom.
            err = float(_wrap(0.0 - heading))
            if abs(err) > _TURN_DEG / 2:
                return TURN_CW if err > 0 else TURN_CCW
            return BACKWARD if centre[1] < 560.0 else NOTHING
        if _sword_hits(centre, heading, zombies, 4.0).any():
            return ATTACK
        rel = zombies - centre
        dist = np.hypot(rel[:, 0], rel[:, 1])
        choice = np.where(ok & np.isinf(gap), dist, np.inf)
        if not np.isfinite(choice).any():
            choice = np.where(ok, dist, np.inf)
        z = int(np.argmin(choice))
        gap[z] = min(gap[z], dist[z])
        if _in_danger(centre, heading, zombies):
            # Too close to swing safely: step away from the nearest zombie.
            near = int(np.argmin(dist))
            away = float(_wrap(_heading(rel[near]) - heading))
            return BACKWARD if abs(away) < 90.0 else FORWARD
        # Stand just below the target, facing it: it walks into the swing.
        post = zombies[z] + np.array([0.0, _KNIGHT_STANDOFF])
        post[1] = min(post[1], float(player.y_bot_limit))
        to_post = post - centre
        if np.hypot(*to_post) > 0.5 * const.KNIGHT_SPEED:
            err = float(_wrap(_heading(to_post) - heading))
            if abs(err) > _TURN_DEG / 2:
                return TURN_CW if err > 0 else TURN_CCW
            step = centre + const.KNIGHT_SPEED * _unit(np.array(heading))
            if not _in_danger(step, heading, zombies):
                return FORWARD
        err = float(_wrap(_heading(rel[z]) - heading))
        if abs(err) > _TURN_DEG / 2:
            return TURN_CW if err > 0 else TURN_CCW
        return NOTHING


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


def make_expert(env: Any) -> KazExpert:
    return KazExpert(env.action_space(env.possible_agents[0]).n)


def make_adversary(env: Any) -> KazAdversary:
    return KazAdversary(env.action_space(env.possible_agents[0]).n)


def zombies_spawned(raw: Any) -> int:
    """Zombies spawned this episode (exact while the zombie cap was never reached)."""
    period = raw.zombie_spawn_interval.step_interval
    end = raw.zombie_spawn_interval._current_step
    begin = (end - raw.frames) % period
    return (begin + raw.frames - end) // period


def episode_metrics(env: Any) -> dict[str, float]:
    raw = env.unwrapped
    return {"zombies_killed": float(zombies_spawned(raw) - len(raw.zombie_list))}
