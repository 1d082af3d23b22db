"""Which behaviour policy a quality means for an env.

Each env has a module `datagen/policies/<env>.py` defining `make_expert(env)` and
`make_adversary(env)` (and optionally `episode_metrics(env)`); this module turns a quality into a
policy built from those.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from datagen.errors import UserError
from datagen.policies import BehaviourPolicy, RandomPolicy

QUALITIES = ("random", "expert")


def env_module(env_name: str) -> ModuleType:
    """The policy module of an env.

    Raises:
        UserError: when the env has no scripted or trained behaviours yet.
    """
    try:
        return importlib.import_module(f"datagen.policies.{env_name}")
    except ModuleNotFoundError as err:
        raise UserError(f"no behaviour policies for env {env_name!r} yet") from err


def make_policy(quality: str, env: Any) -> BehaviourPolicy:
    """The behaviour policy of `quality` for a built env (from `make_env`).

    Raises:
        UserError: for an unknown quality, naming the valid ones.
    """
    n_actions = env.action_space(env.possible_agents[0]).n
    if quality == "random":
        return RandomPolicy(n_actions)
    if quality == "expert":
        return env_module(env.metadata["name"]).make_expert(env)
    raise UserError(f"unknown quality {quality!r}; valid qualities: {', '.join(QUALITIES)}")
