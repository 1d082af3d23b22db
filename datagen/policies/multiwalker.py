"""Behaviour policies for multiwalker (PettingZoo `sisl/multiwalker-v9` with discrete torques).

Action encoding (`datagen.envs.registry.multiwalker_action_table`, 3 torque levels): action
k = 27 a0 + 9 a1 + 3 a2 + a3 where a_j = level_j + 1 and level_j in {-1, 0, +1} is the torque of
joint j (0 hip of leg 0, 1 knee of leg 0, 2 hip of leg 1, 3 knee of leg 1); action 40 is all zeros.
Physically a level of +-1 runs the joint's motor at full torque (80) towards +-its top speed and 0
leaves the joint limp, so a joint can never be held by a small torque: it is pushed or let go.

- **Expert** (`MultiwalkerExpert`, observation-only: each walker's action distribution is a
  function of its own current observation alone — no agent index, no team size, no memory — so
  one policy serves every team size): a memoryless SIMBICON-style walking controller (Yin, Loken &
  van de Panne, 2007) per walker. The gait phase is read from the body instead of a state machine:
  with the front foot down and the legs at least `spread` apart, the front leg has just landed and
  stands while the back leg swings; otherwise the leg whose knee is clearly more bent swings;
  otherwise (both knees straight: the swing leg placing ahead) the back leg stands. The swing leg
  swings (knee bent) until its world thigh angle passes `swing_until`, then places (knee
  straight). The swing hip tracks a world-frame leg angle corrected by SIMBICON's balance feedback
  (distance from the stance foot to the hip, hull speed); the stance hip holds the hull level; the
  stance knee is locked straight; no hip drives a leg beyond `max_leg` (a leg swung higher touches
  the package, which ends the episode). Coordination: a walker with two neighbours steps longer
  when it lags the midpoint between them (observations 24 and 26, rescaled by the nominal spacing,
  so no team size is needed); the team's end walkers just walk. Each joint's desired continuous
  torque u in [-1, 1] becomes a distribution over the three torque levels, sign(u) with
  probability |u| and 0 otherwise (the expected torque is u), and `behaviour_probs` is their
  product over the 81 joint-actions; the action is sampled from it with the episode's rng. Falls
  that remain: walkers kneeling on a bent knee under the package, neighbours drifting into each
  other, and, in large teams, a leg or the package's end meeting the rolling terrain. The phase
  rules and `max_leg` were chosen on development seeds (run seeds 7, 11 and 13), disjoint from the
  evaluation seed 0; the other gains are the former expert's.
- **Former expert** (`MultiwalkerStatefulExpert`, reachable by no quality, kept for comparison):
  the same gait driven by a per-walker finite state machine (a swing of a fixed number of steps,
  then placing until the swing foot's contact flag comes on; a walker landing well ahead of the
  offset from the package it started with waits on both feet), each walker's station computed
  from its index in the team, and the torques quantised by sigma-delta (each joint's rounding
  error carried to the next step). It reads no env internals, but keeps memory a learner cannot
  see: identical observations never repeat in its data (0 repeats in 2 episodes). Its gains were
  tuned by hand and by random local search on training seeds. 50 episodes, seed 0: +19 / +25 / +3
  / -10 / -509 at n = 2 / 3 / 4 / 5 / 10.
- **Adversary** (`MultiwalkerAdversary`): every walker drives both hips forward and bends both
  knees at full torque (constant action 60), so the whole team sits back onto the ground in the same
  step, dragging the package backwards: the termination penalty, every walker's fall penalty and a
  backward package motion, every episode.

The measured figures — expert, random and doing nothing (action 40) at every ladder count — are
in docs/datasets.md, produced by `marl-datagen reference --env multiwalker` (which also plays the
`REFERENCE_BASELINES` below) and `marl-datagen cards`. Measured with
`marl-datagen reference --env multiwalker --agents N --episodes 50` (seed 0) for N = 2, 3, 4, 5
and 10: team return mean +- std (package distance, share of episodes ending in a fall); the former
expert on the same episode seeds for comparison

    n    expert                     random          doing nothing   former expert
    2     -13 +- 107 (3.9, 22 %)    -184 +- 73      -195 +- 2        +19 +- 64
    3     -25 +- 156 (3.5, 22 %)    -296 +- 73      -293 +- 5        +25 +- 89
    4     -85 +- 225 (2.9, 32 %)    -408 +- 58      -387 +- 8         +3 +- 137
    5    -158 +- 291 (2.4, 40 %)    -519 +- 9       -487 +- 11       -10 +- 169
    10   -755 +- 476 (1.0, 78 %)   -1026 +- 13      -992 +- 28      -509 +- 497

The adversary, `evaluate("multiwalker", n, make_adversary, 50, seed=0)`: -232 / -343 / -447 / -551
/ -1066. Medium, `marl-datagen calibrate --env multiwalker --agents N --episodes 10`: epsilon
0.25 / 0.25 / 0.51 / 0.22 at n = 2 / 3 / 4 / 5, normalised 56 / 30 / 34 / 44 (10 episodes a probe:
one fall moves a score by tens of points, so the probes are not monotone in epsilon at n = 4).
The memoryless expert is weaker than the former one (more falls), the price of reading
the gait phase from the body; it still beats random and doing nothing at every count, and it can
be imitated: plain BC on 20 of its episodes at n = 2 scores 109.5 normalized at n = 2
(tests/datagen/test_policy_multiwalker.py::test_bc_learns_the_expert).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from datagen.policies import ScriptedPolicy, TeamAction

N_JOINTS = 4
#: Every joint limp.
ZERO_ACTION = 40
#: Both hips forward, both knees bent, full torque: the adversary's action.
SIT_BACK_ACTION = 60
_PLACE = np.array([27, 9, 3, 1], dtype=np.int64)

# Observation layout (the first 24 values are the single-agent BipedalWalker's).
_HULL_ANGLE, _HULL_ANGULAR_SPEED, _SPEED_X = 0, 1, 2
_HIP = np.array([4, 9])
_HIP_SPEED = np.array([5, 10])
_KNEE = np.array([6, 11])  # knee joint angle + 1
_KNEE_SPEED = np.array([7, 12])
_CONTACT = np.array([8, 13])
_NEIGHBOUR_DX = (24, 26)  # (neighbour x - walker x) / package length: behind, ahead
_PACKAGE_DX = 28  # (package x - walker x) / package length

# Geometry and scales of PettingZoo's multiwalker_base (SCALE = 30, FPS = 50).
_LEG_LENGTH = 34 / 30  # each of the upper and lower leg
_HIP_SPEED_MAX, _KNEE_SPEED_MAX = 4.0, 6.0  # rad/s at observation value 1
_ANGULAR_SPEED_SCALE = 25.0  # observation 1 = 2 * omega / FPS
_SPEED_X_SCALE = 0.3 * (600 / 30) / 50  # observation 2 = vx * this
_WALKER_SPACING = 10 * 14 / 30  # WALKER_SEPERATION * TERRAIN_STEP


def package_length(n_walkers: int) -> float:
    """The package's length in world units (PACKAGE_LENGTH / SCALE * n / 1.75)."""
    return 240 / 30 * n_walkers / 1.75


