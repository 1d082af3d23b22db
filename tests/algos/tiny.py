"""Tiny datasets for the algos and benchmark tests, collected once per test session."""

from __future__ import annotations

import functools
from pathlib import Path

from datagen.collect import CollectRequest, collect

#: (env, n_agents, quality, episodes, options) of each tiny dataset, by key.
TINY = {
    "prison": ("prison", 2, "expert", 2, {"include_last_wall": True}),
    "prison4": ("prison", 4, "random", 1, {"include_last_wall": True}),
    "pursuit": ("pursuit", 2, "expert", 1, {"max_cycles": 120}),
    "kaz": ("knights_archers_zombies", 2, "random", 1, {"max_cycles": 60}),
    "kaz4": ("knights_archers_zombies", 4, "random", 1, {"max_cycles": 60}),
    "prison_image": ("prison", 2, "random", 1, {"obs_type": "image", "max_cycles": 40}),
}


@functools.cache
def tiny_datasets(root: Path) -> dict[str, Path]:
    """Collect every tiny dataset under `root` (once per process) and return their paths."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, (env, n_agents, quality, n_episodes, options) in TINY.items():
        request = CollectRequest(
            env,
            n_agents,
            quality,
            n_episodes=n_episodes,
            seed=0,
            out=root / f"{key}.h5",
            options=options,
        )
        paths[key] = collect(request)
    return paths
