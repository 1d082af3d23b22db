"""QMIX with a mixer that works at any team size, and a conservative (CQL) term on joint actions.

Papers: Rashid et al. 2018, "QMIX: Monotonic Value Function Factorisation for Deep Multi-Agent
Reinforcement Learning" (per-agent utilities q_i mixed into Q_tot by a network whose weights come
from hypernetworks and are non-negative, so Q_tot is monotone in every q_i and each agent's greedy
action is the team's greedy joint action); Iqbal et al. 2021, "Randomized Entity-wise
Factorization for Multi-Agent Reinforcement Learning" (REFIL: the hypernetworks attend over
entities instead of reading a fixed-size state, so the mixer takes any number of agents) and
Zhang et al. 2023, "Discovering Generalizable Multi-agent Coordination Skills from Multi-task
Offline Data" (ODIS: an attention mixer trained offline on several team sizes at once); Kumar
et al. 2020 (CQL) and van Hasselt et al. 2016 (double DQN).
Reference implementation: OG-MARL's QMIX+CQL (og_marl/tf2/systems/qmix_cql.py): Adam 3e-4,
γ = 0.99, mixer embedding 32, a CQL term of weight 3 over 20 joint actions sampled uniformly among
legal actions plus the dataset's joint action, target networks copied every 200 updates.

The mixer (`AttentionMixer`): each agent's embedding is the shared Q-network's encoder features
(B, N, H), projected to E; a multi-head self-attention over the alive agents (dead and padded
agents are masked out as keys) gives every agent a context-aware embedding h_i; the
hypernetworks read h_i for agent i's first-layer weights and the mean of h over alive agents for
everything that is not per agent:

    hidden = ELU(Σ_i |W1(h_i)| · q_i + b1(h̄))            (B, E)
    Q_tot  = |w2(h̄)| · hidden + V(h̄)                     (B,)

Every weight that multiplies a q_i is an absolute value and ELU is increasing, so ∂Q_tot/∂q_i ≥ 0
for every agent and every input. A dead or padded agent is excluded three times over: as an
attention key, from the mean h̄, and from the sum (its term is replaced by 0 with `torch.where`,
so even a NaN utility cannot leak). No parameter depends on N: the same weights mix 2 agents or 32.

Training target (team reward, team bootstrap): y = r_team + γ · bootstrap_team ·
Q_tot'(s', a'*), where r_team is `Batch.team_reward` (the sum of the agents' rewards), a'*_i is the
online network's best legal action for agent i at s' (double DQN), valued by the target network
and mixed by the target mixer over the agents whose next observation counts (`Batch.bootstrap`),
and the team bootstraps while any agent does (`Batch.team_bootstrap`).

Conservative term, on the joint action: α · mean_B[logsumexp_{j ∈ samples ∪ data} Q_tot(s, a_j)
− Q_tot(s, a_data)], with `n_cql_samples` joint actions drawn uniformly over each agent's legal
actions, as OG-MARL does. Why joint samples and not a per-agent decomposition (IQL's exact CQL on
each q_i): the TD loss fits Q_tot, so Q_tot is what overestimates out of distribution; the
per-agent term pushes utilities down without asking how the mixer combines them. The
hypernetworks' weights depend on the state only, so they are computed once and the sampled joint
actions cost one gather and one batched mix, not one mixer pass each.

Deviations:
- no recurrent agent network and no agent ids: one shared feed-forward `AgentNetwork` reads each
  agent's observation (OG-MARL: GRU with one-hot ids, which cannot act beyond its training N);
- the attention hypernetwork above instead of QMIX's MLP hypernetworks on the global state;
- the mixer reads the agents' encoder features detached by default (`detach_mixer_features`), as
  QMIX's mixer reads a state the agent networks do not learn: the encoder is trained only through
  the utilities q_i, which act alone at test time;
- the target networks follow by Polyak averaging, τ = 0.005 per update (as `idqn` does), instead of
  a hard copy every 200 updates;
- Huber TD loss on Q_tot (as `idqn` and d3rlpy do) instead of the squared error; no gradient-norm
  clipping (pymarl clips at 10): the Huber loss bounds each sample's gradient already;
- the team reward is the sum of the agents' rewards; OG-MARL's QMIX uses their mean.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from algos.base import (
    Algorithm,
    RewardScaledConfig,
    check_discount_and_rate,
    check_positive,
    param,
)
from algos.data import Batch
from algos.functional import (
    gather_actions,
    masked_argmax,
    masked_attention,
    masked_mean,
    soft_update,
)
from algos.networks import AgentNetwork
from datagen.errors import UserError


@dataclass(frozen=True)
class QMIXConfig(RewardScaledConfig):
    """QMIX with an attention mixer and a CQL term on joint actions."""

    lr: float = param(3e-4, "Adam learning rate (OG-MARL QMIX+CQL)")
    gamma: float = param(0.99, "discount factor (Rashid et al. 2018; OG-MARL)")
    tau: float = param(0.005, "Polyak rate of the target networks per update (as idqn)")
    cql_alpha: float = param(
        3.0, "weight of the CQL term on joint actions, 0 turns it off (OG-MARL QMIX+CQL)"
    )
    n_cql_samples: int = param(
        20, "joint actions sampled uniformly over legal actions for the CQL term (OG-MARL)"
    )
    mixer_embed_dim: int = param(
        32, "width E of the mixer's agent embeddings and hidden layer (pymarl, OG-MARL: 32)"
    )
    n_heads: int = param(4, "attention heads of the mixer; must divide mixer_embed_dim (REFIL)")
    detach_mixer_features: bool = param(
        True, "the mixer reads the encoder features without training the encoder through them"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "lr")
        check_discount_and_rate(self.gamma, self.tau)
        if self.cql_alpha < 0:
            raise UserError(f"cql_alpha must be >= 0, got {self.cql_alpha}")
        if self.n_cql_samples < 1:
            raise UserError(f"n_cql_samples must be at least 1, got {self.n_cql_samples}")
        if self.mixer_embed_dim < 1 or self.n_heads < 1:
            raise UserError("mixer_embed_dim and n_heads must be at least 1")
        if self.mixer_embed_dim % self.n_heads:
            raise UserError(
                f"n_heads ({self.n_heads}) must divide mixer_embed_dim ({self.mixer_embed_dim})"
            )


@dataclass(frozen=True)
class MixingWeights:
    """The mixer's weights for one batch of states (non-negative where they multiply a q_i).

    Attributes:
        w1: (B, N, E) ≥ 0, agent i's weights into the hidden layer (0 for dead or padded agents).
        b1: (B, E) hidden-layer bias.
        w2: (B, E) ≥ 0, hidden-to-output weights.
        b2: (B,) output bias, the state value V(s).
        alive: (B, N) bool, the agents that are mixed.
    """

    w1: Tensor
    b1: Tensor
    w2: Tensor
    b2: Tensor
    alive: Tensor


def monotone_mix(q: Tensor, weights: MixingWeights) -> Tensor:
    """Q_tot = w2 · ELU(Σ_i w1_i q_i + b1) + b2 over the alive agents.

    Args:
        q: (B, N) one utility per agent, or (B, K, N) K joint actions per state.
        weights: `MixingWeights` of the B states.

    Returns:
        (B,) or (B, K) Q_tot; a dead agent's q (even NaN or infinite) has no effect.
    """
    per_sample = q.dim() == 3
    if not per_sample:
        q = q.unsqueeze(1)  # (B, 1, N)
    q = torch.where(weights.alive.unsqueeze(1), q, 0.0)  # (B, K, N)
    hidden = torch.einsum("bkn,bne->bke", q, weights.w1) + weights.b1.unsqueeze(1)  # (B, K, E)
    q_tot = torch.einsum("bke,be->bk", F.elu(hidden), weights.w2) + weights.b2.unsqueeze(1)
    return q_tot if per_sample else q_tot.squeeze(1)  # (B, K) or (B,)


class AttentionMixer(nn.Module):
    """Monotone mixer of any number of agents, its weights made by attention over agent embeddings.

    Args:
        feature_size: H, the size of each agent's features.
        embed_dim: E, the width of the embeddings and of the mixing hidden layer.
        n_heads: attention heads (divides E).
    """

    def __init__(self, feature_size: int, embed_dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = embed_dim // n_heads
        self.embed = nn.Sequential(nn.Linear(feature_size, embed_dim), nn.ReLU())
        self.query = nn.Linear(embed_dim, embed_dim)
        self.key = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)
        self.attended = nn.Linear(embed_dim, embed_dim)
        self.hyper_w1 = nn.Linear(embed_dim, embed_dim)
        self.hyper_b1 = nn.Linear(embed_dim, embed_dim)
        self.hyper_w2 = nn.Linear(embed_dim, embed_dim)
        self.hyper_b2 = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1)
        )

    def attention(self, features: Tensor, alive: Tensor) -> tuple[Tensor, Tensor]:
        """Self-attention over the alive agents.

        Args:
            features: (B, N, H) agent features.
            alive: (B, N) bool.

        Returns:
            (embeddings (B, N, E) — every agent's own embedding plus what it attends to,
            attention weights (B, heads, N, N), each query's row summing to one over alive keys,
            or all 0 when nobody is alive: `masked_attention`'s rule).
        """
        batch_size, n_agents, _ = features.shape
        x = self.embed(features)  # (B, N, E)

        def heads(projection: nn.Linear) -> Tensor:
            split = projection(x).reshape(batch_size, n_agents, self.n_heads, self.head_dim)
            return split.transpose(1, 2)  # (B, heads, N, E / heads)

        # Alive agents only; in a state with nobody alive (a next state after the team's end,
        # whose Q_tot is never used) the context is 0, finite.
        context, weights = masked_attention(
            heads(self.query), heads(self.key), heads(self.value), alive
        )  # (B, heads, N, E / heads), (B, heads, N, N)
        context = context.transpose(1, 2).reshape(batch_size, n_agents, -1)  # (B, N, E)
        return x + self.attended(context), weights

    def mixing_weights(self, features: Tensor, alive: Tensor) -> MixingWeights:
        """The hypernetworks' outputs for states described by their agents' features (B, N, H)."""
        embeddings, _ = self.attention(features, alive)  # (B, N, E)
        mixed = alive.unsqueeze(-1)  # (B, N, 1)
        count = alive.sum(dim=1, keepdim=True).clamp(min=1)  # (B, 1)
        pooled = torch.where(mixed, embeddings, 0.0).sum(dim=1) / count  # (B, E)
        w1 = torch.where(mixed, self.hyper_w1(embeddings).abs(), 0.0)  # (B, N, E)
        return MixingWeights(
            w1=w1,
            b1=self.hyper_b1(pooled),
            w2=self.hyper_w2(pooled).abs(),
            b2=self.hyper_b2(pooled).squeeze(-1),
            alive=alive,
        )

    def forward(self, q: Tensor, features: Tensor, alive: Tensor) -> Tensor:
        """Q_tot (B,) of utilities q (B, N) (or (B, K) for q (B, K, N)) in the given states."""
        return monotone_mix(q, self.mixing_weights(features, alive))


def qmix_td_target(
    team_reward: Tensor,
    team_bootstrap: Tensor,
    gamma: float,
    next_q_online: Tensor,
    next_q_target: Tensor,
    next_action_mask: Tensor,
    next_weights: MixingWeights,
) -> Tensor:
    """r_team + γ · bootstrap_team · Q_tot'(s', argmax_{a' legal} q_online(s', a')) per state.

    Args:
        team_reward: (B,).
        team_bootstrap: (B,) bool, the team's episode continues after this step.
        gamma: discount.
        next_q_online: (B, N, A) online utilities at s' (pick each agent's action).
        next_q_target: (B, N, A) target utilities at s' (value it).
        next_action_mask: (B, N, A) bool legal actions at s'.
        next_weights: the target mixer's weights at s', over the agents whose next value counts.

    Returns:
        (B,) targets, without gradient.
    """
    with torch.no_grad():
        next_actions = masked_argmax(next_q_online, next_action_mask)  # (B, N)
        next_q_tot = monotone_mix(gather_actions(next_q_target, next_actions), next_weights)
        return team_reward + gamma * torch.where(team_bootstrap, next_q_tot, 0.0)


def sample_joint_actions(action_mask: Tensor, n_samples: int, generator: torch.Generator) -> Tensor:
    """Joint actions drawn uniformly over each agent's legal actions: (B, N, A) -> (B, K, N)."""
    batch_size, n_agents, n_actions = action_mask.shape
    probs = action_mask.reshape(-1, n_actions).float()  # (B * N, A)
    drawn = torch.multinomial(probs, n_samples, replacement=True, generator=generator)
    return drawn.reshape(batch_size, n_agents, n_samples).transpose(1, 2)  # (B, K, N)


class QMIX(Algorithm):
    """QMIX (double DQN on Q_tot, target networks), an any-N mixer and a joint-action CQL term."""

    name = "qmix"
    description = "QMIX with an attention mixer for any team size and a CQL term on joint actions"
    Config = QMIXConfig
    metric_keys = ("loss/td", "loss/cql", "loss/total", "train/q_tot_data", "train/q_data")

    def build(self) -> None:
        config = self.config
        q_network = AgentNetwork(self.spec, self.spec.n_actions, config.hidden_size, config.encoder)
        mixer = AttentionMixer(config.hidden_size, config.mixer_embed_dim, config.n_heads)
        self.q = self.add_network("q", q_network)
        self.mixer = self.add_network("mixer", mixer)
        self.q_target = self.add_network("q_target", copy.deepcopy(q_network))
        self.mixer_target = self.add_network("mixer_target", copy.deepcopy(mixer))
        self.q_target.requires_grad_(False)
        self.mixer_target.requires_grad_(False)
        parameters = [*self.q.parameters(), *self.mixer.parameters()]
        self.optimizers["q"] = torch.optim.Adam(parameters, lr=config.lr)

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        config = self.config
        # One forward of the online encoder over obs and next_obs together; the next-state half
        # only picks the double-DQN actions, without gradient.
        features_both = self.q.features(torch.cat([batch.obs, batch.next_obs]))  # (2B, N, H)
        q_both = self.q.head(features_both)  # (2B, N, A)
        q, next_q_online = q_both[: len(batch)], q_both[len(batch) :].detach()
        features = features_both[: len(batch)]  # (B, N, H)
        with torch.no_grad():
            next_features = self.q_target.features(batch.next_obs)  # (B, N, H)
            next_weights = self.mixer_target.mixing_weights(next_features, batch.bootstrap)
            target = qmix_td_target(
                self.reward_scale * batch.team_reward,
                batch.team_bootstrap,
                config.gamma,
                next_q_online,
                self.q_target.head(next_features),
                batch.next_action_mask,
                next_weights,
            )
        if config.detach_mixer_features:
            features = features.detach()
        weights = self.mixer.mixing_weights(features, batch.alive)
        q_data = gather_actions(q, batch.actions)  # (B, N)
        q_tot = monotone_mix(q_data, weights)  # (B,)
        td = F.smooth_l1_loss(q_tot, target)
        cql = self.joint_cql(q, q_tot, weights, batch.action_mask)
        total = td + config.cql_alpha * cql
        metrics = {
            "loss/td": td.detach(),
            "loss/cql": cql.detach(),
            "loss/total": total.detach(),
            "train/q_tot_data": q_tot.detach().mean(),
            "train/q_data": masked_mean(q_data.detach(), batch.alive),
        }
        return total, metrics

    def joint_cql(
        self, q: Tensor, q_tot: Tensor, weights: MixingWeights, action_mask: Tensor
    ) -> Tensor:
        """mean_B[logsumexp over sampled and dataset joint actions of Q_tot − Q_tot(data)].

        Args:
            q: (B, N, A) online utilities.
            q_tot: (B,) Q_tot of the dataset's joint actions.
            weights: the online mixer's weights of the B states.
            action_mask: (B, N, A) bool legal actions.
        """
        if self.config.cql_alpha == 0:
            return torch.zeros((), device=q.device)
        joint = sample_joint_actions(action_mask, self.config.n_cql_samples, self.generator)
        q_sampled = q.unsqueeze(1).expand(-1, joint.shape[1], -1, -1)  # (B, K, N, A)
        q_sampled = gather_actions(q_sampled, joint)  # (B, K, N)
        q_tot_sampled = monotone_mix(q_sampled, weights)  # (B, K)
        every = torch.cat([q_tot_sampled, q_tot.unsqueeze(1)], dim=1)  # (B, K + 1)
        return (torch.logsumexp(every, dim=1) - q_tot).mean()

    def after_step(self) -> None:
        soft_update(self.q_target, self.q, self.config.tau)
        soft_update(self.mixer_target, self.mixer, self.config.tau)

    def action_scores(self, obs: Tensor, alive: Tensor, positions: Tensor | None) -> Tensor:
        # Q_tot is monotone in every utility, so each agent's best utility is its part of the
        # team's best joint action: acting needs no mixer and no other agent.
        return self.q(obs)
