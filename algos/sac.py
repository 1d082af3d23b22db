"""Discrete soft actor-critic: twin critics, a categorical policy and a learned temperature, with
a conservative (CQL) term on the critics.

Paper: Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings" (arXiv:1910.07207):
the soft value is an exact expectation over actions, V(s') = Σ_a π(a|s')[min_i Q'_i(s', a) −
α log π(a|s')] (eq. 10), the actor minimises Σ_a π(a|s)[α log π(a|s) − Q(s, a)] (eq. 12) and the
temperature follows J(α) = π(s)ᵀ[−α (log π(s) + H̄)] (eq. 11) with H̄ = 0.98 · log|A| (ours
differs: see the deviations).
Conservative term: Kumar et al. 2020, "Conservative Q-Learning for Offline Reinforcement
Learning", eq. (4), CQL(H), exact for discrete actions: α_cql · (logsumexp_a Q(s, a) − Q(s, a_data))
on each critic.
Reference implementation: d3rlpy's `DiscreteSAC` (d3rlpy/algos/qlearning/sac.py): twin critics,
actor, critic and temperature learning rates 3e-4, initial temperature 1, γ = 0.99.

Why CQL is on by default: offline, the critic's targets average over the policy's actions, and
for actions the data never took nothing corrects the critic's errors; the actor moves toward them
and the targets follow (Kumar et al. 2020, §3). `cql_alpha = 0` gives plain discrete SAC.

BRAC and BEAR (`algos/brac.py`, `algos/bear.py`) are actor-critics of the same shape, each written
out in its own file; the pieces they share are the networks `TwinQ` and `PositiveScalar`
(`algos.networks`) and pure functions of `algos.functional`.

Deviations:
- one actor and one pair of critics shared by every agent (parameter sharing, no agent id), each
  agent learning from its own reward; losses averaged over alive agents; illegal actions masked;
- the entropy target: the paper's H̄ = 0.98 · log|A| asks for a near-uniform policy, which
  online exploration wants and offline learning cannot have — the data of an expert are nearly
  deterministic, and a policy held near uniform cannot follow them whatever the critic says. Here
  H̄ is the entropy of a policy that puts 1 − δ on one action and spreads δ =
  `target_entropy_spread` (0.1) evenly over the other legal actions (0.46 nats for 5 actions,
  where 0.98 · log 5 = 1.58): α falls to 0 when the policy is that decided already, and only
  pushes a policy that is more decided than that. Per agent, over its legal actions;
- the temperature loss is −log α · (H̄ − H(π)) (gradient step on log α), as in d3rlpy, rather than
  the paper's −α · (H̄ − H(π)): the same fixed point, steps independent of α's scale;
- target critics follow by Polyak averaging with τ = 0.005 per update (the paper's Atari runs copy
  every 8,000 steps); our runs are 10³–10⁵ updates;
- the critic loss is the squared error ½ (Q − y)² on the taken action only, as in the paper.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from algos.base import (
    Algorithm,
    RewardScaledConfig,
    check_discount_and_rate,
    check_positive,
    param,
)
from algos.data import Batch
from algos.functional import (
    cql_term,
    discrete_sac_actor_loss,
    discrete_sac_target,
    dual_ascent_loss,
    entropy,
    gather_actions,
    masked_log_softmax,
    masked_mean,
    soft_update,
    target_entropy,
    twin_td_loss,
)
from algos.networks import AgentNetwork, PositiveScalar, TwinQ
from datagen.errors import UserError


def twin_cql(q: Tensor, batch: Batch) -> Tensor:
    """Σ over the two critics of the CQL term (`cql_term`): (2, B, N, A) -> scalar."""
    return sum(cql_term(q[i], batch.actions, batch.action_mask, batch.alive) for i in range(len(q)))


@dataclass(frozen=True)
class SACConfig(RewardScaledConfig):
    """Discrete SAC with a CQL term."""

    actor_lr: float = param(3e-4, "Adam learning rate of the policy (Christodoulou 2019; d3rlpy)")
    critic_lr: float = param(
        3e-4, "Adam learning rate of both critics (Christodoulou 2019; d3rlpy)"
    )
    temperature_lr: float = param(
        3e-4, "Adam learning rate of log α (Christodoulou 2019; d3rlpy DiscreteSAC)"
    )
    initial_temperature: float = param(1.0, "α before training (d3rlpy DiscreteSAC default)")
    target_entropy_spread: float = param(
        0.1,
        "entropy target: the entropy of a policy with this much mass spread off its best action "
        "(see the header; Christodoulou 2019's online 0.98 log|A| is near uniform)",
    )
    gamma: float = param(0.99, "discount factor (Christodoulou 2019; d3rlpy default)")
    tau: float = param(0.005, "Polyak rate of the target critics per update (SAC default)")
    cql_alpha: float = param(
        1.0, "weight of the CQL term on each critic, 0 turns it off (Kumar et al. 2020 Atari)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "actor_lr", "critic_lr", "temperature_lr", "initial_temperature")
        check_discount_and_rate(self.gamma, self.tau)
        if not 0.0 <= self.target_entropy_spread < 1.0:
            raise UserError(
                f"target_entropy_spread must be in [0, 1), got {self.target_entropy_spread}"
            )
        if self.cql_alpha < 0:
            raise UserError(f"cql_alpha must be >= 0, got {self.cql_alpha}")


class SAC(Algorithm):
    """Discrete SAC (twin critics, learned temperature) with an optional CQL term."""

    name = "sac"
    description = "discrete soft actor-critic with a CQL term on the critics (cql_alpha=0: plain)"
    Config = SACConfig
    metric_keys = (
        "loss/critic",
        "loss/cql",
        "loss/actor",
        "loss/temperature",
        "loss/total",
        "train/alpha",
        "train/entropy",
        "train/q_data",
    )

    def build(self) -> None:
        config, spec = self.config, self.spec
        actor = AgentNetwork(spec, spec.n_actions, config.hidden_size, config.encoder)
        self.actor = self.add_network("actor", actor)
        self.critic = self.add_network("critic", TwinQ(spec, config.hidden_size, config.encoder))
        self.critic_target = self.add_network("critic_target", copy.deepcopy(self.critic))
        self.critic_target.requires_grad_(False)
        temperature = PositiveScalar(config.initial_temperature)
        self.temperature = self.add_network("temperature", temperature)
        self.optimizers["actor"] = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.optimizers["critic"] = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.optimizers["temperature"] = torch.optim.Adam(
            self.temperature.parameters(), lr=config.temperature_lr
        )

    def terms(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The differentiable terms of one update — `critic`, `actor` and `temperature`, each
        depending only on its own optimiser's parameters — and the metrics."""
        config = self.config
        mask, next_mask = batch.action_mask, batch.next_action_mask
        # One actor forward over obs and next_obs; the next-state half only feeds the targets.
        logits = self.actor(torch.cat([batch.obs, batch.next_obs]))  # (2B, N, A)
        log_probs = masked_log_softmax(logits[: len(batch)], mask)  # (B, N, A)
        probs = log_probs.exp()
        alpha = self.temperature().detach()
        next_log_probs = masked_log_softmax(logits[len(batch) :].detach(), next_mask)
        with torch.no_grad():
            next_q = self.critic_target(batch.next_obs).min(dim=0).values  # (B, N, A)
        target = discrete_sac_target(
            self.reward_scale * batch.rewards,
            batch.bootstrap,
            config.gamma,
            next_log_probs.exp(),
            next_log_probs,
            next_q,
            alpha,
            next_mask,
        )
        q = self.critic(batch.obs)  # (2, B, N, A)
        td = twin_td_loss(q, batch.actions, target, batch.alive)
        cql = twin_cql(q, batch)
        # The actor sees the critics without gradient (discrete_sac_actor_loss detaches Q).
        actor = discrete_sac_actor_loss(
            probs, log_probs, q.min(dim=0).values, alpha, mask, batch.alive
        )
        policy_entropy = entropy(probs, log_probs, mask).detach()  # (B, N)
        temperature = dual_ascent_loss(
            self.temperature.log_value,
            target_entropy(mask, config.target_entropy_spread) - policy_entropy,
            batch.alive,
        )
        terms = {"critic": td + config.cql_alpha * cql, "actor": actor, "temperature": temperature}
        metrics = {
            "loss/critic": td.detach(),
            "loss/cql": cql.detach(),
            "loss/actor": actor.detach(),
            "loss/temperature": temperature.detach(),
            "train/alpha": alpha,
            "train/entropy": masked_mean(policy_entropy, batch.alive),
            "train/q_data": masked_mean(gather_actions(q[0].detach(), batch.actions), batch.alive),
        }
        return terms, metrics

    def after_step(self) -> None:
        soft_update(self.critic_target, self.critic, self.config.tau)

    def action_scores(self, obs: Tensor, alive: Tensor, positions: Tensor | None) -> Tensor:
        return self.actor(obs)
