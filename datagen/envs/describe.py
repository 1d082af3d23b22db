"""What an env looks like once built: spaces, state, episode length, for tables and machines."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from datagen.envs.registry import get_spec, make_env


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _space_summary(space: spaces.Space) -> dict[str, Any]:
    return {"shape": list(space.shape), "dtype": str(np.dtype(space.dtype))}


def describe_env(name: str, n_agents: int | None = None) -> dict[str, Any]:
    """Build env `name` once and report what a dataset of it will hold.

    Args:
        name: an env of the suite.
        n_agents: the team size to describe; the spec's `default_n` when None.

    Returns:
        A JSON-ready dict: name, available (True), source, pettingzoo_id, version, n_min, n_max,
        ladder, n_agents, agent_ids, obs shape and dtype, n_actions, state shape (None when the
        env has no global state), view_radius (how far an agent sees, in the units of its
        positions), episode_length (env steps), obs_grows_with_n, options (defaults) and notes.
    """
    spec = get_spec(name)
    n = spec.default_n if n_agents is None else n_agents
    env = make_env(name, n)
    try:
        agent = env.possible_agents[0]
        obs_space = env.observation_space(agent)
        action_space = env.action_space(agent)
        state_shape = None if env.state_space is None else list(env.state_space.shape)
        agent_ids = list(env.possible_agents)
        view_radius = env.view_radius
    finally:
        env.close()
    obs_grows = False
    if spec.n_max > spec.n_min:
        other_n = spec.n_max if n != spec.n_max else spec.n_min
        other = make_env(name, other_n)
        obs_grows = other.observation_space(other.possible_agents[0]).shape != obs_space.shape
        other.close()
    options = spec.options
    episode_length = options.get("max_cycles", 0) // options.get("frame_skip", 1)
    if spec.pettingzoo_id is None:
        from datagen import __version__

        version = f"marl-offline-coordination {__version__}"
    else:
        version = f"pettingzoo {_package_version('pettingzoo')}"
    return {
        "name": spec.name,
        "available": True,
        "source": spec.source,
        "pettingzoo_id": spec.pettingzoo_id,
        "version": version,
        "n_min": spec.n_min,
        "n_max": spec.n_max,
        "ladder": list(spec.ladder),
        "n_agents": n,
        "agent_ids": agent_ids,
        "obs": _space_summary(obs_space),
        "obs_grows_with_n": obs_grows,
        "n_actions": int(action_space.n),
        "state_shape": state_shape,
        "view_radius": view_radius,
        "episode_length": int(episode_length),
        "options": {key: value for key, value in options.items()},
        "notes": spec.notes,
    }
