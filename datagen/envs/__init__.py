"""The environment suite: seven PettingZoo-style envs whose number of agents can be set.

`make_env(name, n_agents, seed=..., **options)` is the one place where envs are built.
"""

from datagen.envs.describe import describe_env
from datagen.envs.registry import (
    ENV_SPECS,
    EnvConfigError,
    EnvSpec,
    check_request,
    env_names,
    get_spec,
    make_env,
)

__all__ = [
    "ENV_SPECS",
    "EnvConfigError",
    "EnvSpec",
    "check_request",
    "describe_env",
    "env_names",
    "get_spec",
    "make_env",
]
