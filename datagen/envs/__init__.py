"""The environment suite: seven PettingZoo-style envs whose number of agents can be set.

`make_env(name, n_agents, seed=..., **options)` is the one place where envs are built.
"""

from datagen.envs.describe import describe_env
from datagen.envs.registry import (
    ENV_SPECS,
    EnvConfigError,
    EnvRecipe,
    EnvSpec,
    check_request,
    env_from_record,
    env_names,
    env_recipe,
    env_record,
    get_spec,
    make_env,
    make_env_batch,
)

__all__ = [
    "ENV_SPECS",
    "EnvConfigError",
    "EnvRecipe",
    "EnvSpec",
    "check_request",
    "describe_env",
    "env_from_record",
    "env_names",
    "env_recipe",
    "env_record",
    "get_spec",
    "make_env",
    "make_env_batch",
]
