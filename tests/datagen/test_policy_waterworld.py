"""Tests of the waterworld behaviour policies (datagen/policies/waterworld.py).

These tests count catches and poison contacts by wrapping the env instance's collision step
(test-only instrumentation, independent of the env's own counters). Short episodes keep the file
fast; the full-length figures are in the module docstring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datagen.collect import CollectRequest, collect
from datagen.envs import make_env
from datagen.policies import RandomPolicy
from datagen.policies import waterworld as ww
from datagen.policies.registry import make_policy
from datagen.rollout import episode_seed, play
from tests.datagen.expert_rows import expert_rows, probs_by_observation

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


@pytest.mark.parametrize("make", [ww.make_expert, ww.make_privileged])
@pytest.mark.parametrize("n", [2, 8])
def test_expert_catches_far_more_food_than_random(make, n: int) -> None:
    e_ret, e_food, e_poison = _play(make, n, 2, max_cycles=200)
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


@pytest.mark.parametrize("quality", ["expert", "privileged"])
def test_policies_replay_and_are_well_formed(quality: str) -> None:
    runs = []
    for _ in range(2):
        env = make_env(ENV, 5, max_cycles=60)
        policy = make_policy(quality, env)
        actions, rewards = [], []
        for step in play(env, policy, seed=3):
            decision = step.decision
            assert decision.actions.shape == (5,)
            assert decision.actions.dtype == np.int64
            assert ((decision.actions >= 0) & (decision.actions < 9)).all()
            np.testing.assert_allclose(decision.probs.sum(axis=1), 1.0, rtol=1e-6)
            assert (decision.probs[np.arange(5), decision.actions] > 0).all()
            actions.append(decision.actions)
            rewards.append(step.rewards)
        runs.append((np.stack(actions), np.stack(rewards)))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.array_equal(runs[0][1], runs[1][1])
    assert len(np.unique(runs[0][0])) >= 4  # it steers, not one fixed heading
    assert policy.spec()["privileged"] is (quality == "privileged")
    assert ww.make_adversary(env).spec()["name"] == "adversarial"


def test_expert_probs_are_a_function_of_the_observation(tmp_path: Path) -> None:
    rows = {
        n: expert_rows(ENV, n, tmp_path / f"n{n}.h5", seed=4, options={"max_cycles": 80})
        for n in (2, 8)
    }
    # Grouped by observation bytes: one distribution per observation, within and across sizes.
    obs, probs = (np.concatenate(parts) for parts in zip(*rows.values(), strict=True))
    table = probs_by_observation(obs, probs)
    assert all(len(distinct) == 1 for distinct in table.values())
    # Recomputed from the stored rows alone, with no env, by a policy built at another size.
    probe = ww.make_expert(make_env(ENV, 3))
    for obs, probs in rows.values():
        decision = probe.act(None, obs, np.ones(len(obs), bool), np.random.default_rng(0))
        np.testing.assert_array_equal(decision.probs, probs)
        np.testing.assert_array_equal(
            probe.choose(None, obs, np.ones(len(obs), bool)), probs.argmax(1)
        )
    # The expert searches at random only when nothing in view steers it.
    obs, probs = rows[8]
    lost = probs.max(axis=1) < 1.0
    assert 0 < lost.mean() < 0.2
    assert (obs[lost][:, :240].reshape(-1, 30, 8)[:, :, 2] == 1.0).all()  # no food in view


@pytest.mark.parametrize(
    "n, options",
    [
        (1, {}),
        (3, {"n_obstacles": 0}),
        (3, {"n_obstacles": 3, "n_poisons": 0}),
        (4, {"n_evaders": 0}),
        (4, {"n_coop": 2}),
        (3, {"speed_features": False}),
    ],
)
def test_policies_handle_other_settings(n: int, options: dict) -> None:
    for make in (ww.make_expert, ww.make_privileged, ww.make_adversary):
        returns, food, _ = _play(make, n, 1, max_cycles=120, **options)
        assert np.isfinite(returns).all()
        if make is not ww.make_adversary and options.get("n_evaders", 5) > 0:
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


@pytest.mark.slow
def test_bc_learns_the_expert(tmp_path: Path) -> None:
    from algos.data import OfflineData
    from algos.registry import build_algorithm
    from algos.train import TrainSettings, fit
    from benchmark.evaluate import evaluate_algorithm

    n = 4
    request = CollectRequest(ENV, n, "expert", n_episodes=20, seed=1, out=tmp_path / "e.h5")
    data = OfflineData.from_datasets([collect(request)])
    algo = build_algorithm("bc", data.spec, {"hidden_size": 256}, seed=0)
    fit(algo, data, TrainSettings(5000, batch_size=256, seed=0), tmp_path / "run", progress=False)
    evaluation, score = evaluate_algorithm(algo, ENV, n, 10, seed=100)
    print(f"bc on waterworld n={n}: return {evaluation.mean:.1f}, normalized {score:.1f}")
    assert score >= 80
