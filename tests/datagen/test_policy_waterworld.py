"""Tests of the waterworld behaviour policies (datagen/policies/waterworld.py).

Our env keeps no count of food caught, so these tests count catches and poison contacts by
wrapping the env instance's collision step (test-only instrumentation). Short episodes keep the
file fast; the full-length figures are in the module docstring.
"""

from __future__ import annotations

import numpy as np
import pytest

from datagen.envs import make_env
from datagen.policies import RandomPolicy
from datagen.policies import waterworld as ww
from datagen.rollout import episode_seed, play

ENV = "waterworld"


def _count_contacts(raw) -> dict[str, int]:
    """Make `raw` count food caught and pursuer-poison contacts into the returned dict."""
    counts = {"food": 0, "poison": 0}
    collide = raw._collide_and_reward

    def counting():
        food = np.linalg.norm(raw._pursuer_pos[:, None] - raw._food_pos[None], axis=-1)
        touching = food < raw.pursuer_radius + raw.evader_radius
        counts["food"] += int((touching.sum(axis=0) >= raw.n_coop).sum())
        poison = np.linalg.norm(raw._pursuer_pos[:, None] - raw._poison_pos[None], axis=-1)
        counts["poison"] += int((poison < raw.pursuer_radius + raw.poison_radius).sum())
        return collide()

    raw._collide_and_reward = counting
    return counts


def _play(make, n: int, episodes: int, **options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(team returns, food caught, poison contacts) per episode."""
    env = make_env(ENV, n, **options)
    counts = _count_contacts(env.unwrapped)
    policy = make(env)
    returns, food, poison = [], [], []
    for episode in range(episodes):
        counts["food"] = counts["poison"] = 0
        total = 0.0
        for step in play(env, policy, episode_seed(0, episode)):
            total += float(step.rewards.sum(dtype=np.float64))
        returns.append(total)
        food.append(counts["food"])
        poison.append(counts["poison"])
    env.close()
    return np.array(returns), np.array(food), np.array(poison)


def _random(env):
    return RandomPolicy(env.action_space(env.possible_agents[0]).n)


@pytest.mark.parametrize("n", [2, 8])
def test_expert_catches_far_more_food_than_random(n: int) -> None:
    e_ret, e_food, e_poison = _play(ww.make_expert, n, 2, max_cycles=200)
    r_ret, r_food, r_poison = _play(_random, n, 2, max_cycles=200)
    assert e_food.mean() >= 5 * max(r_food.mean(), 1.0)
    assert e_ret.mean() > 5 * r_ret.mean() > 0
    assert e_poison.mean() <= 0.25 * r_poison.mean()  # it steers round the poison


@pytest.mark.parametrize("n", [4, 16])
def test_adversary_below_random(n: int) -> None:
    a_ret, a_food, a_poison = _play(ww.make_adversary, n, 1, max_cycles=150)
    r_ret, _, r_poison = _play(_random, n, 1, max_cycles=150)
    assert a_ret.mean() < r_ret.mean()
    assert a_ret.mean() < 0
    assert a_food.sum() == 0
    assert a_poison.mean() > 2 * r_poison.mean()


def test_expert_is_deterministic_and_well_formed() -> None:
    runs = []
    for _ in range(2):
        env = make_env(ENV, 5, max_cycles=60)
        policy = ww.make_expert(env)
        actions, rewards = [], []
        for step in play(env, policy, seed=3):
            decision = step.decision
            assert decision.actions.shape == (5,)
            assert decision.actions.dtype == np.int64
            assert ((decision.actions >= 0) & (decision.actions < 9)).all()
            assert np.array_equal(decision.probs.argmax(axis=1), decision.actions)
            actions.append(decision.actions)
            rewards.append(step.rewards)
        runs.append((np.stack(actions), np.stack(rewards)))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.array_equal(runs[0][1], runs[1][1])
    assert len(np.unique(runs[0][0])) >= 4  # it steers, not one fixed heading
    assert policy.spec()["privileged"] is True and policy.spec()["name"] == "expert"
    assert ww.make_adversary(env).spec()["name"] == "adversarial"


@pytest.mark.parametrize(
    "n, options",
    [
        (1, {}),
        (3, {"n_obstacles": 0}),
        (3, {"n_obstacles": 3, "n_poisons": 0}),
        (4, {"n_evaders": 0}),
        (4, {"n_coop": 2}),
    ],
)
def test_policies_handle_other_settings(n: int, options: dict) -> None:
    for make in (ww.make_expert, ww.make_adversary):
        returns, food, _ = _play(make, n, 1, max_cycles=120, **options)
        assert np.isfinite(returns).all()
        if make is ww.make_expert and options.get("n_evaders", 5) > 0:
            assert food.sum() >= 3


def test_episode_metrics_reads_env_counters() -> None:
    env = make_env(ENV, 2, max_cycles=5)
    for _ in play(env, _random(env), seed=0):
        pass
    raw = env.unwrapped
    if not hasattr(raw, "food_caught"):
        # The env keeps no counters yet: nothing to report rather than a wrong figure.
        assert ww.episode_metrics(env) == {}
        raw.food_caught, raw.poison_touched = 4, 1
    metrics = ww.episode_metrics(env)
    assert set(metrics) == {"food_caught", "poison_touched"}
    assert metrics["food_caught"] == float(raw.food_caught)
    assert metrics["poison_touched"] == float(raw.poison_touched)
