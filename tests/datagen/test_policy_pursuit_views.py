"""Tests of the observation-only team rule for pursuit (`PursuitViewTeam`, exploratory)."""

from __future__ import annotations

import numpy as np

from datagen.envs import make_env
from datagen.policies import RandomPolicy
from datagen.policies.evaluate import evaluate
from datagen.policies.pursuit import STAY, PursuitViewTeam
from datagen.rollout import play

SHORT = {"max_cycles": 60}


def _view(pursuers=(), evaders=(), walls=()) -> np.ndarray:
    """A (7, 7, 3) view with the agent at the centre; entries are (dx, dy) offsets."""
    view = np.zeros((7, 7, 3), dtype=np.float32)
    view[3, 3, 1] = 1.0
    for channel, cells in ((0, walls), (1, pursuers), (2, evaders)):
        for dx, dy in cells:
            view[3 + dy, 3 + dx, channel] += 1.0
    return view


def _rows(n_agents: int, seed: int) -> list[tuple[bytes, np.ndarray]]:
    env = make_env("pursuit", n_agents, **SHORT)
    try:
        policy = PursuitViewTeam(5)
        return [
            (view.tobytes(), probs)
            for step in play(env, policy, seed)
            for view, probs in zip(step.obs, step.decision.probs, strict=True)
        ]
    finally:
        env.close()


def test_acts_from_views_alone() -> None:
    policy = PursuitViewTeam(5, eps=0.0)
    rng = np.random.default_rng(0)
    # On the west ring cell of an evader: stay. Two cells west of the evader's west cell: go east.
    obs = np.stack([_view(evaders=[(1, 0)]), _view(evaders=[(3, 0)])])
    decision = policy.act(None, obs, np.ones(2, dtype=bool), rng)
    assert decision.actions.tolist() == [STAY, 1]
    assert policy.choose(None, obs, np.ones(2, dtype=bool)).tolist() == [STAY, 1]


def test_ring_cells_are_shared_out() -> None:
    ring = [(1, 0), (3, 0), (2, 1), (2, -1)]
    # Another pursuer holds the evader's west cell: the agent takes a free one.
    assert PursuitViewTeam._my_cell((2, 0), ring, [(0, 0), (1, 0)]) in ring[1:]
    # Another pursuer is as near the west cell as the agent (both 1 away): the tie goes by offset
    # from the evader, the same order for whichever pursuer computes it.
    assert PursuitViewTeam._my_cell((2, 0), ring, [(0, 0), (1, 1)]) == (1, 0)
    assert PursuitViewTeam._my_cell(
        (1, -1), [(0, -1), (2, -1), (1, 0), (1, -2)], [(0, 0), (-1, -1)]
    ) == (1, 0)


def test_same_observation_same_distribution_across_team_sizes() -> None:
    seen: dict[bytes, np.ndarray] = {}
    for n_agents in (4, 8):
        for key, probs in _rows(n_agents, seed=3):
            if key in seen:
                np.testing.assert_array_equal(seen[key], probs)
            else:
                seen[key] = probs
    assert len(seen) > 100


def test_beats_random() -> None:
    view = evaluate("pursuit", 8, lambda env: PursuitViewTeam(5), 2, seed=0, options=SHORT)
    rand = evaluate("pursuit", 8, lambda env: RandomPolicy(5), 2, seed=0, options=SHORT)
    assert view.metric_means()["evaders_caught"] > rand.metric_means()["evaders_caught"] + 3
    assert view.mean > rand.mean
