"""Behaviour cloning, and filtered BC (the top fraction of episodes by team return).

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
  ranking across mixed team sizes would keep only the largest team's episodes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from algos.base import AlgoConfig, Algorithm, param
from algos.data import Batch, OfflineData
from algos.functional import gather_actions, masked_argmax, masked_log_softmax, masked_mean
from algos.networks import AgentNetwork
from datagen.errors import UserError


@dataclass(frozen=True)
class BCConfig(AlgoConfig):
    """Behaviour cloning hyperparameters."""

    lr: float = param(1e-3, "Adam learning rate (d3rlpy DiscreteBC default)")
    top_fraction: float = param(
        1.0,
        "clone only the best episodes of each dataset by team return, this fraction of them "
        "(1: plain BC; 0.1: the top 10 %, Chen et al. 2021)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr <= 0:
            raise UserError(f"lr must be positive, got {self.lr}")
        if not 0.0 < self.top_fraction <= 1.0:
            raise UserError(f"top_fraction must be in (0, 1], got {self.top_fraction}")


class BC(Algorithm):
    """Behaviour cloning with a shared categorical policy (filtered with `top_fraction` < 1)."""

    name = "bc"
    description = "behaviour cloning; filtered BC with top_fraction < 1"
    Config = BCConfig
    metric_keys = ("loss/bc", "train/accuracy")

    def build(self) -> None:
        config = self.config
        self.policy = self.add_network(
            "policy",
            AgentNetwork(self.spec, self.spec.n_actions, config.hidden_size, config.encoder),
        )
        self.optimizers["policy"] = torch.optim.Adam(self.policy.parameters(), lr=config.lr)

    def sampling_subset(self, data: OfflineData) -> Tensor | None:
        """The transitions of each dataset's best `top_fraction` of episodes (all when 1)."""
        if self.config.top_fraction >= 1.0:
            return None
        # return_rank is the fraction of the dataset's episodes with a higher return: the best
        # episode has rank 0, so at least one episode per dataset is kept.
        return torch.nonzero(data.return_rank < self.config.top_fraction).squeeze(1)

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.policy(batch.obs)  # (B, N, A)
        log_probs = masked_log_softmax(logits, batch.action_mask)
        nll = -gather_actions(log_probs, batch.actions)  # (B, N)
        loss = masked_mean(nll, batch.alive)
        with torch.no_grad():
            hits = (masked_argmax(logits, batch.action_mask) == batch.actions).float()
            accuracy = masked_mean(hits, batch.alive)
        return loss, {"loss/bc": loss.detach(), "train/accuracy": accuracy}

    def action_scores(self, obs: Tensor, alive: Tensor) -> Tensor:
        return self.policy(obs)
