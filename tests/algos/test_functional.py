"""The shared pure functions against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from algos import functional as fn

T, F = True, False


def test_masked_argmax_never_picks_an_illegal_action() -> None:
    values = torch.tensor([[1.0, 5.0, 3.0], [9.0, 1.0, 2.0]])
    mask = torch.tensor([[T, F, T], [F, T, T]])
    assert fn.masked_argmax(values, mask).tolist() == [2, 2]
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(500, 7, generator=generator)
    mask = torch.rand(500, 7, generator=generator) < 0.4
    mask[torch.arange(500), torch.randint(7, (500,), generator=generator)] = True
    chosen = fn.masked_argmax(values, mask)
    assert mask[torch.arange(500), chosen].all()


def test_masked_logsumexp_masks_before_reducing() -> None:
    values = torch.tensor([0.0, 0.0, 100.0])
    mask = torch.tensor([T, T, F])
    # log(e^0 + e^0) = log 2; masking after the logsumexp would give about 100.
    assert fn.masked_logsumexp(values, mask).item() == pytest.approx(math.log(2))


def test_masked_softmax_and_log_softmax() -> None:
    logits = torch.tensor([1.0, 1.0, 50.0])
    mask = torch.tensor([T, T, F])
    assert fn.masked_softmax(logits, mask).tolist() == [0.5, 0.5, 0.0]
    log_probs = fn.masked_log_softmax(logits, mask)
    assert log_probs[:2].tolist() == pytest.approx([math.log(0.5)] * 2)
    assert log_probs[2].item() == fn.ILLEGAL_LOG_PROB
    assert torch.exp(log_probs)[2].item() == 0.0


def test_td_target_is_double_dqn_and_drops_non_bootstrapped_values() -> None:
    rewards = torch.tensor([[1.0, 2.0]])
    bootstrap = torch.tensor([[T, F]])
    online = torch.tensor([[[1.0, 3.0, 2.0], [0.0, 0.0, 9.0]]])
    target = torch.tensor([[[10.0, 20.0, 30.0], [float("inf"), float("nan"), 3.0]]])
    mask = torch.tensor([[[T, F, T], [T, T, T]]])
    # Agent 0: the online net picks action 2 among legal {0, 2} (3.0 at action 1 is illegal);
    # the target net values it 30 -> 1 + 0.5 * 30. Agent 1 does not bootstrap: its reward only,
    # whatever non-finite values the target holds.
    result = fn.td_target(rewards, bootstrap, 0.5, online, target, mask)
    assert result.tolist() == [[16.0, 2.0]]


def test_cql_term_exact_over_legal_actions_and_alive_agents() -> None:
    q = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 7.0], [4.0, 4.0, 4.0]]])
    actions = torch.tensor([[0, 1], [1, 2]])
    mask = torch.tensor([[[T, T, F], [T, T, T]], [[T, T, T], [T, T, T]]])
    alive = torch.tensor([[T, F], [F, T]])
    # Alive: (batch 0, agent 0) logsumexp(1, 2) - 1; (batch 1, agent 1) log(3 e^4) - 4 = log 3.
    first = math.log(math.exp(1) + math.exp(2)) - 1.0
    expected = (first + math.log(3)) / 2
    assert fn.cql_term(q, actions, mask, alive).item() == pytest.approx(expected, rel=1e-6)


def test_discrete_sac_target_sums_over_actions() -> None:
    probs = torch.tensor([[[0.25, 0.75, 0.0]]])
    mask = torch.tensor([[[T, T, F]]])
    log_probs = torch.log(probs).masked_fill(~mask, fn.ILLEGAL_LOG_PROB)
    next_q = torch.tensor([[[2.0, 4.0, 100.0]]])
    value = 0.25 * (2 - 0.5 * math.log(0.25)) + 0.75 * (4 - 0.5 * math.log(0.75))
    result = fn.discrete_sac_target(
        torch.tensor([[1.0]]), torch.tensor([[T]]), 0.9, probs, log_probs, next_q, 0.5, mask
    )
    assert result.item() == pytest.approx(1 + 0.9 * value, rel=1e-6)
    no_bootstrap = fn.discrete_sac_target(
        torch.tensor([[1.0]]), torch.tensor([[F]]), 0.9, probs, log_probs, next_q, 0.5, mask
    )
    assert no_bootstrap.item() == 1.0


def test_discrete_sac_actor_loss_and_finite_gradients_with_illegal_actions() -> None:
    logits = torch.tensor([[[0.0, math.log(3.0), 5.0]]], requires_grad=True)
    mask = torch.tensor([[[T, T, F]]])
    alpha = torch.tensor(0.5, requires_grad=True)
    probs = fn.masked_softmax(logits, mask)  # (0.25, 0.75, 0)
    log_probs = fn.masked_log_softmax(logits, mask)
    q = torch.tensor([[[2.0, 4.0, 100.0]]])
    loss = fn.discrete_sac_actor_loss(probs, log_probs, q, alpha, mask, torch.tensor([[T]]))
    expected = 0.25 * (0.5 * math.log(0.25) - 2) + 0.75 * (0.5 * math.log(0.75) - 4)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(alpha.grad)
    assert alpha.grad.item() == pytest.approx(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    entropy = fn.entropy(probs, log_probs, mask)
    assert entropy.item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_categorical_kl() -> None:
    # p = (0.5, 0.5, 0) from logits with the third action illegal; q = (0.25, 0.25, 0.5):
    # KL(p || q) = 0.5 log 2 + 0.5 log 2 = log 2.
    logits = torch.tensor([0.0, 0.0, 3.0], requires_grad=True)
    mask = torch.tensor([T, T, F])
    p, log_p = fn.masked_softmax(logits, mask), fn.masked_log_softmax(logits, mask)
    q = torch.tensor([0.25, 0.25, 0.5])
    all_legal = torch.tensor([T, T, T])
    kl = fn.categorical_kl(log_p, torch.log(q), all_legal, p=p)
    assert kl.item() == pytest.approx(math.log(2))
    kl.backward()
    assert torch.isfinite(logits.grad).all()
    assert fn.categorical_kl(torch.log(q), torch.log(q), all_legal).item() == pytest.approx(0.0)


def test_discrete_mmd_closed_form() -> None:
    kernel = fn.gaussian_action_kernel(2, sigma=1.0)
    assert kernel.flatten().tolist() == pytest.approx([1.0, math.exp(-1), math.exp(-1), 1.0])
    p, q = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert fn.discrete_mmd(p, q, kernel).item() == pytest.approx(2 - 2 * math.exp(-1))
    r = torch.tensor([0.2, 0.3, 0.5])
    assert fn.discrete_mmd(r, r, fn.gaussian_action_kernel(3, 0.5)).item() == 0.0


def test_support_and_out_of_support_mass() -> None:
    behaviour = torch.tensor([0.6, 0.3, 0.1])
    mask = torch.tensor([T, T, T])
    # Support: beta > 0.2 * 0.6 = 0.12 -> actions 0 and 1.
    assert fn.support_mask(behaviour, 0.2, mask).tolist() == [T, T, F]
    probs = torch.tensor([0.2, 0.3, 0.5])
    assert fn.out_of_support_mass(probs, behaviour, 0.2, mask).item() == pytest.approx(0.5)


def test_masked_mean_ignores_dead_agents_even_when_not_finite() -> None:
    values = torch.tensor([[1.0, float("nan")], [3.0, float("inf")]])
    alive = torch.tensor([[T, F], [T, F]])
    assert fn.masked_mean(values, alive).item() == 2.0
    assert fn.masked_mean(values, torch.zeros_like(alive)).item() == 0.0


def test_soft_update() -> None:
    target, source = nn.Linear(2, 2), nn.Linear(2, 2)
    nn.init.zeros_(target.weight)
    nn.init.ones_(source.weight)
    fn.soft_update(target, source, 0.25)
    assert target.weight.detach().flatten().tolist() == [0.25] * 4
    fn.soft_update(target, source, 1.0)
    assert torch.equal(target.bias, source.bias)


def test_masked_attention_by_hand() -> None:
    # One head, D = 4 (√D = 2), three keys of which the middle one is masked out.
    query = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]])  # two queries
    key = torch.tensor([[0.0, 0, 0, 0], [200.0, 0, 0, 0], [2 * math.log(3), 0, 0, 0]])
    value = torch.tensor([[1.0, 0.0], [50.0, 50.0], [0.0, 4.0]])
    key_mask = torch.tensor([[T, F, T]])
    outputs, weights = fn.masked_attention(
        query[None, None], key[None, None], value[None, None], key_mask
    )
    # Query 1: scores q·k / 2 = [0, 100, log 3]; over the allowed keys e^0 : e^{log 3} = 1 : 3, and
    # the masked key's score of 100 counts for nothing. Query 2: equal scores, 1/2 each.
    assert weights[0, 0].flatten().tolist() == pytest.approx([0.25, 0.0, 0.75, 0.5, 0.0, 0.5])
    assert weights[0, 0, :, 1].tolist() == [0.0, 0.0]  # exactly 0
    # Outputs: 1/4 · (1, 0) + 3/4 · (0, 4) and 1/2 · (1, 0) + 1/2 · (0, 4).
    assert outputs[0, 0].flatten().tolist() == pytest.approx([0.25, 3.0, 0.5, 2.0])


def test_masked_attention_over_each_querys_own_keys_by_hand() -> None:
    # The keys and values above, gathered per query (K = 3): query 1 over (k0, k1, k2) with k1
    # masked out, as before; query 2 over (k2, k1, k0) with only k2 allowed; query 3 over nothing.
    query = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [1.0, 0, 0, 0]])
    key = torch.tensor([[0.0, 0, 0, 0], [200.0, 0, 0, 0], [2 * math.log(3), 0, 0, 0]])
    value = torch.tensor([[1.0, 0.0], [50.0, 50.0], [0.0, 4.0]])
    own = torch.tensor([[0, 1, 2], [2, 1, 0], [0, 1, 2]])  # (Nq, K) indices into the keys
    key_mask = torch.tensor([[[T, F, T], [T, F, F], [F, F, F]]])  # (B, Nq, K)
    outputs, weights = fn.masked_attention(
        query[None, None], key[own][None, None], value[own][None, None], key_mask
    )
    assert weights.shape == (1, 1, 3, 3)
    assert weights[0, 0].flatten().tolist() == pytest.approx([0.25, 0, 0.75, 1, 0, 0, 0, 0, 0])
    assert outputs[0, 0].flatten().tolist() == pytest.approx([0.25, 3.0, 0.0, 4.0, 0.0, 0.0])


def test_masked_attention_with_no_allowed_key_gives_zeros_and_finite_gradients() -> None:
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 3, 4, 8, generator=generator, requires_grad=True)  # (B, heads, N, D)
    key = torch.randn(2, 3, 4, 8, generator=generator, requires_grad=True)
    value = torch.randn(2, 3, 4, 5, generator=generator)
    key_mask = torch.tensor([[F, F, F, F], [T, F, T, F]])  # team 0: nobody alive
    outputs, weights = fn.masked_attention(query, key, value, key_mask)
    assert (weights[0] == 0).all() and (outputs[0] == 0).all()
    assert torch.allclose(weights[1].sum(-1), torch.ones(3, 4))
    assert (weights[1][..., [1, 3]] == 0).all()
    outputs.sum().backward()
    assert torch.isfinite(query.grad).all() and torch.isfinite(key.grad).all()
    assert (query.grad[0] == 0).all()
