"""Independent DQN (`idqn`): one shared double-DQN for every agent, with a conservative (CQL) term.

Not Implicit Q-Learning (`implicit-ql`, algos/implicit_ql.py). This algorithm was registered as
`iql` (independent Q-learning) before; `iql` still names it, with a warning.

Papers: Tan 1993, "Multi-agent reinforcement learning: independent vs. cooperative agents"
(independent learners); Mnih et al. 2015 (DQN, target network, Huber loss); van Hasselt et al.
2016 (double DQN: the online network picks the next action, the target network values it);
Kumar et al. 2020, "Conservative Q-Learning for Offline Reinforcement Learning", eq. (4), CQL(H)
for discrete actions: α · (logsumexp_a Q(s, a) − Q(s, a_data)).
Reference implementation: d3rlpy's `DiscreteCQL` (d3rlpy/algos/qlearning/cql.py) — double DQN with
a Huber TD loss plus α times the CQL term; defaults α = 1, γ = 0.99.

Why CQL is on by default: without it, offline DQN bootstraps from the maximum over actions the data
never took, whose values nothing corrects; they grow and the greedy policy follows them (Kumar
et al. 2020, §3; Fujimoto et al. 2019). `cql_alpha = 0` gives plain offline (double) DQN.

Deviations:
- each agent learns from its own reward and its own observation with one network shared by every
  agent (parameter sharing, no agent id); losses are averaged over alive agents;
- the target network follows by Polyak averaging with τ = 0.005 each update (as SAC and TD3 do)
  instead of d3rlpy's hard copy every 8,000 updates: our runs are 10⁴–10⁵ updates, not Atari's 10⁶+;
- learning rate 3e-4 instead of d3rlpy's 6.25e-5 (tuned for Atari with batches of 32) for the same
  reason;
- the CQL logsumexp runs over legal actions only (illegal ones set to −inf first).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from algos.base import (
    Algorithm,
    CommunicatingConfig,
    RewardScaledConfig,
    check_discount_and_rate,
    check_positive,
    param,
)
from algos.coordination import cat_positions, team_network
from algos.data import Batch
from algos.functional import cql_term, gather_actions, masked_mean, soft_update, td_target
from datagen.errors import UserError


@dataclass(frozen=True)
class IDQNConfig(CommunicatingConfig, RewardScaledConfig):
    """Independent double-DQN with a CQL term."""

    lr: float = param(3e-4, "Adam learning rate (d3rlpy DiscreteCQL: 6.25e-5 for Atari)")
    gamma: float = param(0.99, "discount factor (Mnih et al. 2015; d3rlpy default)")
    tau: float = param(0.005, "Polyak rate of the target network per update (SAC, TD3 default)")
    cql_alpha: float = param(
        1.0, "weight of the CQL term, 0 turns it off (Kumar et al. 2020 Atari; d3rlpy default)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "lr")
        check_discount_and_rate(self.gamma, self.tau)
        if self.cql_alpha < 0:
            raise UserError(f"cql_alpha must be >= 0, got {self.cql_alpha}")


class IDQN(Algorithm):
    """Independent Q-learning (double DQN + target network) with an optional CQL term."""

    name = "idqn"
    description = "independent double-DQN with a CQL term (cql_alpha=0: plain offline DQN)"
    Config = IDQNConfig
    metric_keys = ("loss/td", "loss/cql", "loss/total", "train/q_data")

    def build(self) -> None:
        config = self.config
        q_network = team_network(
            self.spec,
            self.spec.n_actions,
            config.hidden_size,
            config.encoder,
            config.n_heads,
            config.graph_rounds,
            config.graph_neighbours,
            config.graph_neighbourhood,
        )
        self.q = self.add_network("q", q_network)
        self.q_target = self.add_network("q_target", copy.deepcopy(q_network))
        self.q_target.requires_grad_(False)
        self.optimizers["q"] = torch.optim.Adam(self.q.parameters(), lr=config.lr)

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        config = self.config
        # One forward of the online network over obs and next_obs together (its next-state
        # half only picks the double-DQN action, without gradient).
        both = self.q(
            torch.cat([batch.obs, batch.next_obs]),
            torch.cat([batch.alive, batch.next_alive]),
            cat_positions(batch.positions, batch.next_positions),
        )  # (2B, N, A)
        q, next_q_online = both[: len(batch)], both[len(batch) :].detach()
        with torch.no_grad():
            next_q_target = self.q_target(
                batch.next_obs, batch.next_alive, batch.next_positions
            )  # (B, N, A)
        target = td_target(
            self.reward_scale * batch.rewards,
            batch.bootstrap,
            config.gamma,
            next_q_online,
            next_q_target,
            batch.next_action_mask,
        )
        q_data = gather_actions(q, batch.actions)  # (B, N)
        td = masked_mean(F.smooth_l1_loss(q_data, target, reduction="none"), batch.alive)
        cql = cql_term(q, batch.actions, batch.action_mask, batch.alive)
        total = td + config.cql_alpha * cql
        metrics = {
            "loss/td": td.detach(),
            "loss/cql": cql.detach(),
            "loss/total": total.detach(),
            "train/q_data": masked_mean(q_data.detach(), batch.alive),
        }
        return total, metrics

    def after_step(self) -> None:
        soft_update(self.q_target, self.q, self.config.tau)

    def action_scores(self, obs: Tensor, alive: Tensor, positions: Tensor | None) -> Tensor:
        return self.q(obs, alive, positions)
