"""Our method (gawi): the coordination graph, the advantage weights and the per-agent trust."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from algos.coordination import CoordinationGraph, GraphAttention, GraphNetwork
from algos.data import Batch, OfflineData
from algos.functional import advantage_weights, expectile_loss
from algos.gawi import GAWI, episode_agent_means, separation_auc, trust_weights
from algos.registry import ALGORITHMS, build_algorithm, make_config
from datagen.dataset import open_dataset
from datagen.errors import UserError
from tests.algos.conftest import collect_saboteur_data

SMALL = {"hidden_size": 16}


# ----------------------------------------------------------------------------- coordination
def test_attention_weights_sum_to_one_over_alive_agents() -> None:
    torch.manual_seed(0)
    layer = GraphAttention(16, 4)
    features = torch.randn(5, 6, 16)
    alive = torch.rand(5, 6) < 0.5
    alive[0] = False  # a team with nobody alive attends to nobody: weights 0, output finite
    alive[1:, 0] = True  # the other teams have someone alive
    weights = layer.weights(features, alive)  # (B, heads, N, N)
    assert (weights[0] == 0).all()
    assert torch.allclose(weights[1:].sum(-1), torch.ones(4, 4, 6))
    keys = alive[:, None, None, :].expand_as(weights)  # every agent attends to the alive ones
    assert (weights[~keys] == 0).all()
    assert (weights[keys] > 0).all()
    assert torch.isfinite(layer(features, alive)).all()


def test_dead_agents_do_not_influence_alive_ones() -> None:
    torch.manual_seed(0)
    graph = CoordinationGraph(16, 4, n_rounds=2)
    features = torch.randn(3, 5, 16)
    alive = torch.tensor([[True, False, True, True, False]] * 3)
    changed = features.clone()
    changed[:, [1, 4]] = 100 * torch.randn(3, 2, 16)  # anything at the dead agents
    before, after = graph(features, alive), graph(changed, alive)
    assert torch.allclose(before[alive], after[alive], atol=1e-6)
    assert not torch.allclose(before[~alive], after[~alive])
    # ... while an alive teammate does influence them.
    changed = features.clone()
    changed[:, 2] += 1.0
    assert not torch.allclose(graph(changed, alive)[:, 0], before[:, 0])


def test_the_same_weights_act_for_2_and_32_agents(pursuit_data: OfflineData) -> None:
    torch.manual_seed(0)
    network = GraphNetwork(pursuit_data.spec, 5, 16, "auto", n_heads=4, n_rounds=1)
    obs = torch.rand(4, 2, *pursuit_data.spec.obs_shape)
    alive = torch.ones(4, 2, dtype=torch.bool)
    pair = network(obs, alive)
    # The same two agents in a 32-wide team whose other 30 are dead: identical outputs.
    wide_obs = torch.cat([obs, torch.rand(4, 30, *pursuit_data.spec.obs_shape)], dim=1)
    wide_alive = torch.cat([alive, torch.zeros(4, 30, dtype=torch.bool)], dim=1)
    assert torch.allclose(network(wide_obs, wide_alive)[:, :2], pair, atol=1e-5)
    # 32 alive agents: a (4, 32, 5) output from the same parameters, equivariant to the order.
    wide_alive[:] = True
    outputs = network(wide_obs, wide_alive)
    assert outputs.shape == (4, 32, 5)
    order = torch.randperm(32)
    assert torch.allclose(
        network(wide_obs[:, order], wide_alive)[:, :], outputs[:, order], atol=1e-5
    )


def test_gawi_acts_for_any_team_size_and_its_graph_sees_alive(pursuit_data: OfflineData) -> None:
    algo = build_algorithm("gawi", pursuit_data.spec, SMALL)
    for n_agents in (2, 8, 32):
        obs = torch.rand(n_agents, *pursuit_data.spec.obs_shape)
        assert algo.act(obs, torch.ones(n_agents, dtype=torch.bool)).shape == (n_agents,)
    # `act` passes alive to the message passing: a dead teammate's observation does not matter.
    obs = torch.rand(3, 4, *pursuit_data.spec.obs_shape)
    alive = torch.tensor([True, True, False, True]).expand(3, 4)
    other = obs.clone()
    other[:, 2] = torch.rand(3, *pursuit_data.spec.obs_shape)
    scores = algo.policy(obs, alive)
    assert torch.equal(algo.act(obs, alive), algo.act(other, alive))
    assert torch.allclose(algo.policy(other, alive)[:, [0, 1, 3]], scores[:, [0, 1, 3]], atol=1e-6)


def test_no_graph_ablation_has_no_message_passing(pursuit_data: OfflineData) -> None:
    independent = build_algorithm("gawi-nograph", pursuit_data.spec, SMALL)
    assert len(independent.policy.graph.rounds) == 0
    obs = torch.rand(2, 3, *pursuit_data.spec.obs_shape)
    other = obs.clone()
    other[:, 1:] = torch.rand(2, 2, *pursuit_data.spec.obs_shape)  # teammates change
    alive = torch.ones(2, 3, dtype=torch.bool)
    assert torch.allclose(
        independent.policy(obs, alive)[:, 0], independent.policy(other, alive)[:, 0]
    )
    graph = build_algorithm("gawi", pursuit_data.spec, SMALL)
    assert not torch.allclose(graph.policy(obs, alive)[:, 0], graph.policy(other, alive)[:, 0])


def test_ablations_are_registered_with_their_defaults() -> None:
    assert {"gawi", "gawi-nograph", "gawi-noadv", "gawi-noquality"} <= set(ALGORITHMS)
    assert make_config("gawi-nograph").graph_rounds == 0
    assert make_config("gawi-noadv").beta == 0 and make_config("gawi-noadv").quality_beta == 0
    assert make_config("gawi-noquality").quality_beta == 0
    assert make_config("gawi-noquality").beta == make_config("gawi").beta > 0
    with pytest.raises(UserError, match="n_heads must divide hidden_size 16"):
        make_config("gawi", {**SMALL, "n_heads": "3"})
    # A user's overrides apply on top of the entry's; `marl-bench algos` shows its defaults.
    config = make_config("gawi-nograph", {"beta": "1.5"})
    assert (config.graph_rounds, config.beta) == (0, 1.5)
    assert make_config("gawi-nograph", {"graph_rounds": 2}).graph_rounds == 2
    assert ALGORITHMS["gawi-noadv"].describe()["config"]["beta"]["default"] == 0.0
    assert ALGORITHMS["gawi"].describe()["config"]["beta"]["default"] == 3.0


def test_an_ablation_is_gawi_under_its_own_name(prison_data: OfflineData) -> None:
    algo = build_algorithm("gawi-noquality", prison_data.spec, SMALL)
    assert type(algo) is GAWI and algo.name == "gawi-noquality"
    assert algo.config == make_config("gawi", {**SMALL, "quality_beta": 0.0})
    assert build_algorithm("gawi", prison_data.spec, SMALL).name == "gawi"


# ------------------------------------------------------------------------- pure functions
def test_expectile_loss_by_hand() -> None:
    diff = torch.tensor([2.0, -2.0])
    assert expectile_loss(diff, 0.7).tolist() == pytest.approx([0.7 * 4, 0.3 * 4])
    # Minimising it gives the expectile: 0.5 the mean, higher τ moves towards the maximum.
    targets = torch.tensor([0.0, 1.0, 2.0, 10.0])
    grid = torch.linspace(0, 10, 10001)
    for expectile, low, high in ((0.5, 3.24, 3.26), (0.9, 6.0, 10.0)):
        losses = expectile_loss(targets[None] - grid[:, None], expectile).mean(1)
        assert low <= float(grid[losses.argmin()]) <= high


def test_advantage_weights_by_hand() -> None:
    advantage = torch.tensor([-1.0, 0.0, 0.5, 100.0])
    weights = advantage_weights(advantage, beta=2.0, max_weight=50.0)
    expected = [math.exp(-2.0), 1.0, math.exp(1.0), 50.0]
    assert weights.tolist() == pytest.approx(expected, rel=1e-5)
    assert torch.isfinite(advantage_weights(torch.tensor([1e6]), 3.0, 100.0)).all()
    assert advantage_weights(advantage, beta=0.0, max_weight=50.0).tolist() == [1.0] * 4


def test_episode_agent_means_and_trust_by_hand() -> None:
    values = torch.tensor([[1.0, 5.0], [3.0, -1.0], [4.0, 0.0]])
    alive = torch.tensor([[True, True], [True, False], [True, True]])
    episodes = torch.tensor([0, 0, 1])
    means, counts = episode_agent_means(values, alive, episodes, n_episodes=3)
    assert means.tolist() == [[2.0, 5.0], [4.0, 0.0], [0.0, 0.0]]
    assert counts.tolist() == [[2.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
    acted = counts > 0
    # Median of the four acting means (0, 2, 4, 5) is 3; deficits below it are scaled by 2.
    trust = trust_weights(means, acted, beta=1.0, reference=0.5, scale=2.0)
    expected = [[math.exp(-0.5), 1.0], [1.0, math.exp(-1.5)], [1.0, 1.0]]
    assert trust.tolist() == [pytest.approx(row) for row in expected]
    assert (trust_weights(means, acted, beta=0.0, reference=0.5) == 1).all()


def test_separation_auc_by_hand() -> None:
    scores = torch.tensor([0.9, 0.8, 0.1, 0.8])
    positive = torch.tensor([True, True, False, False])
    # Pairs (0.9, 0.1), (0.9, 0.8), (0.8, 0.1) are ordered, (0.8, 0.8) is a tie: 3.5 of 4.
    assert separation_auc(scores, positive) == pytest.approx(0.875)
    assert math.isnan(separation_auc(scores, torch.ones(4, dtype=torch.bool)))


# --------------------------------------------------------------- learning and bookkeeping
def two_action_batch(size: int = 64) -> Batch:
    """One-step episodes from one observation: action 0 earns 1, action 1 earns 0."""
    actions = (torch.arange(size * 2) % 2).reshape(size, 2)
    rewards = (actions == 0).float()
    ones = torch.ones(size, 2, dtype=torch.bool)
    return Batch(
        obs=torch.zeros(size, 2, 2),
        actions=actions,
        rewards=rewards,
        team_reward=rewards.sum(1),
        next_obs=torch.zeros(size, 2, 2),
        alive=ones,
        next_alive=~ones,
        bootstrap=~ones,
        team_bootstrap=torch.zeros(size, dtype=torch.bool),
        action_mask=torch.ones(size, 2, 3, dtype=torch.bool),
        next_action_mask=torch.ones(size, 2, 3, dtype=torch.bool),
        behaviour_probs=torch.full((size, 2, 3), 1 / 3),
        episode_return=rewards.sum(1),
    )


def test_worse_actions_get_lower_weight_and_the_policy_follows_the_better(
    prison_data: OfflineData,
) -> None:
    algo = build_algorithm("gawi", prison_data.spec, {**SMALL, "lr": 3e-3, "tau": 0.1})
    batch = two_action_batch()
    for _ in range(150):
        algo.update(batch)
    advantage = algo.advantages(batch)
    weights = advantage_weights(advantage, algo.config.beta, algo.config.max_weight)
    good, bad = batch.actions == 0, batch.actions == 1
    # V is the 0.7-expectile of {1, 0}: 0.7; A ≈ +0.3 for the good action, −0.7 for the bad.
    assert advantage[good].mean() == pytest.approx(0.3, abs=0.1)
    assert advantage[bad].mean() == pytest.approx(-0.7, abs=0.1)
    assert weights[good].min() > 2 * weights[bad].max()
    assert (algo.act(batch.obs[:4], batch.alive[:4]) == 0).all()
    # Plain BC on the same data has no reason to prefer action 0 by much.
    clone = build_algorithm("gawi-noadv", prison_data.spec, {**SMALL, "lr": 3e-3})
    for _ in range(150):
        clone.update(batch)
    with torch.no_grad():
        probs = torch.softmax(clone.policy(batch.obs[:1], batch.alive[:1]), -1)[0, 0]
    assert abs(float(probs[0] - probs[1])) < 0.1


def test_episode_index_numbers_episodes_across_datasets(tiny_paths: dict) -> None:
    data = OfflineData.from_datasets([tiny_paths["prison"], tiny_paths["prison4"]])
    assert data.n_episodes == 3  # 2 + 1
    assert data.episode_index.tolist() == sorted(data.episode_index.tolist())
    assert data.episode_index[data.dataset_index == 1].unique().tolist() == [2]
    batch = data.sample(16, torch.Generator().manual_seed(0))
    assert batch.episode_index.shape == (16,)


def test_trust_is_saved_and_restored(prison_data: OfflineData) -> None:
    config = {**SMALL, "quality_warmup": 2, "quality_every": 1}
    algo = build_algorithm("gawi", prison_data.spec, config)
    assert algo.sampling_subset(prison_data) is None
    assert (algo.trust == 1).all()
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        algo.update(prison_data.sample(32, generator))
    assert algo.trust.shape == (prison_data.n_episodes, prison_data.n_agents)
    assert (algo.episode_advantage != 0).any()
    restored = build_algorithm("gawi", prison_data.spec, config, seed=5)
    # Checkpoints written before σ stopped being stored carry an `advantage_scale`: ignored.
    restored.load_state_dict({**algo.state_dict(), "advantage_scale": 0.25})
    assert torch.equal(restored.trust, algo.trust)
    restored.sampling_subset(prison_data)  # as fit does after loading: keeps the loaded trust
    assert torch.equal(restored.trust, algo.trust)
    batch = prison_data.sample(32, generator)
    assert algo.update(batch) == restored.update(batch)


@pytest.fixture(scope="module")
def saboteur_data(tmp_path_factory: pytest.TempPathFactory) -> OfflineData:
    """Prison, 4 agents, 3 episodes, one saboteur per episode."""
    out = Path(tmp_path_factory.mktemp("saboteur")) / "prison-saboteur.h5"
    return OfflineData.from_datasets([collect_saboteur_data(out, n_episodes=3, seed=0)])


def test_inferred_quality_separates_saboteurs_from_experts(saboteur_data: OfflineData) -> None:
    config = {**SMALL, "hidden_size": 32, "quality_warmup": 150, "quality_every": 1000}
    algo: GAWI = build_algorithm("gawi", saboteur_data.spec, config)
    algo.sampling_subset(saboteur_data)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):  # the pass runs after update 150
        algo.update(saboteur_data.sample(128, generator))
    everything = saboteur_data.batch(torch.arange(len(saboteur_data)))
    with open_dataset(saboteur_data.datasets[0]["path"]) as dataset:  # ground truth: not in batches
        truth = torch.as_tensor(dataset.load(["policy_labels"])["policy_labels"])
    labels, counts = episode_agent_means(
        truth.float(),
        everything.alive,
        everything.episode_index,
        saboteur_data.n_episodes,
    )
    acted = counts > 0
    expert = labels[acted] == 0  # label 1: the adversary drove this agent (ground truth)
    assert int((~expert).sum()) == 3  # one saboteur in each of the 3 episodes
    assert separation_auc(algo.episode_advantage[acted], expert) == 1.0
    saboteurs, experts = algo.trust[acted][~expert], algo.trust[acted][expert]
    assert saboteurs.max() < experts.min()
    assert saboteurs.mean() < 0.5 * experts.mean()
