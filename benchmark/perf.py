"""Throughput measurements: how fast the environments run under a random policy.

Figures are only comparable within one run on one machine (machines here are shared and noisy), so
the table reports each count's agent-steps/s as a ratio to the smallest count of the same env.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from datagen.envs import get_spec, make_env


@dataclass(frozen=True)
class EnvThroughput:
    """Random-rollout speed of one env at one team size.

    Attributes:
        env: env name.
        n_agents: team size.
        env_steps: parallel steps taken (resets included in the time).
        seconds: wall time of those steps.
        env_steps_per_s: env_steps / seconds.
        agent_steps_per_s: env_steps_per_s * n_agents.
        ratio_to_smallest: agent_steps_per_s over that of the smallest team size measured for env.
    """

    env: str
    n_agents: int
    env_steps: int
    seconds: float
    env_steps_per_s: float
    agent_steps_per_s: float
    ratio_to_smallest: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


def random_rollout_speed(name: str, n_agents: int, n_steps: int, seed: int = 0) -> EnvThroughput:
    """Step env `name` with uniformly random actions for `n_steps` parallel steps.

    Actions come from one seeded generator; episodes that end are reset (and the reset is timed).
    """
    env = make_env(name, n_agents, seed=seed)
    rng = np.random.default_rng(seed)
    n_actions = {agent: env.action_space(agent).n for agent in env.possible_agents}
    env.reset()
    start = time.perf_counter()
    for _ in range(n_steps):
        if not env.agents:
            env.reset()
        env.step({agent: int(rng.integers(n_actions[agent])) for agent in env.agents})
    seconds = time.perf_counter() - start
    env.close()
    per_s = n_steps / seconds
    return EnvThroughput(name, n_agents, n_steps, seconds, per_s, per_s * n_agents)


def default_counts(name: str) -> tuple[int, ...]:
    """The two team sizes measured by default: the smallest and largest of the env's ladder."""
    ladder = get_spec(name).ladder
    return tuple(sorted({ladder[0], ladder[-1]}))


def measure_envs(
    names: list[str],
    counts: tuple[int, ...] | None,
    n_steps: int,
    seed: int = 0,
    on_result: Callable[[EnvThroughput], None] | None = None,
) -> list[EnvThroughput]:
    """Measure every env of `names` at `counts` (default: `default_counts`).

    Returns:
        One `EnvThroughput` per (env, count), with `ratio_to_smallest` filled in per env.
    """
    results: list[EnvThroughput] = []
    for name in names:
        per_env = []
        for n in counts or default_counts(name):
            result = random_rollout_speed(name, n, n_steps, seed)
            per_env.append(result)
            if on_result is not None:
                on_result(result)
        smallest = min(per_env, key=lambda r: r.n_agents).agent_steps_per_s
        results += [
            EnvThroughput(**{**r.as_dict(), "ratio_to_smallest": r.agent_steps_per_s / smallest})
            for r in per_env
        ]
    return results
