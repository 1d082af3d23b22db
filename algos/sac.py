"""Discrete soft actor-critic: twin critics, a categorical policy and a learned temperature, with
a conservative (CQL) term on the critics.

Paper: Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings" (arXiv:1910.07207):
the soft value is an exact expectation over actions, V(s') = Σ_a π(a|s')[min_i Q'_i(s', a) −
α log π(a|s')] (eq. 10), the actor minimises Σ_a π(a|s)[α log π(a|s) − Q(s, a)] (eq. 12) and the
temperature follows J(α) = π(s)ᵀ[−α (log π(s) + H̄)] (eq. 11) with H̄ = 0.98 · log|A|.
Conservative term: Kumar et al. 2020, "Conservative Q-Learning for Offline Reinforcement
Learning", eq. (4), CQL(H), exact for discrete actions: α_cql · (logsumexp_a Q(s, a) − Q(s, a_data))
on each critic.
Reference implementation: d3rlpy's `DiscreteSAC` (d3rlpy/algos/qlearning/sac.py): twin critics,
actor, critic and temperature learning rates 3e-4, initial temperature 1, γ = 0.99.

Why CQL is on by default: offline, the critic's targets average over the policy's actions, and
for actions the data never took nothing corrects the critic's errors; the actor moves toward them
and the targets follow (Kumar et al. 2020, §3). `cql_alpha = 0` gives plain discrete SAC.

`TwinQ` and `Temperature` below are shared with BRAC and BEAR (`algos/brac.py`, `algos/bear.py`),
which build on this actor-critic.

Deviations:
- one actor and one pair of critics shared by every agent (parameter sharing, no agent id), each
  agent learning from its own reward; losses averaged over alive agents; illegal actions masked;
- the entropy target is per agent, 0.98 · log(legal actions) rather than 0.98 · log|A|, so an
  agent with fewer legal actions is not asked for an unreachable entropy;
- the temperature loss is −log α · (H̄ − H(π)) (gradient step on log α), as in d3rlpy, rather than
  the paper's −α · (H̄ − H(π)): the same fixed point, steps independent of α's scale;
- target critics follow by Polyak averaging with τ = 0.005 per update (the paper's Atari runs copy
  every 8,000 steps); our runs are 10³–10⁵ updates;
- the critic loss is the squared error ½ (Q − y)² on the taken action only, as in the paper.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from algos.base import AlgoConfig, Algorithm, check_discount_and_rate, check_positive, param
from algos.data import Batch, DataSpec
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
)
from algos.networks import AgentNetwork
from datagen.errors import UserError


class TwinQ(nn.Module):
    """Two independent Q networks (own encoders): (B, N, *O) -> (2, B, N, A)."""

    def __init__(self, spec: DataSpec, hidden_size: int, encoder: str) -> None:
        super().__init__()
        self.q1 = AgentNetwork(spec, spec.n_actions, hidden_size, encoder)
        self.q2 = AgentNetwork(spec, spec.n_actions, hidden_size, encoder)

    def forward(self, obs: Tensor) -> Tensor:
        return torch.stack([self.q1(obs), self.q2(obs)])  # (2, B, N, A)


class Temperature(nn.Module):
    """A positive scalar learned through its logarithm (an entropy temperature or a multiplier)."""

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.log_value = nn.Parameter(torch.tensor(math.log(initial)))

    def forward(self) -> Tensor:
        return self.log_value.exp()


def twin_td_loss(q: Tensor, actions: Tensor, target: Tensor, alive: Tensor) -> Tensor:
    """Σ over the two critics of the mean over alive agents of ½ (Q_i(s, a_data) − y)².

    Args:
        q: (2, B, N, A) both critics' Q-values.
        actions: (B, N) dataset actions.
        target: (B, N) targets without gradient.
        alive: (B, N) bool.
    """
    q_data = gather_actions(q, actions.expand(len(q), *actions.shape))  # (2, B, N)
    errors = 0.5 * (q_data - target) ** 2
    return sum(masked_mean(errors[i], alive) for i in range(len(q)))


def twin_cql(q: Tensor, batch: Batch) -> Tensor:
    """Σ over the two critics of the CQL term (`cql_term`): (2, B, N, A) -> scalar."""
    return sum(cql_term(q[i], batch.actions, batch.action_mask, batch.alive) for i in range(len(q)))


def build_actor_critic(algo: Algorithm, with_behaviour: bool = False) -> None:
    """Give `algo` the networks and optimisers SAC, BRAC and BEAR share: `actor`, twin `critic`
    with a frozen `critic_target`, and (BRAC, BEAR) a cloned `behaviour` policy; the config must
    have `actor_lr`, `critic_lr` (and `behaviour_lr`)."""
    config, spec = algo.config, algo.spec
    algo.actor = algo.add_network(
        "actor", AgentNetwork(spec, spec.n_actions, config.hidden_size, config.encoder)
    )
    if with_behaviour:
        algo.behaviour = algo.add_network(
            "behaviour", AgentNetwork(spec, spec.n_actions, config.hidden_size, config.encoder)
        )
    algo.critic = algo.add_network("critic", TwinQ(spec, config.hidden_size, config.encoder))
    algo.critic_target = algo.add_network("critic_target", copy.deepcopy(algo.critic))
    algo.critic_target.requires_grad_(False)
    algo.optimizers["actor"] = torch.optim.Adam(algo.actor.parameters(), lr=config.actor_lr)
    algo.optimizers["critic"] = torch.optim.Adam(algo.critic.parameters(), lr=config.critic_lr)
    if with_behaviour:
        algo.optimizers["behaviour"] = torch.optim.Adam(
            algo.behaviour.parameters(), lr=config.behaviour_lr
        )


@torch.no_grad()
def soft_twin_target(
    critic_target: nn.Module,
    batch: Batch,
    gamma: float,
    next_log_probs: Tensor,
    next_log_ratio: Tensor,
    alpha: Tensor | float,
) -> Tensor:
    """(B, N) target r + γ Σ_a π(a|s') [min_j Q'_j(s', a) − α · log_ratio(a)] of the twin target
    critics: SAC's soft value with log_ratio = log π, BRAC's value penalty with log π − log β̂."""
    next_q = critic_target(batch.next_obs).min(dim=0).values  # (B, N, A)
    return discrete_sac_target(
        batch.rewards,
        batch.bootstrap,
        gamma,
        next_log_probs.exp(),
        next_log_ratio,
        next_q,
        alpha,
        batch.next_action_mask,
    )


@dataclass(frozen=True)
class SACConfig(AlgoConfig):
    """Discrete SAC with a CQL term."""

    actor_lr: float = param(3e-4, "Adam learning rate of the policy (Christodoulou 2019; d3rlpy)")
    critic_lr: float = param(
        3e-4, "Adam learning rate of both critics (Christodoulou 2019; d3rlpy)"
    )
    temperature_lr: float = param(
        3e-4, "Adam learning rate of log α (Christodoulou 2019; d3rlpy DiscreteSAC)"
    )
    initial_temperature: float = param(1.0, "α before training (d3rlpy DiscreteSAC default)")
    target_entropy_ratio: float = param(
        0.98, "entropy target as a fraction of log(legal actions) (Christodoulou 2019: 0.98)"
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
        if not 0.0 <= self.target_entropy_ratio <= 1.0:
            raise UserError(
                f"target_entropy_ratio must be in [0, 1], got {self.target_entropy_ratio}"
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
        config = self.config
        build_actor_critic(self)
        self.temperature = self.add_network("temperature", Temperature(config.initial_temperature))
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
        target = soft_twin_target(
            self.critic_target, batch, config.gamma, next_log_probs, next_log_probs, alpha
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
            target_entropy(mask, config.target_entropy_ratio) - policy_entropy,
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

    def action_scores(self, obs: Tensor, alive: Tensor) -> Tensor:
        return self.actor(obs)
