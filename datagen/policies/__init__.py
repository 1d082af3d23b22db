"""Behaviour policies that generate offline data.

A behaviour policy acts for the whole team at once: given the team's observations (agents on axis 0,
in `possible_agents` order) and which agents are alive, it returns each agent's action, the
probability distribution it sampled that action from (stored as `behaviour_probs`), and a label per
agent naming the behaviour that drove it (stored as `policy_labels`, decoded by the dataset's
`metadata["policy"]["labels"]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class TeamAction:
    """What a behaviour policy decided for one step.

    Attributes:
        actions: (N,) int64, the action of each agent (ignored by the env for dead agents).
        probs: (N, A) float32, the distribution each action was sampled from.
        labels: (N,) int8, index into the policy's `labels` of the behaviour that drove each agent.
    """

    actions: np.ndarray
    probs: np.ndarray
    labels: np.ndarray


class BehaviourPolicy(Protocol):
    """The interface the collector uses."""

    labels: tuple[str, ...]

    def act(self, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator) -> TeamAction:
        """Choose actions for the team.

        Args:
            obs: (N, *obs_shape) observations of every agent.
            alive: (N,) bool, which agents act this step.
            rng: the generator all sampling must draw from.
        """
        ...

    def spec(self) -> dict[str, Any]:
        """A JSON-ready description stored in the dataset's metadata."""
        ...


class RandomPolicy:
    """Uniform over the actions of every agent.

    Args:
        n_actions: size of each agent's discrete action space.
    """

    labels = ("random",)

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions

    def act(self, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator) -> TeamAction:
        n_agents = len(alive)
        actions = rng.integers(self.n_actions, size=n_agents).astype(np.int64)
        probs = np.full((n_agents, self.n_actions), 1.0 / self.n_actions, dtype=np.float32)
        return TeamAction(actions, probs, np.zeros(n_agents, dtype=np.int8))

    def spec(self) -> dict[str, Any]:
        return {"name": "random", "labels": list(self.labels), "weights_sha256": None}


QUALITIES = ("random",)


def make_policy(quality: str, env: Any) -> BehaviourPolicy:
    """The behaviour policy of `quality` for a built env.

    Raises:
        UserError: for a quality that does not exist (yet), naming the valid ones.
    """
    from datagen.errors import UserError

    if quality == "random":
        return RandomPolicy(env.action_space(env.possible_agents[0]).n)
    raise UserError(f"unknown quality {quality!r}; valid qualities: {', '.join(QUALITIES)}")
