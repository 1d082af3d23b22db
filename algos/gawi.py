"""GAWI: graph-coordinated, advantage-weighted imitation with per-agent quality inference.

The project's method (docs/method.md gives the design and the reasons). Three parts:

1. Coordination graph: every agent encodes its own observation with shared weights, then the
   agents exchange messages by attention over their k nearest alive teammates
   (`algos.coordination`), so the same weights act for any team size. Policy and critic each have
   their own encoder and graph.
2. In-sample critic, Implicit Q-Learning (Kostrikov et al. 2022, "Offline Reinforcement Learning
   with Implicit Q-Learning", eqs. 5-6): V(s) is the `expectile` (0.7; the paper's τ) of the
   target Q of dataset actions, Q(s, a) regresses on r + γ · bootstrap · V(s'). No action
   outside the data is ever evaluated, so nothing is extrapolated.
3. Policy extraction by advantage-weighted regression (Peng et al. 2019, AWR; Kostrikov et al.
   2022, eq. 7): the policy clones dataset actions with weight min(exp(β · A(s, a)), w_max),
   A = Q_target(s, a) − V(s), times a per-agent trust in (0, 1]: every `quality_every` updates
   the critic scores each (episode, agent) by the mean one-step advantage of its transitions,
   δ = r + γ · bootstrap · V(s') − V(s), over the episode, and
   trust = exp(quality_beta · min(0, (mean − reference) / σ)), reference being the
   `quality_reference` quantile of those means and σ the standard deviation of single-step δ
   over the data (recomputed at every pass). Agents that act against the team throughout an
   episode (saboteurs) get a low trust, whatever a single action looks like.

Reference implementation: the authors' IQL (ikostrikov/implicit_q_learning, JAX) for the critic
and the extraction; its defaults expectile 0.7, β = 3, maximum weight 100 (the MuJoCo
settings).

Deviations:
- discrete actions: Q(s, ·) is one head with an output per action, V(s) one more output of the
  same network (the critic trunk is shared by Q and V), and the policy is a categorical over
  legal actions instead of a Gaussian;
- one Q head, not the minimum of two: with in-sample targets nothing maximises over actions, the
  overestimation the second head guards against does not arise; the target network follows by
  Polyak averaging (`tau` = 0.005 per update) as in the reference;
- per-agent rewards and bootstraps (each agent's Q and V are about its own return, as in our
  independent Q-learning baseline), but every agent's features include its teammates' messages;
- the policy loss is a mean over alive agents of weight × negative log-likelihood, as in the
  reference (not normalised by the sum of weights);
- the per-agent trust factor is ours (docs/method.md).

Ablations (`gawi-nograph`, `gawi-noadv`, `gawi-noquality`) are this class with other config
defaults: entries of `algos.registry`.

`sampling_subset(data)`, the one hook of `Algorithm` that sees the training data, keeps a
reference to it for the quality passes and returns None (every transition is sampled).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from algos.base import (
    Algorithm,
    param,
)
from algos.coordination import GraphNetwork, cat_positions
from algos.data import Batch, OfflineData
from algos.functional import (
    advantage_weights,
    expectile_loss,
    gather_actions,
    masked_log_softmax,
    masked_mean,
    soft_update,
)
from algos.implicit_ql import ImplicitQLConfig
from datagen.errors import UserError

#: Transitions per forward pass when the critic scores the whole dataset.
QUALITY_CHUNK = 4096

#: Smallest advantage spread used as the unit of trust (a critic that has not learned anything
#: yet gives advantages that are all about equal).
MIN_SCALE = 1e-6


def episode_agent_means(
    values: Tensor, alive: Tensor, episode_index: Tensor, n_episodes: int
) -> tuple[Tensor, Tensor]:
    """Mean of `values` per (episode, agent) over the steps where the agent is alive.

    Args:
        values: (T, N) per transition and agent.
        alive: (T, N) bool.
        episode_index: (T,) int64 in [0, n_episodes).
        n_episodes: E.

    Returns:
        (means (E, N) — 0 where the agent never acted —, counts (E, N) of alive steps).
    """
    n_agents = values.shape[1]
    sums = values.new_zeros(n_episodes, n_agents)
    counts = values.new_zeros(n_episodes, n_agents)
    index = episode_index[:, None].expand(-1, n_agents)  # (T, N)
    sums.scatter_add_(0, index, torch.where(alive, values, 0.0))
    counts.scatter_add_(0, index, alive.to(values.dtype))
    return sums / counts.clamp(min=1), counts


def trust_weights(
    means: Tensor, acted: Tensor, beta: float, reference: float, scale: float = 1.0
) -> Tensor:
    """Trust in each (episode, agent): exp(β · min(0, (mean − q) / scale)), in (0, 1].

    Args:
        means: (E, N) mean advantage of each agent's actions in each episode.
        acted: (E, N) bool, the agent acted at least once in that episode.
        beta: inverse temperature; 0 trusts everyone fully.
        reference: q is this quantile of `means` over pairs that acted; agents at or above it
            are trusted fully.
        scale: the unit of the deficit (the spread of single-action advantages), so that β
            does not depend on the env's reward scale.

    Returns:
        (E, N) float; 1 where the agent never acted.
    """
    if not acted.any():
        return torch.ones_like(means)
    level = torch.quantile(means[acted], reference)
    trust = torch.exp(beta * ((means - level) / scale).clamp(max=0.0))
    return torch.where(acted, trust, 1.0)


def separation_auc(scores: Tensor, positive: Tensor) -> float:
    """Probability that a random positive item scores above a random negative one (ties: 1/2).

    The area under the ROC curve of `scores` for telling `positive` from the rest; NaN when
    either class is empty.
    """
    good, bad = scores[positive].double(), scores[~positive].double()
    if len(good) == 0 or len(bad) == 0:
        return float("nan")
    above = (good[:, None] > bad[None, :]).double() + 0.5 * (good[:, None] == bad[None, :]).double()
    return float(above.mean())


@dataclass(frozen=True)
class GAWIConfig(ImplicitQLConfig):
    """GAWI hyperparameters: its critic's and extraction's are Implicit Q-Learning's
    (`ImplicitQLConfig`: lr, gamma, tau, expectile, beta, max_weight, reward_scale), with one
    round of message passing by default and the per-agent trust's own fields; the ablations are
    other defaults of the same fields (registry)."""

    graph_rounds: int = param(
        1, "rounds of attention over each agent's neighbours, 0 = independent agents (DGN uses 2)"
    )
    quality_beta: float = param(
        10.0,
        "inverse temperature of per-agent trust, per standard deviation of single-action "
        "advantages; 0 = trust everyone",
    )
    quality_reference: float = param(
        0.5, "quantile of the (episode, agent) mean advantages above which trust is full"
    )
    quality_every: int = param(1000, "updates between two passes of per-agent quality inference")
    quality_warmup: int = param(
        2000, "updates before the first quality pass (trust is 1 until the critic has learned)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.quality_beta < 0:
            raise UserError(f"quality_beta must be >= 0, got {self.quality_beta}")
        if not 0.0 <= self.quality_reference <= 1.0:
            raise UserError(f"quality_reference must be in [0, 1], got {self.quality_reference}")
        if self.quality_every < 1 or self.quality_warmup < 0:
            raise UserError("quality_every must be >= 1 and quality_warmup >= 0")


class GAWI(Algorithm):
    """Graph coordination, an Implicit Q-Learning critic, advantage-weighted imitation and
    per-agent trust."""

    name = "gawi"
    description = (
        "ours: attention over teammates, in-sample (Implicit Q-Learning) critic, "
        "advantage-weighted imitation, per-agent trust inferred from the data"
    )
    Config = GAWIConfig
    metric_keys = (
        "loss/q",
        "loss/v",
        "loss/policy",
        "loss/total",
        "train/q_data",
        "train/advantage",
        "train/weight",
        "train/trust",
    )

    def build(self) -> None:
        config = self.config
        n_actions = self.spec.n_actions

        def graph_network(n_outputs: int) -> GraphNetwork:
            return GraphNetwork(
                self.spec,
                n_outputs,
                config.hidden_size,
                config.encoder,
                config.n_heads,
                config.graph_rounds,
                config.graph_neighbours,
                config.graph_neighbourhood,
            )

        self.policy = self.add_network("policy", graph_network(n_actions))
        # One output per action (Q) and one more (V).
        critic = graph_network(n_actions + 1)
        self.critic = self.add_network("critic", critic)
        self.critic_target = self.add_network("critic_target", copy.deepcopy(critic))
        self.critic_target.requires_grad_(False)
        self.optimizers["policy"] = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.optimizers["critic"] = torch.optim.Adam(self.critic.parameters(), lr=config.lr)
        self.data: OfflineData | None = None
        #: (E, N) mean advantage and trust of each (episode, agent); None until data is attached.
        self.episode_advantage: Tensor | None = None
        self.trust: Tensor | None = None

    # ------------------------------------------------------------------------------ training
    def sampling_subset(self, data: OfflineData) -> Tensor | None:
        """Keep `data` for the quality passes; every transition is sampled (returns None)."""
        self.data = data
        shape = (data.n_episodes, data.n_agents)
        if self.episode_advantage is None or tuple(self.episode_advantage.shape) != shape:
            # Before any pass every agent has the same (zero) score: full trust for all.
            self.episode_advantage = torch.zeros(shape, device=self.device)
            self._set_trust(self.episode_advantage, torch.ones(shape, dtype=torch.bool), 1.0)
        return None

    def _split(self, outputs: Tensor) -> tuple[Tensor, Tensor]:
        return outputs[..., :-1], outputs[..., -1]  # Q (B, N, A), V (B, N)

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        config = self.config
        size = len(batch)
        # One forward of the critic over s and s' (the s' half only gives V(s') for the target).
        outputs = self.critic(
            torch.cat([batch.obs, batch.next_obs]),
            torch.cat([batch.alive, batch.next_alive]),
            cat_positions(batch.positions, batch.next_positions),
        )
        q, value = self._split(outputs[:size])  # (B, N, A), (B, N)
        next_value = self._split(outputs[size:])[1].detach()  # (B, N)
        with torch.no_grad():
            q_target = gather_actions(
                self._split(self.critic_target(batch.obs, batch.alive, batch.positions))[0],
                batch.actions,
            )
            target = self.reward_scale * batch.rewards + config.gamma * torch.where(
                batch.bootstrap, next_value, 0.0
            )
        q_data = gather_actions(q, batch.actions)  # (B, N)
        q_loss = masked_mean((q_data - target).square(), batch.alive)
        v_loss = masked_mean(expectile_loss(q_target - value, config.expectile), batch.alive)

        advantage = q_target - value.detach()  # (B, N)
        weight = advantage_weights(advantage, config.beta, config.max_weight)
        trust = self._batch_trust(batch)
        logits = self.policy(batch.obs, batch.alive, batch.positions)  # (B, N, A)
        log_probs = masked_log_softmax(logits, batch.action_mask)
        nll = -gather_actions(log_probs, batch.actions)  # (B, N)
        policy_loss = masked_mean(weight * trust * nll, batch.alive)

        total = q_loss + v_loss + policy_loss
        metrics = {
            "loss/q": q_loss.detach(),
            "loss/v": v_loss.detach(),
            "loss/policy": policy_loss.detach(),
            "loss/total": total.detach(),
            "train/q_data": masked_mean(q_data.detach(), batch.alive),
            "train/advantage": masked_mean(advantage, batch.alive),
            "train/weight": masked_mean(weight, batch.alive),
            "train/trust": masked_mean(trust, batch.alive),
        }
        return total, metrics

    def _batch_trust(self, batch: Batch) -> Tensor:
        """(B, N) trust of each transition's agent; 1 without data or episode indices."""
        if self.trust is None or batch.episode_index is None:
            return torch.ones_like(batch.rewards)
        return self.trust[batch.episode_index]

    def after_step(self) -> None:
        config = self.config
        soft_update(self.critic_target, self.critic, config.tau)
        since_warmup, every = self.n_updates - config.quality_warmup, config.quality_every
        due = since_warmup >= 0 and since_warmup % every == 0
        if due and self.data is not None and config.quality_beta > 0:
            self.infer_quality()

    # ------------------------------------------------------------------- quality inference
    @torch.no_grad()
    def advantages(self, batch: Batch) -> Tensor:
        """(B, N) A(s, a_data) = Q_target(s, a_data) − V(s) of the batch's agents."""
        q_target = self._split(self.critic_target(batch.obs, batch.alive, batch.positions))[0]
        value = self._split(self.critic(batch.obs, batch.alive, batch.positions))[1]
        return gather_actions(q_target, batch.actions) - value

    @torch.no_grad()
    def td_advantages(self, batch: Batch) -> Tensor:
        """(B, N) one-step advantages δ = r + γ · bootstrap · V(s') − V(s) of the batch's agents.

        The quality signal: unlike Q(s, a) − V(s), δ keeps the reward the agent actually earned,
        so it still ranks agents in states that only poor agents visit, where an in-sample V has
        learned nothing better than their own actions (docs/method.md measures both).
        """
        value = self._split(self.critic(batch.obs, batch.alive, batch.positions))[1]
        next_outputs = self.critic(batch.next_obs, batch.next_alive, batch.next_positions)
        next_value = self._split(next_outputs)[1]
        bootstrap = torch.where(batch.bootstrap, next_value, 0.0)
        return self.reward_scale * batch.rewards + self.config.gamma * bootstrap - value

    @torch.no_grad()
    def infer_quality(self, data: OfflineData | None = None) -> Tensor:
        """Score every (episode, agent) by its mean one-step advantage; update the trust.

        Args:
            data: the data to score (default: the training data given to `sampling_subset`).

        Returns:
            (E, N) mean one-step advantages (0 where an agent never acted).
        """
        data = self.data if data is None else data
        if data is None:
            raise UserError("infer_quality needs data: call sampling_subset(data) first")
        sums = torch.zeros(data.n_episodes, data.n_agents, device=self.device)
        counts = torch.zeros_like(sums)
        squares = torch.zeros((), dtype=torch.float64, device=self.device)
        for start in range(0, len(data), QUALITY_CHUNK):
            index = torch.arange(start, min(start + QUALITY_CHUNK, len(data)), device=data.device)
            batch = data.batch(index).to(self.device)
            advantage = self.td_advantages(batch)  # (B, N)
            means, n = episode_agent_means(
                advantage, batch.alive, batch.episode_index, data.n_episodes
            )
            sums += means * n
            counts += n
            squares += torch.where(batch.alive, advantage, 0.0).double().square().sum()
        means = sums / counts.clamp(min=1)
        total = counts.sum().clamp(min=1)
        variance = squares / total - (sums.sum().double() / total) ** 2
        scale = float(variance.clamp(min=0).sqrt().clamp(min=MIN_SCALE))
        if data is self.data:
            self.episode_advantage = means
            self._set_trust(means, counts > 0, scale)
        return means

    def _set_trust(self, means: Tensor, acted: Tensor, scale: float) -> None:
        config = self.config
        self.trust = trust_weights(
            means, acted.to(means.device), config.quality_beta, config.quality_reference, scale
        )

    # ---------------------------------------------------------------------------- acting
    def action_scores(self, obs: Tensor, alive: Tensor, positions: Tensor | None) -> Tensor:
        """Policy logits (B, N, A); `alive` and `positions` decide who hears whom in the message
        passing."""
        return self.policy(obs, alive, positions)

    # ------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["episode_advantage"] = self.episode_advantage
        state["trust"] = self.trust
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for key in ("episode_advantage", "trust"):
            value = state.get(key)
            setattr(self, key, None if value is None else value.clone().to(self.device))
