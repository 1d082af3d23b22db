"""The baselines added for a fair comparison: Implicit Q-Learning, filtered BC per agent, and the
unambiguous name of independent DQN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from algos.base import INFORMATION_CLASSES
from algos.bc import agent_return_ranks
from algos.data import OfflineData
from algos.registry import ALGORITHMS, build_algorithm, get_entry, information_class
from datagen.dataset import open_dataset
from tests.algos.conftest import collect_saboteur_data
from tests.algos.test_method import two_action_batch

SMALL = {"hidden_size": 16}


def test_implicit_ql_value_is_the_expectile_and_the_policy_follows_the_better(
    prison_data: OfflineData,
) -> None:
    config = {**SMALL, "lr": 3e-3, "tau": 0.1, "reward_scale": 1.0}  # no attach: scale as given
    algo = build_algorithm("implicit-ql", prison_data.spec, config)
    batch = two_action_batch()
    for _ in range(300):
        metrics = algo.update(batch)
    with torch.no_grad():
        value = algo.value(batch.obs)[..., 0]
    # One-step episodes: Q(a0) = 1, Q(a1) = 0, each action half the data; the 0.7-expectile of
    # {1, 0} is 0.7 (0.7 * (1 - v) = 0.3 * v).
    assert value.mean().item() == pytest.approx(0.7, abs=0.05)
    assert metrics["train/weight"] > 1.0
    assert (algo.act(batch.obs[:4], batch.alive[:4]) == 0).all()
    with torch.no_grad():
        probs = torch.softmax(algo.policy(batch.obs[:1]), -1)[0, 0]
    # Weights exp(3 * 0.3) against exp(3 * -0.7): the policy puts e^3 ≈ 20 times more on a0.
    assert probs[0] > 0.9


def test_reward_scale_is_one_over_the_spread_of_alive_agents_rewards(
    tiny_paths: dict[str, Path], prison_data: OfflineData
) -> None:
    with open_dataset(tiny_paths["prison"]) as dataset:
        data = dataset.transitions()
    rewards = data.rewards[data.alive]
    assert prison_data.reward_scale() == pytest.approx(1 / rewards.std(), rel=1e-5)


@pytest.fixture(scope="module")
def saboteur_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prison, 4 agents, 4 episodes, one saboteur per episode."""
    out = Path(tmp_path_factory.mktemp("saboteur")) / "prison-saboteur.h5"
    return collect_saboteur_data(out, n_episodes=4, seed=1)


def test_agent_filter_keeps_every_expert_and_drops_every_saboteur(saboteur_path: Path) -> None:
    data = OfflineData.from_datasets([saboteur_path])
    with open_dataset(saboteur_path) as dataset:
        labels = dataset.load(["policy_labels"])["policy_labels"]  # ground truth, for the test
        episode_index = dataset.transitions().episode_index
    saboteur = np.zeros((data.n_episodes, data.n_agents), dtype=bool)
    for e in range(data.n_episodes):
        saboteur[e] = (labels[episode_index == e] == 1).any(0)
    assert saboteur.sum(1).tolist() == [1, 1, 1, 1]
    # 16 pairs, 4 of them saboteurs who touch no wall: the best 75 % are the 12 experts.
    ranks = agent_return_ranks(data).numpy()
    assert (ranks[saboteur] >= 0.75).all() and (ranks[~saboteur] < 0.75).all()

    algo = build_algorithm("bc-filtered-agent", data.spec, {**SMALL, "top_fraction": 0.75})
    subset = algo.sampling_subset(data)
    assert np.array_equal(algo.kept.numpy(), ~saboteur)
    assert len(subset) == len(data), "every episode has kept agents"
    # The team filter keeps whole episodes, the best by team return (ties kept together).
    team = build_algorithm("bc-filtered", data.spec, {**SMALL, "top_fraction": 0.5})
    kept = np.zeros(len(data), dtype=bool)
    kept[team.sampling_subset(data).numpy()] = True
    team_return = data.batch(torch.arange(len(data))).episode_return.numpy()
    assert 0 < kept.sum() < len(data)
    assert team_return[kept].min() > team_return[~kept].max()


def test_the_former_name_of_independent_dqn_warns_and_resolves() -> None:
    with pytest.warns(FutureWarning, match="'idqn'.*Implicit Q-Learning is 'implicit-ql'"):
        entry = get_entry("iql")
    assert entry.name == "idqn" and get_entry("implicit-ql").name == "implicit-ql"


def test_information_classes_follow_what_agents_use_when_they_act() -> None:
    assert {entry.information for entry in ALGORITHMS.values()} <= set(INFORMATION_CLASSES)
    assert get_entry("gawi").information == "communicating"
    assert get_entry("gawi-nograph").information == "decentralised"
    assert information_class("gawi", {"graph_rounds": 0}) == "decentralised"
    assert information_class("bc") == "decentralised"


@pytest.mark.parametrize("name", ["bc", "idqn", "implicit-ql"])
def test_communicating_variants_hear_their_teammates(name: str, prison_data: OfflineData) -> None:
    """An agent's scores depend on a teammate's observation in the `-comm` variant only, and
    never on a dead teammate's."""
    batch = prison_data.sample(8, torch.Generator().manual_seed(0))
    alive = torch.ones_like(batch.alive)
    changed = batch.obs.clone()
    changed[:, 1] += 1.0
    for variant, hears in ((name, False), (f"{name}-comm", True)):
        algo = build_algorithm(variant, prison_data.spec, SMALL)
        assert algo.information(algo.config) == ("communicating" if hears else "decentralised")
        with torch.no_grad():
            before = algo.action_scores(batch.obs, alive, batch.positions)[:, 0]
            after = algo.action_scores(changed, alive, batch.positions)[:, 0]
            dead = alive.clone()
            dead[:, 1] = False
            unheard = algo.action_scores(changed, dead, batch.positions)[:, 0]
            baseline = algo.action_scores(batch.obs, dead, batch.positions)[:, 0]
        assert (not torch.allclose(before, after)) == hears
        assert torch.allclose(unheard, baseline)


@pytest.mark.parametrize("name", ["idqn", "qmix", "sac", "brac", "bear", "implicit-ql", "gawi"])
def test_value_based_algorithms_take_the_reward_scale_from_the_data(
    name: str, prison_data: OfflineData
) -> None:
    algo = build_algorithm(name, prison_data.spec, SMALL)
    assert algo.reward_scale == 1.0
    algo.attach(prison_data)
    assert algo.reward_scale == pytest.approx(prison_data.reward_scale())
    assert algo.reward_scale > 2, "prison pays about 0.02 per agent-step on average"
    fixed = build_algorithm(name, prison_data.spec, {**SMALL, "reward_scale": 2.0})
    fixed.attach(prison_data)
    assert fixed.reward_scale == 2.0
    restored = build_algorithm(name, prison_data.spec, SMALL)
    restored.load_state_dict(algo.state_dict())
    assert restored.reward_scale == algo.reward_scale