def encode(levels: np.ndarray) -> np.ndarray:
    """(N, 4) per-joint torque levels in {-1, 0, 1} -> (N,) action indices."""
    return (np.asarray(levels, dtype=np.int64) + 1) @ _PLACE


def decode(actions: np.ndarray) -> np.ndarray:
    """(N,) action indices -> (N, 4) per-joint torque levels in {-1, 0, 1}."""
    actions = np.asarray(actions, dtype=np.int64)
    return (actions[:, None] // _PLACE) % 3 - 1


@dataclass(frozen=True)
class LegGains:
    """The SIMBICON constants both walking controllers share (angles in rad, speeds in world
    units per second).

    Attributes:
        swing_angle: world angle of the swing leg while it swings (positive: forward).
        place_angle: world angle of the swing leg while it is placed.
        swing_d, place_d: balance gain on the hip's distance ahead of the stance foot.
        swing_v, place_v: balance gain on the hull's speed above `speed`.
        swing_knee, place_knee: knee angle targets of the swing leg while swinging and placing.
        stance_knee: stance knee target (above the joint limit -0.1: locked straight).
        hip_kp, hip_kd, knee_kp, knee_kd: joint PD gains (torque per rad, per rad/s).
        hull_kp, hull_kd: PD gains holding the hull at `lean`.
        speed: target speed.
    """

    swing_angle: float = 0.5
    place_angle: float = -0.315
    swing_d: float = 0.11
    swing_v: float = 0.2
    place_d: float = 2.071
    place_v: float = 0.0
    swing_knee: float = -1.1
    place_knee: float = -0.05
    stance_knee: float = 0.3
    hip_kp: float = 2.648
    hip_kd: float = 0.451
    knee_kp: float = 3.0
    knee_kd: float = 0.2
    hull_kp: float = 3.0
    hull_kd: float = 0.724
    lean: float = 0.0
    speed: float = 0.763


@dataclass(frozen=True)
class GaitGains(LegGains):
    """The former (stateful) expert's constants beyond `LegGains` (swinging is its state 0,
    placing its state 1).

    Attributes:
        swing_steps: env steps of state 0 (swing the leg forward).
        station_speed: extra target speed per unit of station lag.
        station_place: extra swing angle per unit of station lag.
        min_steps: steps of a stride before a swing foot's contact may end it.
        speed_smoothing: weight of the newest speed reading in the smoothed speed.
        max_speed: bound of the target speed.
        wait_lag: a walker landing this far ahead of its station waits on both feet...
        resume_lag: ...until it is less than this far ahead.
        wait_angle: world angle of each leg of the waiting A-frame.
    """

    swing_steps: int = 12
    station_speed: float = 0.0
    station_place: float = 0.2
    min_steps: int = 4
    speed_smoothing: float = 1.0
    max_speed: float = 3.0
    wait_lag: float = 1.0
    resume_lag: float = 0.3
    wait_angle: float = 0.45


@dataclass(frozen=True)
class WalkGains(LegGains):
    """The memoryless expert's constants beyond `LegGains`.

    Attributes:
        spread: legs at least this far apart (world thigh angles) with the front foot down: the
            front leg has landed and stands, the back leg swings.
        knee_gap: otherwise a knee bent this much more than the other marks the swing leg...
        swing_until: ...and the swing leg swings (knee bent) until its world thigh angle passes
            this, then places (knee straight).
        station: extra swing angle per world unit the walker lags the midpoint of its neighbours.
        max_leg: bound of every leg's world angle: the swing target is clipped to it and a hip
            never drives its leg beyond it (a leg swung higher can touch the package, which ends
            the episode).
    """

    spread: float = 0.3
    knee_gap: float = 0.3
    swing_until: float = 0.3
    station: float = 0.1
    max_leg: float = 1.0


def neighbour_lag(obs: np.ndarray) -> float:
    """How far (world units) a walker lags the midpoint of its two neighbours; 0 at a team's end.

    The neighbours' offsets (observations 24 and 26, behind and ahead, divided by the package
    length; exactly 0 where there is none) are rescaled by the nominal spacing, so the result
    needs no team size: lag = spacing * (behind + ahead) / (ahead - behind).
    """
    behind, ahead = float(obs[_NEIGHBOUR_DX[0]]), float(obs[_NEIGHBOUR_DX[1]])
    if behind == 0.0 or ahead == 0.0 or ahead - behind <= 0.0:
        return 0.0
    return _WALKER_SPACING * (behind + ahead) / (ahead - behind)


class MultiwalkerExpert:
    """Memoryless SIMBICON-style walking: each walker's torque distribution is a function of its
    own observation alone (module docstring).

    Args:
        n_actions: size of the action space (81 with 3 torque levels).
        gains: the controller's constants.
    """

    labels = ("expert",)

    def __init__(self, n_actions: int, gains: WalkGains | None = None) -> None:
        if n_actions != 3**N_JOINTS:
            raise ValueError(
                f"the multiwalker expert needs 3 torque levels (81 actions), got {n_actions}"
            )
        self.n_actions = n_actions
        self.gains = gains or WalkGains()

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        """Memoryless: nothing to clear."""

    def torques_one(self, obs: np.ndarray) -> tuple[float, float, float, float]:
        """Desired torques in [-1, 1] (hip 0, knee 0, hip 1, knee 1) of one walker.

        Scalar arithmetic on one observation row, so the result cannot depend on the rest of the
        team (numpy's vector kernels may round an element differently by its place in an array).
        """
        g = self.gains
        angle = float(obs[_HULL_ANGLE])
        angle_v = float(obs[_HULL_ANGULAR_SPEED]) * _ANGULAR_SPEED_SCALE
        speed = float(obs[_SPEED_X]) / _SPEED_X_SCALE
        hip = [float(obs[i]) for i in _HIP]
        hip_v = [float(obs[i]) * _HIP_SPEED_MAX for i in _HIP_SPEED]
        knee = [float(obs[i]) - 1.0 for i in _KNEE]
        knee_v = [float(obs[i]) * _KNEE_SPEED_MAX for i in _KNEE_SPEED]
        contact = [float(obs[i]) > 0.5 for i in _CONTACT]
        thighs = [angle + hip[0], angle + hip[1]]  # world angle of each upper leg
        front = 0 if thighs[0] >= thighs[1] else 1

        # The gait phase, read from the body: a front foot down with the legs apart has just
        # landed and stands; otherwise the leg with the clearly more bent knee swings; otherwise
        # (both knees straight: the swing leg placing ahead) the back leg stands.
        if contact[front] and thighs[front] - thighs[1 - front] > g.spread:
            stance = front
        elif abs(knee[0] - knee[1]) > g.knee_gap:
            stance = 0 if knee[0] > knee[1] else 1
        else:
            stance = 1 - front
        swing = 1 - stance
        swinging = thighs[swing] < g.swing_until

        # Balance feedback: how far the hip is ahead of the stance foot, and the speed error.
        foot = _LEG_LENGTH * (math.sin(thighs[stance]) + math.sin(thighs[stance] + knee[stance]))
        ahead = -foot
        over = speed - g.speed
        if swinging:
            leg_angle = g.swing_angle + g.swing_d * ahead + g.swing_v * over
        else:
            leg_angle = g.place_angle + g.place_d * ahead + g.place_v * over
        leg_angle += g.station * neighbour_lag(obs)
        leg_angle = min(g.max_leg, max(-g.max_leg, leg_angle))
        swing_torque = g.hip_kp * (leg_angle - thighs[swing]) - g.hip_kd * hip_v[swing]
        hull_torque = g.hull_kp * (g.lean - angle) - g.hull_kd * angle_v
        hip_u = [0.0, 0.0]
        hip_u[swing] = swing_torque
        hip_u[stance] = -hull_torque - swing_torque
        for j in (0, 1):  # no hip drives its leg beyond max_leg
            if thighs[j] > g.max_leg:
                hip_u[j] = min(hip_u[j], g.hip_kp * (g.max_leg - thighs[j]))
            elif thighs[j] < -g.max_leg:
                hip_u[j] = max(hip_u[j], g.hip_kp * (-g.max_leg - thighs[j]))
        knee_target = [0.0, 0.0]
        knee_target[swing] = g.swing_knee if swinging else g.place_knee
        knee_target[stance] = g.stance_knee
        knee_u = [g.knee_kp * (knee_target[j] - knee[j]) - g.knee_kd * knee_v[j] for j in (0, 1)]
        u = (hip_u[0], knee_u[0], hip_u[1], knee_u[1])
        return tuple(min(1.0, max(-1.0, x)) for x in u)  # type: ignore[return-value]

    def probs_one(self, obs: np.ndarray) -> np.ndarray:
        """(81,) action distribution of one walker from its own observation: each joint, on its
        own, takes the torque level sign(u) with probability |u| and 0 otherwise, so its expected
        torque is the desired u."""
        probs = np.ones(1)
        for u in self.torques_one(obs):
            push = abs(u)
            levels = np.array([push if u < 0 else 0.0, 1.0 - push, push if u > 0 else 0.0])
            probs = np.outer(probs, levels).ravel()  # joint 0 most significant, as `encode`
        return probs

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        probs = np.stack([self.probs_one(row) for row in np.asarray(obs)]).astype(np.float32)
        cumulative = probs.cumsum(axis=1)
        draws = rng.random(len(probs))[:, None]
        actions = np.minimum((draws > cumulative).sum(axis=1), self.n_actions - 1)
        return TeamAction(actions.astype(np.int64), probs, np.zeros(len(probs), dtype=np.int8))

    def spec(self) -> dict[str, Any]:
        return {
            "name": "expert",
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "privileged": False,
            "labels": list(self.labels),
            "weights_sha256": None,
            "gains": asdict(self.gains),
            "quantisation": "per-joint distribution",
        }


class MultiwalkerStatefulExpert(ScriptedPolicy):
    """The former expert: per-walker SIMBICON-style walking with a finite state machine, a start
    station and sigma-delta torque quantisation (module docstring). Not observation-only (it keeps
    memory and knows each walker's index), so no quality builds it; kept for comparison.

    Args:
        n_actions: size of the action space (81 with 3 torque levels).
        n_walkers: team size.
        gains: the controller's constants.
    """

    def __init__(self, n_actions: int, n_walkers: int, gains: GaitGains | None = None) -> None:
        super().__init__(n_actions, "stateful_expert", privileged=False)
        if n_actions != 3**N_JOINTS:
            raise ValueError(
                f"the multiwalker expert needs 3 torque levels (81 actions), got {n_actions}"
            )
        self.n_walkers = n_walkers
        self.gains = gains or GaitGains()
        index = np.arange(n_walkers)
        # Each walker's starting offset of the package centre, in world units.
        self.station = _WALKER_SPACING * ((n_walkers - 1) / 2 - index)
        self.plen = package_length(n_walkers)
        self._clear()

    def _clear(self) -> None:
        n = self.n_walkers
        self.stance = np.zeros(n, dtype=np.int64)  # which leg stands
        self.state = np.zeros(n, dtype=np.int64)  # 0 swing, 1 place, 2 wait
        self.timer = np.zeros(n, dtype=np.int64)  # steps since the stride began
        self.speed = np.zeros(n)  # smoothed hull speed
        self.carry = np.zeros((n, N_JOINTS))  # sigma-delta rounding error

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        """Start every walker's gait, smoothed speed and rounding error afresh."""
        self._clear()

    def torques(self, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """(N, 4) desired continuous torques in [-1, 1]; advances the gait state of live walkers."""
        g = self.gains
        n = self.n_walkers
        rows = np.arange(n)
        hip, hip_v = obs[:, _HIP], obs[:, _HIP_SPEED] * _HIP_SPEED_MAX
        knee, knee_v = obs[:, _KNEE] - 1.0, obs[:, _KNEE_SPEED] * _KNEE_SPEED_MAX
        contact = obs[:, _CONTACT] > 0.5
        angle = obs[:, _HULL_ANGLE]
        angle_v = obs[:, _HULL_ANGULAR_SPEED] * _ANGULAR_SPEED_SCALE
        speed = obs[:, _SPEED_X] / _SPEED_X_SCALE
        self.speed = np.where(alive, self.speed + g.speed_smoothing * (speed - self.speed), 0.0)

        # The finite state machine: swing for swing_steps, then place until the foot lands.
        timer = self.timer + 1
        state = np.where((self.state == 0) & (timer >= g.swing_steps), 1, self.state)
        landed = (state == 1) & contact[rows, 1 - self.stance] & (timer >= g.min_steps)
        stance = np.where(landed, 1 - self.stance, self.stance)
        # How far the walker is behind its station under the package (negative: ahead of it).
        lag = (obs[:, _PACKAGE_DX] * self.plen) - self.station
        # A walker landing well ahead of its station waits on both feet until the team catches up.
        state = np.where(landed, np.where(lag < -g.wait_lag, 2, 0), state)
        state = np.where((state == 2) & (lag > -g.resume_lag), 0, state)
        timer = np.where(landed | (state == 2), 0, timer)
        self.stance = np.where(alive, stance, self.stance)
        self.state = np.where(alive, state, self.state)
        self.timer = np.where(alive, timer, self.timer)
        st, sw = self.stance, 1 - self.stance

        # Balance feedback: how far the hip is ahead of the stance foot, and the speed error.
        thighs = angle[:, None] + hip  # world angle of each upper leg
        feet = _LEG_LENGTH * (np.sin(thighs) + np.sin(thighs + knee))  # foot x - hip x
        ahead = -feet[rows, st]
        target = np.clip(g.speed + g.station_speed * lag, -g.max_speed, g.max_speed)
        over = self.speed - target
        swinging = self.state == 0
        leg_angle = np.where(
            swinging,
            g.swing_angle + g.swing_d * ahead + g.swing_v * over,
            g.place_angle + g.place_d * ahead + g.place_v * over,
        )
        leg_angle = leg_angle + g.station_place * lag
        swing_torque = g.hip_kp * (leg_angle - angle - hip[rows, sw]) - g.hip_kd * hip_v[rows, sw]
        hull_torque = g.hull_kp * (g.lean - angle) - g.hull_kd * angle_v
        hip_u = np.zeros((n, 2))
        hip_u[rows, sw] = swing_torque
        hip_u[rows, st] = -hull_torque - swing_torque
        # Waiting: both feet planted in an A-frame (front leg forward, back leg back), hull level.
        waiting = self.state == 2
        frame = np.full((n, 2), -g.wait_angle)
        frame[rows, np.argmax(thighs, axis=1)] = g.wait_angle
        hold = g.hip_kp * (frame - thighs) - g.hip_kd * hip_v - hull_torque[:, None] / 2
        hip_u[waiting] = hold[waiting]
        knee_target = np.zeros((n, 2))
        knee_target[rows, sw] = np.where(swinging, g.swing_knee, g.place_knee)
        knee_target[rows, st] = g.stance_knee
        knee_target[waiting] = g.stance_knee
        knee_u = g.knee_kp * (knee_target - knee) - g.knee_kd * knee_v
        u = np.stack([hip_u[:, 0], knee_u[:, 0], hip_u[:, 1], knee_u[:, 1]], axis=1)
        return np.clip(u, -1.0, 1.0)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        alive = np.asarray(alive, dtype=bool)
        u = self.torques(np.asarray(obs, dtype=np.float64), alive)
        # Sigma-delta: quantise the torque plus the error carried from the previous step.
        wanted = u + self.carry
        levels = np.clip(np.round(wanted), -1.0, 1.0)
        self.carry = np.where(alive[:, None], wanted - levels, 0.0)
        return np.where(alive, encode(levels), ZERO_ACTION)

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "gains": asdict(self.gains), "quantisation": "sigma-delta"}


class MultiwalkerAdversary(ScriptedPolicy):
    """Every walker sits back at full torque: the team falls together, package dragged back."""

    def __init__(self, n_actions: int) -> None:
        super().__init__(n_actions, "adversarial", privileged=False)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return np.full(len(alive), SIT_BACK_ACTION, dtype=np.int64)


class ConstantPolicy(ScriptedPolicy):
    """The same action for every walker at every step (action 40: the do-nothing baseline)."""

    def __init__(self, n_actions: int, action: int = ZERO_ACTION) -> None:
        super().__init__(n_actions, f"constant_{action}", privileged=False)
        self.action = action

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return np.full(len(alive), self.action, dtype=np.int64)


def _n_actions(env: Any) -> int:
    return int(env.action_space(env.possible_agents[0]).n)


def make_expert(env: Any) -> MultiwalkerExpert:
    return MultiwalkerExpert(_n_actions(env))


def make_adversary(env: Any) -> MultiwalkerAdversary:
    return MultiwalkerAdversary(_n_actions(env))


#: Baselines `marl-datagen reference` measures beside random and expert: doing nothing.
REFERENCE_BASELINES = {"nothing": lambda env: ConstantPolicy(_n_actions(env), ZERO_ACTION)}


def episode_metrics(env: Any) -> dict[str, float]:
    """How far the package moved from where it started, and whether the episode ended in a fall
    (a walker's hull or the package touched the ground)."""
    base = env.unwrapped.env
    fell = bool(base.game_over) or bool(np.any(base.fallen_walkers))
    return {
        "package_distance": float(base.package.position.x) - float(np.mean(base.start_x)),
        "fell": float(fell),
    }
