"""Measuring the reference scores (random and expert returns per env and team size) and
calibrating the medium behaviour; `datagen.policies.records` stores and reads what is measured.

The medium behaviour is the expert with probability 1 − ε, random with probability ε; its ε is
found by bisection so that its normalised score lands between 30 and 60.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from datagen.errors import UserError
from datagen.policies.evaluate import Evaluation, evaluate
from datagen.policies.mixtures import EpsilonMixture
from datagen.policies.records import normalized_score, reference_scores
from datagen.policies.registry import env_module, make_policy

MEDIUM_RANGE = (30.0, 60.0)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def measure_reference(
    env: str,
    n_agents: int,
    n_episodes: int,
    seed: int = 0,
    on_episode: Callable[[str, int, float], None] | None = None,
) -> dict[str, Any]:
    """Evaluate the random policy, the expert and any extra baselines of the env's policy module
    (its `REFERENCE_BASELINES`, e.g. multiwalker's do-nothing); returns the record
    `records.write_reference` stores."""
    record: dict[str, Any] = {"episodes": n_episodes, "seed": seed, "measured_at": _now()}
    makers: dict[str, Callable[[Any], Any]] = {
        "random": lambda built: make_policy("random", built),
        "expert": lambda built: make_policy("expert", built),
        **(
            {"privileged": lambda built: make_policy("privileged", built)}
            if hasattr(env_module(env), "make_privileged")
            else {}
        ),
        **getattr(env_module(env), "REFERENCE_BASELINES", {}),
    }
    for quality, make in makers.items():
        result = evaluate(
            env,
            n_agents,
            make,
            n_episodes,
            seed,
            on_episode=None if on_episode is None else lambda i, r, q=quality: on_episode(q, i, r),
        )
        record[quality] = result.summary()
    return record


def calibrate_medium(
    env: str,
    n_agents: int,
    n_episodes: int = 20,
    seed: int = 0,
    max_probes: int = 8,
    on_probe: Callable[[float, float], None] | None = None,
) -> dict[str, Any]:
    """Find ε whose expert/random mixture scores between 30 and 60, by bisection on [0, 1].

    The normalised score falls as ε grows (ε = 0 is the expert, 100; ε = 1 is random, 0). Each
    probe plays `n_episodes` episodes; the search stops at the first probe inside the range.

    Returns:
        The recipe: epsilon, its measured normalised score, the probes, episodes and seed.

    Raises:
        UserError: no reference scores yet, or no probe landed in range.
    """
    if reference_scores(env, n_agents) is None:
        normalized_score(env, n_agents, 0.0)  # raises the error that says what to run
    low, high = 0.0, 1.0
    probes: list[dict[str, float]] = []
    for _ in range(max_probes):
        epsilon = (low + high) / 2

        def make(built: Any, eps: float = epsilon) -> EpsilonMixture:
            n_actions = built.action_space(built.possible_agents[0]).n
            return EpsilonMixture(make_policy("expert", built), n_actions, eps)

        result: Evaluation = evaluate(env, n_agents, make, n_episodes, seed)
        score = normalized_score(env, n_agents, result.mean)
        probes.append(
            {"epsilon": epsilon, "normalized_score": score, "team_return_mean": result.mean}
        )
        if on_probe is not None:
            on_probe(epsilon, score)
        if MEDIUM_RANGE[0] <= score <= MEDIUM_RANGE[1]:
            return {
                "epsilon": epsilon,
                "normalized_score": score,
                "team_return_mean": result.mean,
                "episodes": n_episodes,
                "seed": seed,
                "probes": probes,
                "calibrated_at": _now(),
            }
        if score > MEDIUM_RANGE[1]:
            low = epsilon
        else:
            high = epsilon
    raise UserError(
        f"no ε gave a normalised score in {MEDIUM_RANGE} for {env} with {n_agents} agents "
        f"after {max_probes} probes: {probes}"
    )
