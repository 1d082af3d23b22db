"""QMIX: the attention mixer (monotone, any team size, blind to masked agents), the team target
against hand-computed values, the joint-action CQL term, and training on mixed team sizes."""

from __future__ import annotations

import math

import pytest
import torch

from algos.data import OfflineData
from algos.qmix import (
    AttentionMixer,
    MixingWeights,
    monotone_mix,
    qmix_td_target,
    sample_joint_actions,
)
from algos.registry import build_algorithm, make_config
from datagen.errors import UserError

FEATURES, EMBED, HEADS = 12, 8, 2


def mixer(seed: int = 0) -> AttentionMixer:
    torch.manual_seed(seed)
    return AttentionMixer(FEATURES, EMBED, HEADS)


def random_team(batch: int, n_agents: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Utilities (B, N), features (B, N, H) and an alive mask with at least one agent alive."""
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, n_agents, generator=generator) * 5
    features = torch.randn(batch, n_agents, FEATURES, generator=generator)
    alive = torch.rand(batch, n_agents, generator=generator) < 0.7
    alive[:, 0] = True
    return q, features, alive


@pytest.mark.parametrize("seed", range(3))
def test_q_tot_is_monotone_in_every_agents_utility(seed: int) -> None:
    mix = mixer(seed)
    q, features, alive = random_team(64, 6, seed)
    q.requires_grad_(True)
    (grad,) = torch.autograd.grad(mix(q, features, alive).sum(), q)
    assert torch.all(grad[alive] >= 0)
    assert torch.all(grad[alive].sum() > 0)
    assert torch.all(grad[~alive] == 0)  # dead agents do not move Q_tot at all


def test_the_same_mixer_mixes_two_agents_and_thirty_two() -> None:
    mix = mixer()
    for n_agents in (2, 32):
        q, features, alive = random_team(16, n_agents, n_agents)
        q_tot = mix(q, features, alive)
        assert q_tot.shape == (16,) and torch.isfinite(q_tot).all()
    # No agent has a slot: reordering the team leaves Q_tot unchanged.
    q, features, alive = random_team(16, 32, 5)
    order = torch.randperm(32, generator=torch.Generator().manual_seed(0))
    reordered = mix(q[:, order], features[:, order], alive[:, order])
    assert torch.allclose(mix(q, features, alive), reordered, atol=1e-5)


@pytest.mark.parametrize("value", [0.0, 1e6, float("nan"), float("inf")])
def test_a_masked_agent_does_not_change_q_tot(value: float) -> None:
    mix = mixer()
    q, features, alive = random_team(16, 3, 1)
    padded_q = torch.cat([q, torch.full((16, 1), value)], dim=1)  # (B, N + 1)
    padded_features = torch.cat([features, torch.randn(16, 1, FEATURES) * 100], dim=1)
    padded_alive = torch.cat([alive, torch.zeros(16, 1, dtype=torch.bool)], dim=1)
    expected = mix(q, features, alive)
    assert torch.allclose(mix(padded_q, padded_features, padded_alive), expected, atol=1e-5)
    # An agent killed in place (same slot, new features and utility) is ignored as well.
    killed = alive.clone()
    killed[:, 1] = False
    changed_q, changed_features = q.clone(), features.clone()
    changed_q[:, 1], changed_features[:, 1] = value, -50.0
    assert torch.allclose(
        mix(changed_q, changed_features, killed), mix(q, features, killed), atol=1e-5
    )


def test_attention_weights_sum_to_one_over_alive_agents() -> None:
    mix = mixer()
    _, features, alive = random_team(32, 7, 2)
    _, weights = mix.attention(features, alive)  # (B, heads, N, N)
    assert weights.shape == (32, HEADS, 7, 7)
    keys = alive[:, None, None, :].expand_as(weights)
    assert torch.all(weights[~keys] == 0)
    assert torch.allclose(weights.sum(-1), torch.ones(32, HEADS, 7))
    # A state with no agent alive (after the team's end) attends to nobody, and Q_tot is finite.
    nobody = torch.zeros(32, 7, dtype=torch.bool)
    _, weights = mix.attention(features, nobody)
    assert (weights == 0).all()
    assert torch.isfinite(mix(torch.randn(32, 7), features, nobody)).all()


def test_team_target_against_hand_computed_values() -> None:
    # Three states, two agents, three actions; agent 0's action 1 is illegal at s'.
    next_q_online = torch.tensor([[[1.0, 3.0, 2.0], [0.5, 0.1, 0.2]]]).repeat(3, 1, 1)
    next_q_target = torch.tensor([[[10.0, 20.0, 4.0], [2.0, 7.0, 9.0]]]).repeat(3, 1, 1)
    next_q_target[2, 1] = float("nan")  # agent 1 is dead in the third next state
    mask = torch.ones(3, 2, 3, dtype=torch.bool)
    mask[:, 0, 1] = False
    alive = torch.tensor([[True, True], [True, True], [True, False]])
    weights = MixingWeights(
        w1=torch.tensor([[1.0, 0.0], [0.5, 2.0]]).repeat(3, 1, 1) * alive.unsqueeze(-1),
        b1=torch.tensor([[-1.0, -10.0]]).repeat(3, 1),
        w2=torch.tensor([[1.0, 2.0]]).repeat(3, 1),
        b2=torch.full((3,), 0.5),
        alive=alive,
    )
    target = qmix_td_target(
        team_reward=torch.tensor([1.5, 1.5, -1.0]),
        team_bootstrap=torch.tensor([True, False, True]),
        gamma=0.9,
        next_q_online=next_q_online,
        next_q_target=next_q_target,
        next_action_mask=mask,
        next_weights=weights,
    )
    # Double DQN picks action 2 for agent 0 (action 1 is illegal) and 0 for agent 1, valued by
    # the target: q = (4, 2). Hidden = (4·1 + 2·0.5 − 1, 4·0 + 2·2 − 10) = (4, −6);
    # Q_tot = 1·ELU(4) + 2·ELU(−6) + 0.5 = 4 + 2(e⁻⁶ − 1) + 0.5.
    both = 2.5 + 2 * math.exp(-6)
    # Agent 0 alone: hidden = (4 − 1, 0 − 10) -> 3 + 2(e⁻¹⁰ − 1) + 0.5.
    alone = 1.5 + 2 * math.exp(-10)
    expected = torch.tensor([1.5 + 0.9 * both, 1.5, -1.0 + 0.9 * alone])
    assert torch.allclose(target, expected, atol=1e-6)


def test_monotone_mix_of_sampled_joint_actions_matches_one_at_a_time() -> None:
    mix = mixer()
    q, features, alive = random_team(8, 4, 3)
    weights = mix.mixing_weights(features, alive)
    samples = torch.randn(8, 5, 4)  # (B, K, N)
    together = monotone_mix(samples, weights)  # (B, K)
    one_by_one = torch.stack([monotone_mix(samples[:, k], weights) for k in range(5)], dim=1)
    assert torch.allclose(together, one_by_one, atol=1e-6)


def test_sampled_joint_actions_are_legal_and_cover_the_legal_ones() -> None:
    generator = torch.Generator().manual_seed(0)
    mask = torch.rand(16, 5, 4, generator=generator) < 0.5
    mask[..., 2] |= ~mask.any(-1)
    joint = sample_joint_actions(mask, 200, generator)  # (B, K, N)
    assert joint.shape == (16, 200, 5)
    legal = mask.unsqueeze(1).expand(-1, 200, -1, -1).gather(-1, joint.unsqueeze(-1))
    assert legal.all()
    seen = torch.zeros_like(mask).scatter_(-1, joint.transpose(1, 2), True)  # (B, N, A)
    assert torch.equal(seen, mask)  # 200 draws reach every legal action


def test_cql_term_with_only_the_data_action_legal_is_log_of_the_sample_count(
    prison_data: OfflineData,
) -> None:
    algo = build_algorithm("qmix", prison_data.spec, {"hidden_size": 16, "n_cql_samples": 7})
    batch = prison_data.sample(32, torch.Generator().manual_seed(0))
    mask = torch.nn.functional.one_hot(batch.actions, prison_data.spec.n_actions).bool()
    q = algo.q(batch.obs)
    weights = algo.mixer.mixing_weights(algo.q.features(batch.obs), batch.alive)
    q_tot = monotone_mix(q.gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1), weights)
    # Every sampled joint action is the dataset's: logsumexp of 8 equal values minus one of them.
    cql = algo.joint_cql(q, q_tot, weights, mask)
    assert cql.item() == pytest.approx(math.log(8), abs=1e-5)
    # With all actions legal the samples differ and the term is positive, below log(K + 1) + spread.
    assert algo.joint_cql(q, q_tot, weights, batch.action_mask).item() > 0


def test_total_loss_is_td_plus_weighted_cql(prison_data: OfflineData) -> None:
    batch = prison_data.sample(32, torch.Generator().manual_seed(1))
    default = build_algorithm("qmix", prison_data.spec, {"hidden_size": 16})
    assert default.config.cql_alpha == 3.0 and default.config.n_cql_samples == 20
    total, metrics = default.loss(batch)
    assert torch.allclose(total, metrics["loss/td"] + 3.0 * metrics["loss/cql"])
    assert metrics["loss/cql"] > 0
    plain = build_algorithm("qmix", prison_data.spec, {"hidden_size": 16, "cql_alpha": 0.0})
    total, metrics = plain.loss(batch)
    assert metrics["loss/cql"] == 0 and torch.allclose(total, metrics["loss/td"])


def test_trains_on_mixed_team_sizes_and_acts_for_thirty_two(tiny_paths) -> None:
    data = OfflineData.from_datasets([tiny_paths["prison"], tiny_paths["prison4"]])
    algo = build_algorithm("qmix", data.spec, {"hidden_size": 16}, seed=0)
    batch = data.sample(64, torch.Generator().manual_seed(0))
    assert (~batch.alive).any()  # the n = 2 transitions carry two padded agents
    for _ in range(3):
        metrics = algo.update(batch)
    assert all(math.isfinite(value) for value in metrics.values())
    obs = torch.randn(32, *data.spec.obs_shape)
    actions = algo.act(obs, torch.ones(32, dtype=torch.bool))
    assert actions.shape == (32,) and actions.max() < data.spec.n_actions


def test_bad_mixer_config_names_the_problem() -> None:
    with pytest.raises(UserError, match="n_heads \\(3\\) must divide mixer_embed_dim \\(32\\)"):
        make_config("qmix", {"n_heads": "3"})
    with pytest.raises(UserError, match="n_cql_samples must be at least 1"):
        make_config("qmix", {"n_cql_samples": "0"})
