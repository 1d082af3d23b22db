"""Which behaviour policy a quality means for an env.

Each env has a module `datagen/policies/<env>.py` defining `make_expert(env)` and
`make_adversary(env)` (and optionally `episode_metrics(env)`); this module turns a quality — and,
for degenerate data, a mode — into a policy built from them.

Qualities: `random` (uniform), `expert` (observation-only: each agent's action a function of its own
observation), `privileged` (the env's controller that reads env internals: oracle data, a ceiling,
not imitable from the observations; the module's `make_privileged`), `medium` (expert/random
mixture with the calibrated ε of `data/medium_recipes.json`), `degenerate`. Degenerate modes:
`adversarial` (the default: the env's adversary acts against the team's goal), `collapsed`
(every agent repeats one action) and `saboteur` (a fraction of the team is adversarial, the rest
expert).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from datagen.errors import UserError
from datagen.policies import BehaviourPolicy, RandomPolicy
from datagen.policies.mixtures import Collapsed, EpsilonMixture, Saboteurs
from datagen.policies.records import medium_recipe

QUALITIES = ("random", "medium", "expert", "privileged", "degenerate")
DEGENERATE_MODES = ("adversarial", "collapsed", "saboteur")
DEFAULT_DEGENERATE_MODE = "adversarial"


@dataclass(frozen=True)
class Quality:
    """A behaviour quality and its recipe.

    Attributes:
        name: one of `QUALITIES`.
        mode: degenerate mode (None for other qualities).
        saboteur_fraction: share of saboteurs in `saboteur` mode.
        collapsed_action: the action repeated in `collapsed` mode.
        epsilon: medium's random-action probability; None reads the calibrated recipe.
    """

    name: str
    mode: str | None = None
    saboteur_fraction: float = 0.25
    collapsed_action: int = 0
    epsilon: float | None = None

    def __post_init__(self) -> None:
        if self.name not in QUALITIES:
            raise UserError(
                f"unknown quality {self.name!r}; valid qualities: {', '.join(QUALITIES)}"
            )
        if self.name == "degenerate":
            mode = self.mode or DEFAULT_DEGENERATE_MODE
            if mode not in DEGENERATE_MODES:
                raise UserError(
                    f"unknown degenerate mode {mode!r}; valid modes: {', '.join(DEGENERATE_MODES)}"
                )
            object.__setattr__(self, "mode", mode)
        elif self.mode is not None:
            raise UserError("--degenerate-mode only applies to --quality degenerate")

    @property
    def tag(self) -> str:
        """The quality part of a dataset id: the mode extends it unless it is the default."""
        if self.name == "degenerate" and self.mode != DEFAULT_DEGENERATE_MODE:
            return f"degenerate-{self.mode}"
        return self.name


def env_module(env_name: str) -> ModuleType:
    """The policy module of an env.

    Raises:
        UserError: when the env has no behaviour policies yet.
    """
    try:
        return importlib.import_module(f"datagen.policies.{env_name}")
    except ModuleNotFoundError as err:
        raise UserError(f"no behaviour policies for env {env_name!r} yet") from err


def make_policy(quality: str | Quality, env: Any) -> BehaviourPolicy:
    """The behaviour policy of `quality` for a built env (from `make_env`).

    Raises:
        UserError: unknown quality or mode; medium without a calibrated recipe.
    """
    spec = quality if isinstance(quality, Quality) else Quality(quality)
    env_name = env.metadata["name"]
    n_agents = len(env.possible_agents)
    n_actions = env.action_space(env.possible_agents[0]).n
    if spec.name == "random":
        return RandomPolicy(n_actions)
    module = env_module(env_name)
    if spec.name == "expert":
        return module.make_expert(env)
    if spec.name == "privileged":
        if not hasattr(module, "make_privileged"):
            raise UserError(
                f"{env_name} has no privileged controller: its expert already acts from the "
                "agents' observations alone; use --quality expert"
            )
        return module.make_privileged(env)
    if spec.name == "medium":
        epsilon = spec.epsilon
        if epsilon is None:
            recipe = medium_recipe(env_name, n_agents)
            if recipe is None:
                raise UserError(
                    f"no calibrated medium recipe for {env_name} with {n_agents} agents; run: "
                    f"marl-datagen calibrate --env {env_name} --agents {n_agents}"
                )
            epsilon = recipe["epsilon"]
        return EpsilonMixture(module.make_expert(env), n_actions, epsilon)
    if spec.mode == "adversarial":
        return module.make_adversary(env)
    if spec.mode == "collapsed":
        return Collapsed(n_actions, spec.collapsed_action)
    return Saboteurs(module.make_expert(env), module.make_adversary(env), spec.saboteur_fraction)
