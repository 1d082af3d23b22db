"""Tests of the multiwalker behaviour policies (datagen/policies/multiwalker.py).

The return checks play a few short, fixed episodes: each policy is deterministic (random draws from
the per-episode rng), so the figures asserted are exact replays, chosen with wide margins.
"""

from __future__ import annotations

import numpy as np
import pytest

from datagen.envs import make_env
from datagen.envs.registry import multiwalker_action_table
from datagen.policies import RandomPolicy
from datagen.policies.evaluate import evaluate, play_episode
from datagen.policies.multiwalker import (
    SIT_BACK_ACTION,
    ZERO_ACTION,
    ConstantPolicy,
    MultiwalkerAdversary,
    MultiwalkerExpert,
    decode,
    encode,
    episode_metrics,
    make_adversary,
    make_expert,
)
from datagen.rollout import play

N = 3
EPISODES = 4


@pytest.fixture(scope="module")
def env():
    env = make_env("multiwalker", N)
    yield env
    env.close()


def _actions(env, policy, seed: int) -> np.ndarray:
    return np.stack([step.decision.actions for step in play(env, policy, seed)])


@pytest.fixture(scope="module")
def results():
    """Team returns and metrics of expert, adversary, random and doing nothing on the same seeds."""
    makers = {
        "expert": make_expert,
        "adversary": make_adversary,
        "random": lambda env: RandomPolicy(81),
        "nothing": lambda env: ConstantPolicy(81, ZERO_ACTION),
    }
    return {
        name: evaluate("multiwalker", N, make, EPISODES, seed=0) for name, make in makers.items()
    }


def test_encoding_matches_the_action_table() -> None:
    table = multiwalker_action_table(3)
    levels = table.astype(np.int64)
    assert np.array_equal(encode(levels), np.arange(81))
    assert np.array_equal(decode(np.arange(81)), levels)
    assert encode(np.zeros((1, 4)))[0] == ZERO_ACTION
    # The adversary's action: hips forward (+1), knees bent (-1).
    assert np.array_equal(table[SIT_BACK_ACTION], [1, -1, 1, -1])


def test_factories_and_spec(env) -> None:
    expert, adversary = make_expert(env), make_adversary(env)
    assert isinstance(expert, MultiwalkerExpert) and isinstance(adversary, MultiwalkerAdversary)
    spec = expert.spec()
    assert spec["privileged"] is False and spec["labels"] == ["expert"]
    assert spec["gains"]["swing_steps"] > 0
    assert adversary.spec()["labels"] == ["adversarial"]


def test_expert_actions_valid_and_deterministic(env) -> None:
    expert = make_expert(env)
    first = _actions(env, expert, seed=11)
    assert first.dtype == np.int64 and first.shape[1] == N
    assert ((first >= 0) & (first < 81)).all()
    # The policy uses every torque level, not one constant action.
    assert len(np.unique(first)) > 10
    # Same seed again, same policy object: the gait state and the sigma-delta carry are cleared by
    # reset, so the episode replays exactly.
    assert np.array_equal(_actions(env, expert, seed=11), first)
    # A fresh policy agrees too.
    assert np.array_equal(_actions(env, make_expert(env), seed=11), first)


def test_reset_clears_the_carried_state(env) -> None:
    expert = make_expert(env)
    for _ in play(env, expert, seed=3):
        pass
    assert np.abs(expert.carry).sum() > 0 or expert.timer.any()
    expert.reset(env, np.random.default_rng(0))
    assert not expert.carry.any() and not expert.timer.any() and not expert.stance.any()
    assert not expert.state.any() and not expert.speed.any()


def test_probs_and_labels(env) -> None:
    expert = make_expert(env)
    obs, infos = env.reset(seed=5)
    expert.reset(env, np.random.default_rng(5))
    team = np.stack([obs[a] for a in env.possible_agents])
    decision = expert.act(env, team, np.ones(N, bool), np.random.default_rng(5))
    assert decision.probs.shape == (N, 81)
    assert np.allclose(decision.probs.sum(axis=1), 1.0)
    assert (decision.probs[np.arange(N), decision.actions] == 1.0).all()
    assert (decision.labels == 0).all()


def test_dead_walkers_get_the_zero_action(env) -> None:
    expert = make_expert(env)
    obs, _ = env.reset(seed=2)
    expert.reset(env, np.random.default_rng(2))
    team = np.stack([obs[a] for a in env.possible_agents])
    alive = np.array([True, False, True])
    actions = expert.choose(env, team, alive)
    assert actions[1] == ZERO_ACTION
    assert not expert.carry[1].any()


def test_expert_beats_random_and_doing_nothing(results) -> None:
    expert, random, nothing = results["expert"], results["random"], results["nothing"]
    # Random and doing nothing fall within about a hundred steps: about -100 per walker.
    assert random.mean < -200 and nothing.mean < -200
    assert expert.mean > random.mean + 100
    assert expert.mean > nothing.mean + 100
    assert min(expert.returns) > -150 * N


def test_expert_carries_the_package_forward(results) -> None:
    expert = results["expert"]
    distance = np.array(expert.metrics["package_distance"])
    assert distance.mean() > 1.0
    assert np.mean(expert.metrics["fell"]) < 0.5
    assert np.mean(expert.lengths) > 400


def test_adversary_below_random(results) -> None:
    adversary, random = results["adversary"], results["random"]
    assert adversary.mean < random.mean - 10
    assert max(adversary.returns) < min(random.returns) + 50
    assert all(fell == 1.0 for fell in adversary.metrics["fell"])
    assert np.mean(adversary.metrics["package_distance"]) < 0


def test_episode_metrics_of_a_fall(env) -> None:
    total, steps = play_episode(env, make_adversary(env), seed=1)
    metrics = episode_metrics(env)
    assert metrics["fell"] == 1.0
    assert steps < 200 and total < -100 * N


def test_expert_other_team_size() -> None:
    result = evaluate("multiwalker", 2, make_expert, 2, seed=0)
    assert result.mean > -100  # random and doing nothing: about -200
