"""BRAC-v: actor-critic with a value penalty, the exact KL from the policy to a cloned behaviour
policy.

Paper: Wu, Tucker and Nachum 2019, "Behavior Regularized Offline Reinforcement Learning"
(arXiv:1911.11361), §3: with a divergence D between the policy π and an estimate β̂ of the
behaviour policy, the value penalty subtracts α · D(π(·|s'), β̂(·|s')) from the target value and
the actor minimises E[α · D(π(·|s), β̂(·|s)) − E_{a∼π} Q(s, a)] ("BRAC-v"; "BRAC-p" penalises the
actor only).
Reference implementation: google-research's behavior_regularized_offline_rl
(brac/brac_primal_agent.py): KL divergence, value penalty on, a fixed α (its example script uses
α = 0.1 and a policy learning rate of 3e-4), no entropy term (alpha_entropy = 0), twin critics
with the minimum in targets, a behaviour policy cloned beforehand.

With a categorical policy the KL is exact, Σ_a π(a|s) [log π(a|s) − log β̂(a|s)], where the
reference estimates it from 4 sampled actions. The penalised target is then the soft value of
`discrete_sac_target` with log π replaced by the log-ratio log π − log β̂, and the actor loss is
`discrete_sac_actor_loss` with the same substitution.

Deviations:
- β̂ is cloned jointly, by its own network, optimiser and cross-entropy loss on the dataset
  actions, instead of in a separate run before; its log-probabilities enter the penalty without
  gradient;
- no warm start (the reference trains the actor on the penalty alone for its first 20,000 steps);
- one actor, one pair of critics and one β̂ shared by every agent (parameter sharing, no agent
  id); losses averaged over alive agents; illegal actions masked in π and β̂ alike;
- critics regress ½ (Q − y)² (the reference: (Q − y)²) and targets follow by Polyak averaging
  with τ = 0.005 per update; no weight decay.
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
    categorical_kl,
    discrete_sac_actor_loss,
    discrete_sac_target,
    gather_actions,
    masked_log_softmax,
    masked_mean,
    soft_update,
    twin_td_loss,
)
from algos.networks import AgentNetwork, TwinQ
from datagen.errors import UserError


@dataclass(frozen=True)
class BRACConfig(RewardScaledConfig):
    """BRAC-v with the exact KL to a cloned behaviour policy."""

    actor_lr: float = param(3e-4, "Adam learning rate of the policy (reference example script)")
    critic_lr: float = param(3e-4, "Adam learning rate of both critics (SAC default)")
    behaviour_lr: float = param(
        1e-3, "Adam learning rate of the cloned behaviour policy (d3rlpy DiscreteBC default)"
    )
    kl_alpha: float = param(
        0.1, "weight α of the KL(π‖β̂) penalty in targets and actor loss (reference script: 0.1)"
    )
    gamma: float = param(0.99, "discount factor (SAC and d3rlpy default)")
    tau: float = param(0.005, "Polyak rate of the target critics per update (SAC default)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "actor_lr", "critic_lr", "behaviour_lr")
        check_discount_and_rate(self.gamma, self.tau)
        if self.kl_alpha < 0:
            raise UserError(f"kl_alpha must be >= 0, got {self.kl_alpha}")


class BRAC(Algorithm):
    """BRAC-v: twin critics and an actor, both penalised by KL(π‖β̂) to a cloned β̂."""

    name = "brac"
    description = "actor-critic with the exact KL to a cloned behaviour policy as value penalty"
    Config = BRACConfig
    metric_keys = (
        "loss/critic",
        "loss/actor",
        "loss/behaviour",
        "loss/total",
        "train/kl",
        "train/q_data",
    )

    def build(self) -> None:
        config, spec = self.config, self.spec
        actor = AgentNetwork(spec, spec.n_actions, config.hidden_size, config.encoder)
        self.actor = self.add_network("actor", actor)
        behaviour = AgentNetwork(spec, spec.n_actions, config.hidden_size, config.encoder)
        self.behaviour = self.add_network("behaviour", behaviour)  # β̂, cloned from the data
        self.critic = self.add_network("critic", TwinQ(spec, config.hidden_size, config.encoder))
        self.critic_target = self.add_network("critic_target", copy.deepcopy(self.critic))
        self.critic_target.requires_grad_(False)
        self.optimizers["actor"] = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.optimizers["critic"] = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.optimizers["behaviour"] = torch.optim.Adam(
            self.behaviour.parameters(), lr=config.behaviour_lr
        )

    def terms(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The differentiable terms — `critic`, `actor`, `behaviour`, each depending only on its
        own optimiser's parameters — and the metrics."""
        config = self.config
        mask, next_mask = batch.action_mask, batch.next_action_mask
        both = torch.cat([batch.obs, batch.next_obs])  # (2B, N, *O)
        n = len(batch)
        behaviour_logits = self.behaviour(both)  # (2B, N, A)
        behaviour_log_probs = masked_log_softmax(behaviour_logits[:n], mask)
        behaviour = masked_mean(-gather_actions(behaviour_log_probs, batch.actions), batch.alive)
        logits = self.actor(both)  # (2B, N, A)
        log_probs = masked_log_softmax(logits[:n], mask)
        probs = log_probs.exp()
        with torch.no_grad():
            next_log_probs = masked_log_softmax(logits[n:], next_mask)
            next_log_ratio = next_log_probs - masked_log_softmax(behaviour_logits[n:], next_mask)
            next_q = self.critic_target(batch.next_obs).min(dim=0).values  # (B, N, A)
        # SAC's soft target with log π replaced by log π − log β̂:
        # Σ π [Q' − α (log π − log β̂)] = Σ π Q' − α KL(π‖β̂), the value penalty.
        target = discrete_sac_target(
            self.reward_scale * batch.rewards,
            batch.bootstrap,
            config.gamma,
            next_log_probs.exp(),
            next_log_ratio,
            next_q,
            config.kl_alpha,
            next_mask,
        )
        q = self.critic(batch.obs)  # (2, B, N, A)
        td = twin_td_loss(q, batch.actions, target, batch.alive)
        # Σ π [α (log π − log β̂) − Q] = α KL(π‖β̂) − E_π Q, with β̂ and Q without gradient.
        log_ratio = log_probs - behaviour_log_probs.detach()
        actor = discrete_sac_actor_loss(
            probs, log_ratio, q.min(dim=0).values, config.kl_alpha, mask, batch.alive
        )
        with torch.no_grad():
            kl = categorical_kl(log_probs, behaviour_log_probs, mask, p=probs)  # (B, N)
        terms = {"critic": td, "actor": actor, "behaviour": behaviour}
        metrics = {
            "loss/critic": td.detach(),
            "loss/actor": actor.detach(),
            "loss/behaviour": behaviour.detach(),
            "train/kl": masked_mean(kl, batch.alive),
            "train/q_data": masked_mean(gather_actions(q[0].detach(), batch.actions), batch.alive),
        }
        return terms, metrics

    def after_step(self) -> None:
        soft_update(self.critic_target, self.critic, self.config.tau)

    def action_scores(self, obs: Tensor, alive: Tensor, positions: Tensor | None) -> Tensor:
        return self.actor(obs)
