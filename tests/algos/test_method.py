"""Our method (gawi): the coordination graph, the advantage weights and the per-agent trust."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor

from algos.coordination import CoordinationGraph, GraphAttention, GraphNetwork, neighbourhoods
from algos.data import Batch, OfflineData
from algos.functional import advantage_weights, expectile_loss, masked_attention
from algos.gawi import GAWI, episode_agent_means, separation_auc, trust_weights
from algos.registry import ALGORITHMS, build_algorithm, make_config
from datagen.dataset import open_dataset
from datagen.errors import UserError
from tests.algos.conftest import collect_saboteur_data

SMALL = {"hidden_size": 16}
FORMAT1 = Path(__file__).resolve().parent.parent / "fixtures" / "format1"


# ----------------------------------------------------------------------------- coordination
def test_attention_weights_sum_to_one_over_alive_agents() -> None:
    torch.manual_seed(0)
    layer = GraphAttention(16, 4)
    features = torch.randn(5, 6, 16)
    alive = torch.rand(5, 6) < 0.5
    alive[0] = False  # a team with nobody alive attends to nobody: weights 0, output finite
    alive[1:, 0] = True  # the other teams have someone alive
    whole_team = neighbourhoods(alive, None, n_neighbours=6)  # k >= N: the complete graph
    assert whole_team.index is None
    weights = layer.weights(features, whole_team)  # (B, heads, N, N)
    assert (weights[0] == 0).all()
    assert torch.allclose(weights[1:].sum(-1), torch.ones(4, 4, 6))
    keys = alive[:, None, None, :].expand_as(weights)  # every agent attends to the alive ones
    assert (weights[~keys] == 0).all()
    assert (weights[keys] > 0).all()
    assert torch.isfinite(layer(features, whole_team)).all()
    # Over 3 nearest: (B, heads, N, 3), summing to one over each agent's alive neighbours.
    nearest = neighbourhoods(alive, torch.randn(5, 6, 2), n_neighbours=3)
    weights = layer.weights(features, nearest)
    assert weights.shape == (5, 4, 6, 3)
    assert (weights[~nearest.allowed[:, None].expand_as(weights)] == 0).all()
    heard = nearest.allowed.any(-1)  # (B, N): agents with at least one alive neighbour
    assert torch.allclose(weights.sum(-1)[heard[:, None].expand(-1, 4, -1)], torch.tensor(1.0))
    assert (weights[0] == 0).all() and torch.isfinite(layer(features, nearest)).all()


def test_neighbourhoods_by_hand() -> None:
    # Five agents on a line at x = 0, 1, 3, 6, 10; agent 3 is dead.
    positions = torch.tensor([[[0.0, 0], [1, 0], [3, 0], [6, 0], [10, 0]]])
    alive = torch.tensor([[True, True, True, False, True]])
    nearest = neighbourhoods(alive, positions, n_neighbours=3)
    # Itself first, then the nearest alive: the dead agent 3 is nobody's neighbour, not even
    # its own (it still gathers from its nearest alive teammates: 2 at 3, 4 at 4, 1 at 5).
    assert nearest.index[0].tolist() == [[0, 1, 2], [1, 0, 2], [2, 1, 0], [2, 4, 1], [4, 2, 1]]
    assert nearest.allowed.all()
    # In view (radius 2.5), still at most 3: agent 4 hears only itself, agent 3 nobody.
    in_view = neighbourhoods(alive, positions, n_neighbours=3, view_radius=2.5)
    assert in_view.index[0, [0, 1, 2, 4], 0].tolist() == [0, 1, 2, 4]  # each itself first
    assert in_view.allowed[0].tolist() == [
        [True, True, False],  # 0: itself and 1 (at 1); 2 is 3 away
        [True, True, True],  # 1: itself, 0 (at 1) and 2 (at 2)
        [True, True, False],  # 2: itself and 1 (at 2)
        [False, False, False],  # 3 (dead): 2 is 3 away
        [True, False, False],  # 4: alone
    ]
    # A view radius of 0 (prison's): each alive agent hears itself only.
    alone = neighbourhoods(alive, positions, n_neighbours=3, view_radius=0.0)
    assert alone.allowed[0].sum(-1).tolist() == [1, 1, 1, 0, 1]
    # Itself first even when a teammate stands on the same spot; ties go to the lower index.
    stacked = neighbourhoods(torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 3, 2), 2)
    assert stacked.index[0].tolist() == [[0, 1], [1, 0], [2, 0]]
    # k >= N without a radius is the complete graph, which needs no positions ...
    complete = neighbourhoods(alive, None, n_neighbours=5)
    assert complete.index is None and torch.equal(complete.allowed, alive)
    # ... anything else does.
    with pytest.raises(UserError, match="4 nearest of 5 agents, which needs every agent's pos"):
        neighbourhoods(alive, None, n_neighbours=4)
    with pytest.raises(UserError, match="5 in view of 5 agents"):
        neighbourhoods(alive, None, n_neighbours=5, view_radius=1.0)


def _complete_graph_round(layer: GraphAttention, features: Tensor, alive: Tensor) -> Tensor:
    """A round over every alive teammate as it was computed before neighbourhoods existed."""
    batch, n_agents, hidden = features.shape
    heads = layer.qkv(features).reshape(batch, n_agents, 3, layer.n_heads, layer.head_size)
    query, key, value = heads.permute(2, 0, 3, 1, 4)
    attended, _ = masked_attention(query, key, value, alive)
    messages = layer.out(attended.transpose(1, 2).reshape(batch, n_agents, hidden))
    return layer.norm(features + messages)


def test_k_at_least_the_team_size_is_exactly_the_complete_graph() -> None:
    torch.manual_seed(0)
    features = torch.randn(4, 6, 16)
    alive = torch.rand(4, 6) < 0.7
    positions = 10 * torch.rand(4, 6, 2)
    graph = CoordinationGraph(16, 4, n_rounds=2, n_neighbours=6)
    expected = features
    for round_ in graph.rounds:
        expected = _complete_graph_round(round_, expected, alive)
    for k in (0, 6, 50):  # 0: the whole team; with or without positions: the dense attention
        graph.n_neighbours = k
        assert torch.equal(graph(features, alive, positions), expected)
        assert torch.equal(graph(features, alive, None), expected)
    # The gathered path with the whole team in every neighbourhood (a radius that sees
    # everyone) computes the same attention, up to the order of float additions.
    graph.view_radius = 1e6
    assert torch.allclose(graph(features, alive, positions), expected, atol=1e-5)


def test_an_agent_outside_the_neighbourhood_is_not_heard(pursuit_data: OfflineData) -> None:
    torch.manual_seed(0)
    spec = pursuit_data.spec
    network = GraphNetwork(
        spec, 5, 16, "auto", 4, n_rounds=1, n_neighbours=2, neighbourhood="nearest"
    )
    obs = torch.rand(3, 5, *spec.obs_shape)
    alive = torch.ones(3, 5, dtype=torch.bool)
    # On a line: agent 0's nearest teammate is 1; 4 is the farthest from it.
    positions = torch.tensor([[0.0, 0], [1, 0], [3, 0], [6, 0], [10, 0]]).expand(3, 5, 2)
    before = network(obs, alive, positions)
    far = obs.clone()
    far[:, 4] = torch.rand(3, *spec.obs_shape)
    assert torch.equal(network(far, alive, positions)[:, 0], before[:, 0])
    near = obs.clone()
    near[:, 1] = torch.rand(3, *spec.obs_shape)
    assert not torch.allclose(network(near, alive, positions)[:, 0], before[:, 0])
    # Moved next to agent 0, agent 4 is heard instead of agent 1.
    moved = positions.clone()
    moved[:, 4] = torch.tensor([0.5, 0.0])
    assert not torch.allclose(network(far, alive, moved)[:, 0], network(obs, alive, moved)[:, 0])
    assert torch.equal(network(near, alive, moved)[:, 0], network(obs, alive, moved)[:, 0])


def test_in_view_needs_a_radius_and_hears_only_those_in_view(prison_data: OfflineData) -> None:
    spec = prison_data.spec
    assert spec.view_radius == 0.0  # a prisoner sees only its own cell
    network = GraphNetwork(
        spec, 3, 16, "auto", 4, n_rounds=1, n_neighbours=4, neighbourhood="in-view"
    )
    obs = torch.rand(2, 4, *spec.obs_shape)
    alive = torch.ones(2, 4, dtype=torch.bool)
    positions = torch.tensor([[0.0, 0], [46, 0], [0, 46], [46, 46]]).expand(2, 4, 2)
    other = obs.clone()
    other[:, 1:] = torch.rand(2, 3, *spec.obs_shape)
    assert torch.equal(network(other, alive, positions)[:, 0], network(obs, alive, positions)[:, 0])
    unknown = dataclasses.replace(spec, view_radius=None)
    with pytest.raises(UserError, match="in-view needs the env's view radius"):
        GraphNetwork(unknown, 3, 16, "auto", 4, n_rounds=1, n_neighbours=4, neighbourhood="in-view")


def test_dead_agents_do_not_influence_alive_ones() -> None:
    torch.manual_seed(0)
    features = torch.randn(3, 5, 16)
    alive = torch.tensor([[True, False, True, True, False]] * 3)
    positions = 10 * torch.rand(3, 5, 2)
    for k in (5, 2):  # the complete graph, and the 2 nearest
        graph = CoordinationGraph(16, 4, n_rounds=2, n_neighbours=k)
        changed = features.clone()
        changed[:, [1, 4]] = 100 * torch.randn(3, 2, 16)  # anything at the dead agents
        before, after = graph(features, alive, positions), graph(changed, alive, positions)
        assert torch.allclose(before[alive], after[alive], atol=1e-6)
        assert not torch.allclose(before[~alive], after[~alive])
    # ... while an alive teammate does influence them.
    graph = CoordinationGraph(16, 4, n_rounds=2, n_neighbours=5)
    changed = features.clone()
    changed[:, 2] += 1.0
    assert not torch.allclose(graph(changed, alive)[:, 0], graph(features, alive)[:, 0])


def test_the_same_weights_act_for_2_and_32_agents(pursuit_data: OfflineData) -> None:
    torch.manual_seed(0)
    network = GraphNetwork(
        pursuit_data.spec,
        5,
        16,
        "auto",
        n_heads=4,
        n_rounds=1,
        n_neighbours=4,
        neighbourhood="nearest",
    )
    obs = torch.rand(4, 2, *pursuit_data.spec.obs_shape)
    alive = torch.ones(4, 2, dtype=torch.bool)
    positions = 16 * torch.rand(4, 32, 2)
    pair = network(obs, alive, positions[:, :2])
    # The same two agents in a 32-wide team whose other 30 are dead: identical outputs.
    wide_obs = torch.cat([obs, torch.rand(4, 30, *pursuit_data.spec.obs_shape)], dim=1)
    wide_alive = torch.cat([alive, torch.zeros(4, 30, dtype=torch.bool)], dim=1)
    assert torch.allclose(network(wide_obs, wide_alive, positions)[:, :2], pair, atol=1e-5)
    # 32 alive agents: a (4, 32, 5) output from the same parameters, equivariant to the order.
    wide_alive[:] = True
    outputs = network(wide_obs, wide_alive, positions)
    assert outputs.shape == (4, 32, 5)
    order = torch.randperm(32)
    assert torch.allclose(
        network(wide_obs[:, order], wide_alive, positions[:, order]), outputs[:, order], atol=1e-5
    )


def test_gawi_acts_for_any_team_size_and_its_graph_sees_alive(pursuit_data: OfflineData) -> None:
    algo = build_algorithm("gawi", pursuit_data.spec, SMALL)
    for n_agents in (2, 8, 32):
        obs = torch.rand(n_agents, *pursuit_data.spec.obs_shape)
        alive = torch.ones(n_agents, dtype=torch.bool)
        positions = 16 * torch.rand(n_agents, 2)
        assert algo.act(obs, alive, positions=positions).shape == (n_agents,)
    with pytest.raises(UserError, match="4 nearest of 8 agents"):
        algo.act(torch.rand(8, *pursuit_data.spec.obs_shape), torch.ones(8, dtype=torch.bool))
    # `act` passes alive to the message passing: a dead teammate's observation does not matter.
    obs = torch.rand(3, 4, *pursuit_data.spec.obs_shape)
    alive = torch.tensor([True, True, False, True]).expand(3, 4)
    other = obs.clone()
    other[:, 2] = torch.rand(3, *pursuit_data.spec.obs_shape)
    scores = algo.policy(obs, alive)
    assert torch.equal(algo.act(obs, alive), algo.act(other, alive))
    assert torch.allclose(algo.policy(other, alive)[:, [0, 1, 3]], scores[:, [0, 1, 3]], atol=1e-6)


def test_communicating_data_without_positions_is_refused_by_name(tmp_path: Path) -> None:
    """A format-1 dataset (no positions) trains a communicating algorithm only when every agent
    hears the whole team; a smaller neighbourhood is refused, naming the dataset."""
    data = OfflineData.from_datasets([FORMAT1 / "pursuit-n2-random-v1.h5"])
    assert not data.has_positions and data.spec.view_radius is None
    assert data.sample(4, torch.Generator().manual_seed(0)).positions is None
    build_algorithm("gawi", data.spec, SMALL).attach(data)  # 4 nearest of 2: the whole team
    algo = build_algorithm("bc-comm", data.spec, {**SMALL, "graph_neighbours": 1})
    with pytest.raises(UserError, match=r"needs agent positions, which pursuit-n2-random-v1 do"):
        algo.attach(data)
    with pytest.raises(UserError, match="in-view needs the env's view radius"):
        build_algorithm("bc-comm", data.spec, {**SMALL, "graph_neighbourhood": "in-view"})


def test_neighbourhood_config_is_checked() -> None:
    with pytest.raises(UserError, match="valid neighbourhoods: nearest, in-view"):
        make_config("gawi", {"graph_neighbourhood": "everyone"})
    with pytest.raises(UserError, match=r"graph_neighbours must be >= 0 \(0: the whole team\)"):
        make_config("bc-comm", {"graph_neighbours": -1})
    assert make_config("gawi").graph_neighbours == 4


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
