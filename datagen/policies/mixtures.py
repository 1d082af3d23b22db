"""Behaviours built from an env's expert and adversary: medium, collapsed and saboteur teams.

- `EpsilonMixture` (quality **medium**): each agent, at each step, follows the expert with
  probability 1 − ε and acts uniformly at random with probability ε. ε is calibrated per env and
  team size so that the normalised score lands between 30 and 60 (`datagen.policies.reference`).
- `Collapsed` (**degenerate-collapsed**): every agent repeats one action for the whole episode.
- `Saboteurs` (**degenerate-saboteur**): a fraction of the team, drawn per episode, follows the
  adversary and the rest the expert; `policy_labels` say which agent was which.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datagen.policies import BehaviourPolicy, TeamAction, one_hot


class EpsilonMixture:
    """Expert with probability 1 − ε, uniform random with probability ε, per agent and step.

    Args:
        expert: the env's expert.
        n_actions: size of each agent's action space.
        epsilon: probability of a random action.
    """

    labels = ("expert", "random")

    def __init__(self, expert: BehaviourPolicy, n_actions: int, epsilon: float) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.expert, self.n_actions, self.epsilon = expert, n_actions, epsilon

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        self.expert.reset(env, rng)

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        # The expert decides every step, so a stateful expert keeps its memory consistent.
        planned = self.expert.act(env, obs, alive, rng)
        explore = rng.random(len(alive)) < self.epsilon
        random_actions = rng.integers(self.n_actions, size=len(alive))
        actions = np.where(explore, random_actions, planned.actions).astype(np.int64)
        probs = (1.0 - self.epsilon) * planned.probs + self.epsilon / self.n_actions
        return TeamAction(actions, probs.astype(np.float32), explore.astype(np.int8))

    def spec(self) -> dict[str, Any]:
        return {
            "name": "medium",
            "labels": list(self.labels),
            "epsilon": self.epsilon,
            "expert": self.expert.spec(),
            "weights_sha256": self.expert.spec().get("weights_sha256"),
        }


class Collapsed:
    """Every agent repeats `action` for the whole episode.

    Args:
        n_actions: size of each agent's action space.
        action: the action repeated.
    """

    labels = ("collapsed",)

    def __init__(self, n_actions: int, action: int) -> None:
        if not 0 <= action < n_actions:
            raise ValueError(f"collapsed action must be in [0, {n_actions}), got {action}")
        self.n_actions, self.action = n_actions, action

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        """Memoryless."""

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        actions = np.full(len(alive), self.action, dtype=np.int64)
        return TeamAction(actions, one_hot(actions, self.n_actions), np.zeros(len(alive), np.int8))

    def spec(self) -> dict[str, Any]:
        return {
            "name": "collapsed",
            "labels": list(self.labels),
            "action": self.action,
            "weights_sha256": None,
        }


class Saboteurs:
    """A fraction of the team sabotages: at each reset, round(fraction × N) agents (at least one
    when the fraction is positive) are drawn to follow the adversary; the others follow the expert.

    Args:
        expert: the env's expert.
        adversary: the env's adversary.
        fraction: share of the team that sabotages, in [0, 1].
    """

    labels = ("expert", "adversarial")

    def __init__(self, expert: BehaviourPolicy, adversary: BehaviourPolicy, fraction: float):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"saboteur fraction must be in [0, 1], got {fraction}")
        self.expert, self.adversary, self.fraction = expert, adversary, fraction
        self.saboteur = np.zeros(0, dtype=bool)

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        n_agents = len(env.possible_agents)
        count = round(self.fraction * n_agents)
        if self.fraction > 0:
            count = max(1, count)
        self.saboteur = np.zeros(n_agents, dtype=bool)
        self.saboteur[rng.choice(n_agents, size=count, replace=False)] = True
        self.expert.reset(env, rng)
        self.adversary.reset(env, rng)

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        good = self.expert.act(env, obs, alive, rng)
        bad = self.adversary.act(env, obs, alive, rng)
        actions = np.where(self.saboteur, bad.actions, good.actions).astype(np.int64)
        probs = np.where(self.saboteur[:, None], bad.probs, good.probs).astype(np.float32)
        return TeamAction(actions, probs, self.saboteur.astype(np.int8))

    def spec(self) -> dict[str, Any]:
        return {
            "name": "saboteur",
            "labels": list(self.labels),
            "fraction": self.fraction,
            "expert": self.expert.spec(),
            "adversary": self.adversary.spec(),
            "weights_sha256": self.expert.spec().get("weights_sha256"),
        }
