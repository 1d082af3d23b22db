"""Behaviour cloning, filtered BC (the top fraction of episodes by team return) and per-agent
filtered BC (each agent's steps in the episodes where its own return is in the top fraction).

Paper: Pomerleau 1991 (ALVINN) for behaviour cloning; filtered ("%BC") as in Chen et al. 2021,
"Decision Transformer: Reinforcement Learning via Sequence Modeling", §5, which clones the top x %
of episodes by return.
Reference implementation: d3rlpy's `DiscreteBC` (d3rlpy/algos/qlearning/bc.py): a categorical
policy trained by cross-entropy on dataset actions, Adam with learning rate 1e-3.

Deviations:
- one policy network shared by every agent (parameter sharing, no agent id) over alive agents only;
  illegal actions are masked out of the softmax;
- no logit penalty: d3rlpy's DiscreteBC adds `beta` (0.5) times a penalty on the logits to the
  loss, which the papers above do not;
- the filter ranks episodes within each dataset (team returns grow with the team, so a single
  ranking across mixed team sizes would keep only the largest team's episodes);
- per-agent filtering (`filter_by = "agent"`, ours, for envs whose rewards are per agent): the
  unit ranked is an (episode, agent) pair by the agent's own return, so a saboteur's steps drop out
  of an episode whose other agents are kept. An agent's own return credits only its own reward;
  where rewards are shared by the team (pistonball's), it ranks like the team filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from algos.base import Algorithm, CommunicatingConfig, param
from algos.coordination import team_network
from algos.data import Batch, OfflineData
from algos.functional import gather_actions, masked_argmax, masked_log_softmax, masked_mean
from datagen.errors import UserError

#: What filtered BC ranks.
FILTERS = ("team", "agent")


def agent_return_ranks(data: OfflineData) -> Tensor:
    """(E, N) rank of each (episode, agent) pair by the agent's own return within its dataset: the
    fraction of the dataset's pairs (agents that acted) with a higher return, so the best pair
    has rank 0; 1 for pairs whose agent never acted (or padding)."""
    everything = data.batch(torch.arange(len(data), device=data.device))
    n_agents = everything.rewards.shape[1]
    index = everything.episode_index[:, None].expand(-1, n_agents)  # (T, N)
    returns = everything.rewards.new_zeros(data.n_episodes, n_agents)
    returns.scatter_add_(0, index, torch.where(everything.alive, everything.rewards, 0.0))
    acted = torch.zeros(data.n_episodes, n_agents, dtype=torch.bool, device=data.device)
    acted.scatter_reduce_(0, index, everything.alive, reduce="amax")
    episode_dataset = torch.zeros(data.n_episodes, dtype=torch.long, device=data.device)
    episode_dataset[everything.episode_index] = data.dataset_index
    ranks = torch.ones_like(returns)
    for dataset in episode_dataset.unique():
        pairs = acted & (episode_dataset == dataset)[:, None]  # (E, N)
        mine = returns[pairs]
        higher = (mine[None, :] > mine[:, None]).sum(1)  # per pair: how many returns are higher
        ranks[pairs] = higher.float() / len(mine)
    return ranks


@dataclass(frozen=True)
class BCConfig(CommunicatingConfig):
    """Behaviour cloning hyperparameters."""

    lr: float = param(1e-3, "Adam learning rate (d3rlpy DiscreteBC default)")
    top_fraction: float = param(
        1.0,
        "clone only the best episodes of each dataset by team return, this fraction of them "
        "(1: plain BC; 0.1: the top 10 %, Chen et al. 2021)",
    )

    filter_by: str = param(
        "team",
        "what top_fraction ranks: 'team' (episodes by team return) or 'agent' ((episode, agent) "
        "pairs by the agent's own return)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr <= 0:
            raise UserError(f"lr must be positive, got {self.lr}")
        if not 0.0 < self.top_fraction <= 1.0:
            raise UserError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        if self.filter_by not in FILTERS:
            raise UserError(
                f"unknown filter_by {self.filter_by!r}; valid values: {', '.join(FILTERS)}"
            )


class BC(Algorithm):
    """Behaviour cloning with a shared categorical policy (filtered with `top_fraction` < 1)."""

    name = "bc"
    description = "behaviour cloning; filtered BC with top_fraction < 1, per agent with filter_by"
    Config = BCConfig
    metric_keys = ("loss/bc", "train/accuracy")

    def build(self) -> None:
        config = self.config
        network = team_network(
            self.spec,
            self.spec.n_actions,
            config.hidden_size,
            config.encoder,
            config.n_heads,
            config.graph_rounds,
            config.graph_neighbours,
            config.graph_neighbourhood,
        )
        self.policy = self.add_network("policy", network)
        self.optimizers["policy"] = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        #: (E, N) bool, the (episode, agent) pairs the agent filter keeps; None: every pair.
        self.kept: Tensor | None = None

    def sampling_subset(self, data: OfflineData) -> Tensor | None:
        """The transitions `fit` draws: each dataset's best `top_fraction` of episodes (team
        filter), or the transitions where at least one kept (episode, agent) pair acts (agent
        filter); all when `top_fraction` is 1."""
        config = self.config
        if config.filter_by == "agent" and config.top_fraction < 1.0:
            self.kept = agent_return_ranks(data).to(self.device) < config.top_fraction  # (E, N)
            kept = self.kept.to(data.device)[data.episode_index]  # (T, N)
            return torch.nonzero(kept.any(1)).squeeze(1)
        if config.top_fraction >= 1.0:
            return None
        # return_rank is the fraction of the dataset's episodes with a higher return: the best
        # episode has rank 0, so at least one episode per dataset is kept.
        return torch.nonzero(data.return_rank < config.top_fraction).squeeze(1)

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.policy(batch.obs, batch.alive, batch.positions)  # (B, N, A)
        log_probs = masked_log_softmax(logits, batch.action_mask)
        nll = -gather_actions(log_probs, batch.actions)  # (B, N)
        cloned = batch.alive
        if self.kept is not None and batch.episode_index is not None:
            cloned = cloned & self.kept[batch.episode_index]  # the agent filter's pairs only
        loss = masked_mean(nll, cloned)
        with torch.no_grad():
            hits = (masked_argmax(logits, batch.action_mask) == batch.actions).float()
            accuracy = masked_mean(hits, cloned)
        return loss, {"loss/bc": loss.detach(), "train/accuracy": accuracy}

    def action_scores(self, obs: Tensor, alive: Tensor, positions: Tensor | None) -> Tensor:
        return self.policy(obs, alive, positions)
