"""Discrete SAC, BRAC and BEAR: their loss pieces against hand-computed values, and the
separation of their optimisers' terms."""

from __future__ import annotations

import math

import pytest
import torch

from algos import functional as fn
from algos.data import Batch, OfflineData
from algos.registry import build_algorithm, make_config
from datagen.errors import UserError

T, F = True, False
SMALL = {"hidden_size": 16}
ACTOR_CRITICS = ("sac", "brac", "bear")


def batch_of(data: OfflineData, seed: int = 0, size: int = 32) -> Batch:
    return data.sample(size, torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ shared pure functions


def test_target_entropy_counts_legal_actions() -> None:
    mask = torch.tensor([[T, T, T, T], [T, F, T, F], [F, F, T, F]])
    # δ = 0.3: 0.7 on one action, 0.1 on each of three others; two legal: 0.7 / 0.3; one: 0.
    four = -0.7 * math.log(0.7) - 3 * 0.1 * math.log(0.1)
    two = -0.7 * math.log(0.7) - 0.3 * math.log(0.3)
    assert fn.target_entropy(mask, 0.3).tolist() == pytest.approx([four, two, 0.0])
    # δ beyond (k - 1) / k is the uniform policy's entropy; δ = 0 asks for a deterministic one.
    assert fn.target_entropy(mask, 0.9).tolist() == pytest.approx([math.log(4), math.log(2), 0])
    assert fn.target_entropy(mask, 0.0).tolist() == [0.0, 0.0, 0.0]


def test_bear_entropy_target_and_constraint_can_hold_together() -> None:
    from algos.bear import largest_feasible_spread

    # MMD with σ = 1 against a one-hot β̂: (1 - e^-1) · δ² · 5 / 4 = 0.05 at δ ≈ 0.2516.
    delta = largest_feasible_spread("mmd", 0.05, 1.0, 5)
    assert (1 - math.exp(-1)) * delta**2 * 5 / 4 == pytest.approx(0.05)
    assert largest_feasible_spread("support", 0.05, 1.0, 5) == 0.05
    assert largest_feasible_spread("mmd", 10.0, 1.0, 5) == pytest.approx(0.8), "uniform cap"


def test_dual_ascent_loss_raises_the_multiplier_only_when_violated() -> None:
    alive = torch.tensor([[T, T, F]])
    for violation, direction in (([0.3, 0.1, -50.0], 1), ([-0.3, 0.1, 50.0], -1)):
        log_multiplier = torch.tensor(0.0, requires_grad=True)
        values = torch.tensor([violation], requires_grad=True)
        loss = fn.dual_ascent_loss(log_multiplier, values, alive)
        mean = (violation[0] + violation[1]) / 2  # the dead agent's value does not count
        assert loss.item() == pytest.approx(0.0)
        loss.backward()
        assert log_multiplier.grad.item() == pytest.approx(-mean)
        assert values.grad is None  # the violation enters without gradient
        # A gradient step (−grad) moves log λ up exactly when the constraint is violated.
        assert math.copysign(1, -log_multiplier.grad.item()) == direction


def test_twin_td_loss_is_on_the_taken_action_of_each_critic() -> None:
    q = torch.tensor(
        [
            [[[1.0, 2.0, 9.0], [0.0, 5.0, 0.0]]],  # critic 1: (B=1, N=2, A=3)
            [[[3.0, 0.0, 9.0], [0.0, 7.0, 0.0]]],  # critic 2
        ]
    )
    actions = torch.tensor([[0, 1]])
    target = torch.tensor([[2.0, 4.0]])
    alive = torch.tensor([[T, F]])
    # Only agent 0 is alive: ½ (1 − 2)² + ½ (3 − 2)²; the 9s of the untaken action do not count.
    assert fn.twin_td_loss(q, actions, target, alive).item() == pytest.approx(1.0)
    both_alive = torch.tensor([[T, T]])
    # Agent 1: ½ (5 − 4)² and ½ (7 − 4)²; each critic's mean over 2 agents.
    expected = (0.5 + 0.5) / 2 + (0.5 + 4.5) / 2
    assert fn.twin_td_loss(q, actions, target, both_alive).item() == pytest.approx(expected)


def test_value_penalty_is_the_soft_value_with_the_log_ratio() -> None:
    # Σ π [Q − α (log π − log β)] = Σ π Q − α KL(π‖β), with the third action illegal.
    mask = torch.tensor([[[T, T, F]]])
    probs = torch.tensor([[[0.25, 0.75, 0.0]]])
    log_probs = torch.log(probs).masked_fill(~mask, fn.ILLEGAL_LOG_PROB)
    behaviour_log_probs = fn.masked_log_softmax(torch.tensor([[[0.0, 0.0, 4.0]]]), mask)
    q = torch.tensor([[[2.0, 4.0, 100.0]]])
    target = fn.discrete_sac_target(
        torch.tensor([[0.0]]),
        torch.tensor([[T]]),
        1.0,
        probs,
        log_probs - behaviour_log_probs,
        q,
        0.1,
        mask,
    )
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert target.item() == pytest.approx(0.25 * 2 + 0.75 * 4 - 0.1 * kl, rel=1e-6)


def test_gaussian_mmd_between_categoricals_is_a_scaled_squared_distance() -> None:
    # (p − q) sums to 0, so (p − q)ᵀ K (p − q) = (1 − exp(−1/σ²)) ‖p − q‖² (see algos/bear.py).
    p, q = torch.tensor([0.7, 0.2, 0.1, 0.0]), torch.tensor([0.1, 0.2, 0.3, 0.4])
    squared = 0.6**2 + 0.0 + 0.2**2 + 0.4**2
    for sigma in (0.5, 1.0, 20.0):
        kernel = fn.gaussian_action_kernel(4, sigma)
        expected = (1 - math.exp(-1 / sigma**2)) * squared
        # float32: at σ = 20 the off-diagonal 0.9975 cancels most digits
        assert fn.discrete_mmd(p, q, kernel).item() == pytest.approx(expected, rel=1e-4)


# --------------------------------------------------------------------------- algorithms


@pytest.mark.parametrize("name", ACTOR_CRITICS)
def test_each_term_reaches_only_its_own_optimisers_parameters(
    name: str, prison_data: OfflineData
) -> None:
    algo = build_algorithm(name, prison_data.spec, SMALL)
    terms, _ = algo.terms(batch_of(prison_data))
    assert set(terms) == set(algo.optimizers)
    groups = {
        group: [p for g in optimizer.param_groups for p in g["params"]]
        for group, optimizer in algo.optimizers.items()
    }
    for term_name, term in terms.items():
        for group, params in groups.items():
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            reached = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
            assert reached == (group == term_name), (term_name, group)
    # Target critics are never trained.
    assert all(not p.requires_grad for p in algo.critic_target.parameters())


@pytest.mark.parametrize("name", ["sac", "bear"])
def test_temperature_rises_below_the_entropy_target_and_falls_above(
    name: str, prison_data: OfflineData
) -> None:
    batch = batch_of(prison_data)
    # A fresh policy is not exactly uniform: its entropy is below log|A| (δ 0.99: the uniform
    # policy's) and above 0 (δ 0 would be a deterministic policy; BEAR reads 0 as its default, so
    # it gets a tiny δ instead).
    for spread, direction in ((0.99, 1), (1e-6, -1)):
        config = {**SMALL, "target_entropy_spread": spread}
        algo = build_algorithm(name, prison_data.spec, config)
        before = algo.temperature().item()
        metrics = algo.update(batch)
        assert metrics["train/alpha"] == pytest.approx(before)
        assert math.copysign(1, algo.temperature().item() - before) == direction


def test_cql_term_is_part_of_the_sac_critic_loss(prison_data: OfflineData) -> None:
    batch = batch_of(prison_data)
    with_cql = build_algorithm("sac", prison_data.spec, {**SMALL, "cql_alpha": 2.0})
    without = build_algorithm("sac", prison_data.spec, {**SMALL, "cql_alpha": 0.0})
    terms_with, metrics_with = with_cql.terms(batch)
    terms_without, metrics_without = without.terms(batch)
    assert metrics_with["loss/cql"] > 0
    expected = metrics_with["loss/critic"] + 2.0 * metrics_with["loss/cql"]
    assert terms_with["critic"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms_without["critic"].item() == pytest.approx(metrics_without["loss/critic"].item())


def test_sac_actor_loss_is_the_expectation_under_the_policy(prison_data: OfflineData) -> None:
    algo = build_algorithm("sac", prison_data.spec, SMALL)
    batch = batch_of(prison_data)
    terms, metrics = algo.terms(batch)
    with torch.no_grad():
        log_probs = fn.masked_log_softmax(algo.actor(batch.obs), batch.action_mask)
        q = algo.critic(batch.obs).min(dim=0).values
        alpha = algo.temperature()
        per_agent = (log_probs.exp() * (alpha * log_probs - q)).sum(-1)  # all actions legal here
    assert batch.action_mask.all()
    assert terms["actor"].item() == pytest.approx(fn.masked_mean(per_agent, batch.alive).item())


def test_brac_kl_is_zero_when_the_policy_is_the_cloned_behaviour(
    prison_data: OfflineData,
) -> None:
    algo = build_algorithm("brac", prison_data.spec, SMALL)
    batch = batch_of(prison_data)
    _, metrics = algo.terms(batch)
    assert metrics["train/kl"] > 0  # two different initialisations
    algo.actor.load_state_dict(algo.behaviour.state_dict())
    terms, metrics = algo.terms(batch)
    assert metrics["train/kl"].item() == pytest.approx(0.0, abs=1e-7)
    # Without the penalty the actor loss is −E_π min Q.
    with torch.no_grad():
        probs = fn.masked_softmax(algo.actor(batch.obs), batch.action_mask)
        q = algo.critic(batch.obs).min(dim=0).values
        expected = fn.masked_mean(-(probs * q).sum(-1), batch.alive)
    assert terms["actor"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_brac_critic_regresses_on_the_kl_penalised_target(prison_data: OfflineData) -> None:
    batch = batch_of(prison_data)
    algo = build_algorithm("brac", prison_data.spec, {**SMALL, "kl_alpha": 5.0})
    _, metrics = algo.terms(batch)
    gamma, next_mask = algo.config.gamma, batch.next_action_mask
    with torch.no_grad():  # y = r + γ · bootstrap · (Σ_a π(a|s') min Q'(s', a) − α KL(π‖β̂)(s'))
        next_log_probs = fn.masked_log_softmax(algo.actor(batch.next_obs), next_mask)
        next_behaviour = fn.masked_log_softmax(algo.behaviour(batch.next_obs), next_mask)
        kl = fn.categorical_kl(next_log_probs, next_behaviour, next_mask)
        next_q = algo.critic_target(batch.next_obs).min(dim=0).values
        value = fn.expectation(next_log_probs.exp(), next_q, next_mask) - 5.0 * kl
        target = batch.rewards + gamma * torch.where(batch.bootstrap, value, 0.0)
        expected = fn.twin_td_loss(algo.critic(batch.obs), batch.actions, target, batch.alive)
    assert (kl[batch.bootstrap] > 0).all() and batch.bootstrap.any()
    assert metrics["loss/critic"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize(
    ("constraint", "extra"), [("mmd", {}), ("support", {"support_threshold": 0.99})]
)
def test_bear_multiplier_rises_when_violated_and_falls_otherwise(
    constraint: str, extra: dict, prison_data: OfflineData
) -> None:
    batch = batch_of(prison_data)
    config = {**SMALL, "constraint": constraint, **extra}
    tight = build_algorithm("bear", prison_data.spec, {**config, "constraint_threshold": 0.0})
    loose = build_algorithm("bear", prison_data.spec, {**config, "constraint_threshold": 10.0})
    key = "train/mmd" if constraint == "mmd" else "train/out_of_support"
    for algo, direction in ((tight, 1), (loose, -1)):
        before = algo.multiplier().item()
        metrics = algo.update(batch)
        assert metrics[key] > 0  # π and β̂ start apart (and off the one-action support)
        assert math.copysign(1, algo.multiplier().item() - before) == direction
        # The temperature is a separate parameter: it does not follow the multiplier.
        assert algo.temperature() is not algo.multiplier()
    assert tight.temperature().item() != tight.multiplier().item()


def test_bear_multiplier_is_clipped(prison_data: OfflineData) -> None:
    config = {**SMALL, "constraint_threshold": 0.0, "log_multiplier_max": 0.0}
    algo = build_algorithm("bear", prison_data.spec, config)
    for step in range(3):
        algo.update(batch_of(prison_data, seed=step))
    assert algo.multiplier().item() == 1.0  # exp(0): pushed up, held at the clip


def test_bear_actor_loss_adds_the_weighted_constraint(prison_data: OfflineData) -> None:
    batch = batch_of(prison_data)
    algo = build_algorithm("bear", prison_data.spec, {**SMALL, "initial_multiplier": 3.0})
    terms, metrics = algo.terms(batch)
    with torch.no_grad():
        probs = fn.masked_softmax(algo.actor(batch.obs), batch.action_mask)
        log_probs = fn.masked_log_softmax(algo.actor(batch.obs), batch.action_mask)
        q = algo.critic(batch.obs).min(dim=0).values
        alpha = algo.temperature()
        soft = fn.masked_mean((probs * (alpha * log_probs - q)).sum(-1), batch.alive)
    expected = soft + 3.0 * metrics["train/mmd"]
    assert terms["actor"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_bad_configs_name_the_problem() -> None:
    with pytest.raises(UserError, match="valid constraints: mmd, support"):
        make_config("bear", {"constraint": "wasserstein"})
    with pytest.raises(UserError, match="target_entropy_spread must be in"):
        make_config("sac", {"target_entropy_spread": "1.5"})
    with pytest.raises(UserError, match="kl_alpha must be >= 0"):
        make_config("brac", {"kl_alpha": "-1"})
    with pytest.raises(UserError, match="outside"):
        make_config("bear", {"initial_multiplier": "1e6"})
