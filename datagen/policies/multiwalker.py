"""Behaviour policies for multiwalker (draft)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from datagen.policies import ScriptedPolicy

N_JOINTS = 4
ZERO_ACTION = 40
_PLACE = np.array([27, 9, 3, 1], dtype=np.int64)

# observation indices (BipedalWalker layout)
HULL_ANGLE, HULL_ANGVEL, VEL_X, VEL_Y = 0, 1, 2, 3
HIP = (4, 9)
HIP_SPEED = (5, 10)
KNEE = (6, 11)
KNEE_SPEED = (7, 12)
CONTACT = (8, 13)

LIFT, PLANT, PUSH = 0, 1, 2


def encode(levels: np.ndarray) -> np.ndarray:
    """(N, 4) per-joint torques in {-1, 0, 1} -> (N,) action index (joint 0 most significant)."""
    return (np.asarray(levels, dtype=np.int64) + 1) @ _PLACE


@dataclass
class GaitParams:
    speed: float = 0.29
    support_knee: float = 0.1
    lift_hip: float = 1.1
    lift_knee: float = -0.6
    plant_hip: float = 0.1
    switch_hip: float = 0.1
    push_knee: float = 1.0
    hip_kp: float = 0.9
    hip_kd: float = 0.25
    knee_kp: float = 4.0
    knee_kd: float = 0.25
    hull_kp: float = 0.9
    hull_kd: float = 1.5
    vy_damp: float = 15.0
    gain: float = 0.5
    knee_rate: float = 0.03
    sigma_delta: bool = True
    extra: dict = field(default_factory=dict)


class WalkerExpert(ScriptedPolicy):
    def __init__(self, n_actions: int, n_agents: int, params: GaitParams | None = None) -> None:
        super().__init__(n_actions, "expert", privileged=False)
        self.p = params or GaitParams()
        self.n = n_agents
        self._clear()

    def _clear(self) -> None:
        n = self.n
        self.state = np.full(n, LIFT, dtype=np.int64)
        self.moving = np.zeros(n, dtype=np.int64)
        self.sup_knee = np.full(n, self.p.support_knee)
        self.error = np.zeros((n, N_JOINTS))

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        self._clear()

    def torques(self, obs: np.ndarray) -> np.ndarray:
        p = self.p
        n = self.n
        idx = np.arange(n)
        s = obs
        mv = self.moving
        sp = 1 - mv
        hip_i = np.array(HIP)
        knee_i = np.array(KNEE)
        hip_m, hip_s = s[idx, hip_i[mv]], s[idx, hip_i[sp]]
        knee_m = s[idx, knee_i[mv]]
        knee_s = s[idx, knee_i[sp]]
        contact_m = s[idx, np.array(CONTACT)[mv]] > 0.5
        vx = s[:, VEL_X]

        hip_t = np.full((n, 2), np.nan)
        knee_t = np.full((n, 2), np.nan)

        # LIFT
        m = self.state == LIFT
        self.sup_knee = np.where(
            m,
            np.minimum(self.sup_knee + p.knee_rate + p.knee_rate * (vx > p.speed), p.support_knee),
            self.sup_knee,
        )
        go = m & (hip_s < p.switch_hip)
        self.state = np.where(go, PLANT, self.state)
        m = m & ~go
        hip_t[idx[m], mv[m]] = p.lift_hip
        knee_t[idx[m], mv[m]] = p.lift_knee
        knee_t[idx[m], sp[m]] = self.sup_knee[m]
        # PLANT
        m = self.state == PLANT
        go = m & contact_m
        self.sup_knee = np.where(go, np.minimum(knee_m, p.support_knee), self.sup_knee)
        self.state = np.where(go, PUSH, self.state)
        m = m & ~go
        hip_t[idx[m], mv[m]] = p.plant_hip
        knee_t[idx[m], mv[m]] = p.support_knee
        knee_t[idx[m], sp[m]] = self.sup_knee[m]
        # PUSH
        m = self.state == PUSH
        go = m & ((knee_s > 0.88) | (vx > 1.2 * p.speed))
        m2 = m & ~go
        knee_t[idx[m2], mv[m2]] = self.sup_knee[m2]
        knee_t[idx[m2], sp[m2]] = p.push_knee
        # on switching, this step's targets are as in PUSH (the reference computes them first)
        knee_t[idx[go], mv[go]] = self.sup_knee[go]
        knee_t[idx[go], sp[go]] = p.push_knee
        self.state = np.where(go, LIFT, self.state)
        self.moving = np.where(go, 1 - self.moving, self.moving)

        hips = s[:, list(HIP)]
        hip_v = s[:, list(HIP_SPEED)]
        knees = s[:, list(KNEE)]
        knee_v = s[:, list(KNEE_SPEED)]
        hip_u = np.where(np.isnan(hip_t), 0.0, p.hip_kp * (hip_t - hips) - p.hip_kd * hip_v)
        knee_u = np.where(np.isnan(knee_t), 0.0, p.knee_kp * (knee_t - knees) - p.knee_kd * knee_v)
        hip_u -= (p.hull_kp * s[:, [HULL_ANGLE]] + p.hull_kd * s[:, [HULL_ANGVEL]]) * -1.0
        knee_u -= p.vy_damp * s[:, [VEL_Y]]
        u = np.stack([hip_u[:, 0], knee_u[:, 0], hip_u[:, 1], knee_u[:, 1]], axis=1)
        return np.clip(p.gain * u, -1.0, 1.0)

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        u = self.torques(np.asarray(obs, dtype=np.float64))
        if self.p.sigma_delta:
            v = u + self.error
            q = np.clip(np.round(v), -1, 1)
            self.error = np.where(alive[:, None], v - q, 0.0)
        else:
            q = np.clip(np.round(u), -1, 1)
        return np.where(alive, encode(q), ZERO_ACTION)


class ConstantPolicy(ScriptedPolicy):
    def __init__(self, n_actions: int, action: int, name: str = "constant") -> None:
        super().__init__(n_actions, name, privileged=False)
        self.action = action

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return np.full(len(alive), self.action, dtype=np.int64)


def make_expert(env: Any, **kw: Any) -> WalkerExpert:
    return WalkerExpert(81, len(env.possible_agents), replace(GaitParams(), **kw))


def episode_metrics(env: Any) -> dict[str, float]:
    base = env.unwrapped.env
    x0 = float(np.mean(base.start_x))
    return {
        "package_distance": float(base.package.position.x) - x0,
        "fell": float(bool(base.game_over) or bool(np.any(base.fallen_walkers))),
    }
