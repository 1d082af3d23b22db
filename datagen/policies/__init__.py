"""Behaviour policies that generate offline data.

A behaviour policy acts for the whole team at once. Given the env (privileged experts may read its
internals through `env.unwrapped`; such experts say so in their docstring and in `spec()`), the
team's observations (agents on axis 0, in `possible_agents` order) and which agents are alive, it
returns each agent's action, the distribution it sampled that action from (stored as
`behaviour_probs`) and a label per agent naming the behaviour that drove it (stored as
`policy_labels`, decoded by the dataset's `metadata["policy"]["labels"]`).

`reset(env, rng)` is called after every `env.reset`, so policies with memory (a prisoner's last
wall, a walker's carried rounding error, a pursuer's assignment) start each episode clean. All
randomness comes from the `rng` the collector passes in, so an episode replays from its seed.
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

    #: The names behind `TeamAction.labels`.
    labels: tuple[str, ...]

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        """Start an episode; called right after `env.reset`."""
        ...

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        """Choose actions for the team.

        Args:
            env: the env being played (privileged experts read `env.unwrapped`).
            obs: (N, *obs_shape) observations of every agent.
            alive: (N,) bool, which agents act this step.
            rng: the generator all sampling must draw from.
        """
        ...

    def spec(self) -> dict[str, Any]:
        """A JSON-ready description stored in the dataset's metadata (with `labels`)."""
        ...


def one_hot(actions: np.ndarray, n_actions: int) -> np.ndarray:
    """(N,) actions -> (N, A) float32 one-hot distributions (a deterministic policy's probs)."""
    probs = np.zeros((len(actions), n_actions), dtype=np.float32)
    probs[np.arange(len(actions)), actions] = 1.0
    return probs


class ScriptedPolicy:
    """Base of deterministic scripted controllers: subclasses implement `choose`.

    Args:
        n_actions: size of each agent's discrete action space.
        name: the behaviour's name (also its only label).
        privileged: whether `choose` reads the env's internals.
    """

    def __init__(self, n_actions: int, name: str, privileged: bool) -> None:
        self.n_actions = n_actions
        self.name = name
        self.privileged = privileged
        self.labels = (name,)

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        """Scripted controllers without memory need nothing here."""

    def choose(self, env: Any, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """(N,) int actions for the team."""
        raise NotImplementedError

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        actions = np.asarray(self.choose(env, obs, alive), dtype=np.int64)
        labels = np.zeros(len(actions), dtype=np.int8)
        return TeamAction(actions, one_hot(actions, self.n_actions), labels)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "privileged": self.privileged,
            "labels": list(self.labels),
            "weights_sha256": None,
        }


class RandomPolicy:
    """Uniform over the actions of every agent.

    Args:
        n_actions: size of each agent's discrete action space.
    """

    labels = ("random",)

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        """Memoryless."""

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        n_agents = len(alive)
        actions = rng.integers(self.n_actions, size=n_agents).astype(np.int64)
        probs = np.full((n_agents, self.n_actions), 1.0 / self.n_actions, dtype=np.float32)
        return TeamAction(actions, probs, np.zeros(n_agents, dtype=np.int8))

    def spec(self) -> dict[str, Any]:
        return {"name": "random", "labels": list(self.labels), "weights_sha256": None}
