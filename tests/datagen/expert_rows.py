"""What the observation-only checks of every env's expert share: the (observation, behaviour
distribution) rows of a freshly collected expert dataset, grouped by observation bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from datagen.collect import CollectRequest, collect
from datagen.dataset import Dataset


def expert_rows(
    env: str,
    n_agents: int,
    out: Path,
    n_episodes: int = 2,
    seed: int = 2,
    options: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(observations (R, *obs), behaviour_probs (R, A)) of every live agent-step of a freshly
    collected expert dataset."""
    request = CollectRequest(
        env, n_agents, "expert", n_episodes=n_episodes, seed=seed, out=out, options=options or {}
    )
    with Dataset(collect(request)) as dataset:
        data = dataset.transitions()
    alive = data.alive.reshape(-1)
    obs = data.obs.reshape(-1, *data.obs.shape[2:])[alive]
    return obs, data.behaviour_probs.reshape(-1, data.behaviour_probs.shape[-1])[alive]


def probs_by_observation(obs: np.ndarray, probs: np.ndarray) -> dict[bytes, set[bytes]]:
    """Every distinct behaviour distribution seen with each observation (by its bytes)."""
    table: dict[bytes, set[bytes]] = {}
    for row, p in zip(obs, probs, strict=True):
        table.setdefault(np.ascontiguousarray(row).tobytes(), set()).add(p.tobytes())
    return table
