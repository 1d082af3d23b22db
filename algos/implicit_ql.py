"""Implicit Q-Learning: an in-sample expectile critic and advantage-weighted policy extraction.

Paper: Kostrikov, Nair & Levine 2022, "Offline Reinforcement Learning with Implicit Q-Learning".
V(s) is fitted as the `expectile` of the target critics' Q(s, a) over dataset actions (eq. 5);
Q(s, a) regresses on r + γ · bootstrap · V(s') (eq. 6); the policy clones dataset actions with
weight min(exp(β · (Q(s, a) − V(s))), w_max) (eq. 7, advantage-weighted regression). No action
outside the data is ever evaluated, so no value is extrapolated.
Reference implementation: the authors' JAX code (ikostrikov/implicit_q_learning): two Q heads
whose minimum is the target, a separate V network, target critics by Polyak averaging
(τ = 0.005), Adam 3e-4, expectile 0.7 and β = 3 for locomotion, weights capped at 100; rewards of
locomotion datasets are scaled by 1000 / (max return − min return) before training.

Deviations:
- discrete actions: each Q network has one output per action and the policy is a categorical over
  legal actions (the paper's is a Gaussian);
- multi-agent: one set of networks shared by every agent (parameter sharing, no agent id), each
  agent acting from its own observation and learning from its own reward and bootstrap; losses
  are means over alive agents. Decentralised by default; with `graph_rounds` > 0 (the
  `implicit-ql-comm` entry) every network passes messages over each agent's nearest alive
  teammates with the same coordination graph as gawi (communicating);
- the reward scale is taken from the data for every env (`reward_scale` 0, the default): rewards
  are multiplied by 1 / their standard deviation over alive agent-steps, where the reference
  scales locomotion rewards by 1000 / (max − min episode return). β and the cap act on
  advantages in those units, so one β serves envs whose rewards differ by orders of magnitude
  (prison pays about 0.02 per agent-step on average, pistonball tens). The reference's rule
  was tried first and failed here: on expert data every episode's return is about the same, so
  L / (max − min) was 150 on prison n = 2 and SAC, with it, fell from 102 to 17 normalized.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from algos.base import (
    Algorithm,
    CommunicatingConfig,
    RewardScaledConfig,
    check_discount_and_rate,
    check_positive,
    param,
)
from algos.coordination import team_network
from algos.data import Batch
from algos.functional import (
    advantage_weights,
    expectile_loss,
    gather_actions,
    masked_log_softmax,
    masked_mean,
    soft_update,
)
from datagen.errors import UserError


@dataclass(frozen=True)
class ImplicitQLConfig(CommunicatingConfig, RewardScaledConfig):
    """Implicit Q-Learning hyperparameters (the reference's locomotion defaults)."""

    lr: float = param(
        3e-4, "Adam learning rate of critics, value and policy (Implicit Q-Learning reference)"
    )
    gamma: float = param(0.99, "discount factor (Implicit Q-Learning reference)")
    tau: float = param(
        0.005, "Polyak rate of the target critics per update (Implicit Q-Learning reference)"
    )
    expectile: float = param(
        0.7, "expectile of V over dataset actions' Q (Implicit Q-Learning, locomotion)"
    )
    beta: float = param(
        3.0, "inverse temperature of the advantage weights (Implicit Q-Learning, locomotion)"
    )
    max_weight: float = param(
        100.0, "cap on an advantage weight (Implicit Q-Learning reference: 100)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "lr")
        check_discount_and_rate(self.gamma, self.tau)
        if not 0.0 < self.expectile < 1.0:
            raise UserError(f"expectile must be in (0, 1), got {self.expectile}")
        if self.beta < 0:
            raise UserError(f"beta must be >= 0, got {self.beta}")
        if self.max_weight < 1:
            raise UserError(f"max_weight must be at least 1, got {self.max_weight}")


class ImplicitQL(Algorithm):
    """Implicit Q-Learning with shared per-agent networks (decentralised)."""

    name = "implicit-ql"
    description = (
        "Implicit Q-Learning: expectile value, in-sample twin critics, advantage-weighted policy"
    )
    Config = ImplicitQLConfig
    metric_keys = (
        "loss/q",
        "loss/v",
        "loss/policy",
        "loss/total",
        "train/q_data",
        "train/advantage",
        "train/weight",
    )

    def build(self) -> None:
        config = self.config

        def network(n_outputs: int) -> nn.Module:
            return team_network(
                self.spec,
                n_outputs,
                config.hidden_size,
                config.encoder,
                config.n_heads,
                config.graph_rounds,
                config.graph_neighbours,
                config.graph_neighbourhood,
            )

        # Two Q networks in one module: outputs (B, N, 2 A), the first A and the last A.
        critics = network(2 * self.spec.n_actions)
        self.critics = self.add_network("critics", critics)
        self.critics_target = self.add_network("critics_target", copy.deepcopy(critics))
        self.critics_target.requires_grad_(False)
        self.value = self.add_network("value", network(1))
        self.policy = self.add_network("policy", network(self.spec.n_actions))
        for name in ("critics", "value", "policy"):
            self.optimizers[name] = torch.optim.Adam(self.networks[name].parameters(), lr=config.lr)

    def _twin_q(self, network: nn.Module, batch: Batch) -> Tensor:
        """(2, B, N): each Q network's value of the batch's dataset actions."""
        actions = batch.actions
        both = network(batch.obs, batch.alive, batch.positions).unflatten(
            -1, (2, self.spec.n_actions)
        )  # (B, N, 2, A)
        return gather_actions(both.movedim(-2, 0), actions.expand(2, *actions.shape))

    def terms(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        config = self.config
        with torch.no_grad():
            q_target = self._twin_q(self.critics_target, batch).amin(0)
            next_value = self.value(batch.next_obs, batch.next_alive, batch.next_positions)
            next_value = next_value[..., 0]  # (B, N)
            rewards = self.reward_scale * batch.rewards
            target = rewards + config.gamma * torch.where(batch.bootstrap, next_value, 0.0)
        value = self.value(batch.obs, batch.alive, batch.positions)[..., 0]  # (B, N)
        v_loss = masked_mean(expectile_loss(q_target - value, config.expectile), batch.alive)

        q_data = self._twin_q(self.critics, batch)  # (2, B, N)
        q_loss = masked_mean((q_data - target).square().sum(0), batch.alive)

        advantage = q_target - value.detach()  # (B, N)
        weight = advantage_weights(advantage, config.beta, config.max_weight)
        logits = self.policy(batch.obs, batch.alive, batch.positions)  # (B, N, A)
        log_probs = masked_log_softmax(logits, batch.action_mask)
        nll = -gather_actions(log_probs, batch.actions)  # (B, N)
        policy_loss = masked_mean(weight * nll, batch.alive)

        terms = {"q": q_loss, "v": v_loss, "policy": policy_loss}
        metrics = {
            "loss/q": q_loss.detach(),
            "loss/v": v_loss.detach(),
            "loss/policy": policy_loss.detach(),
            "train/q_data": masked_mean(q_data[0].detach(), batch.alive),
            "train/advantage": masked_mean(advantage, batch.alive),
            "train/weight": masked_mean(weight, batch.alive),
        }
        return terms, metrics

    def after_step(self) -> None:
        soft_update(self.critics_target, self.critics, self.config.tau)

    def action_scores(self, obs: Tensor, alive: Tensor, positions: Tensor | None) -> Tensor:
        return self.policy(obs, alive, positions)
