"""Tests of pursuit's observation-only expert (`PursuitViewExpert`, datagen/policies/pursuit.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datagen.envs import make_env
from datagen.policies import RandomPolicy
from datagen.policies.evaluate import evaluate
from datagen.policies.pursuit import (
    STAY,
    PairView,
    PursuitExpert,
    PursuitViewExpert,
    _may_enter,
    base_env,
    make_expert,
    pursuer_cells,
)
from datagen.policies.registry import make_policy
from datagen.rollout import play
from tests.datagen.expert_rows import expert_rows, probs_by_observation

WEST, EAST, SOUTH, NORTH = 0, 1, 2, 3


def _view(pursuers=(), evaders=(), walls=()) -> np.ndarray:
    """A (7, 7, 3) view with the agent at the centre; entries are (dx, dy) offsets."""
    view = np.zeros((7, 7, 3), dtype=np.float32)
    view[3, 3, 1] = 1.0
    for channel, cells in ((0, walls), (1, pursuers), (2, evaders)):
        for dx, dy in cells:
            view[3 + dy, 3 + dx, channel] += 1.0
    return view


def _views_of(grid: np.ndarray, cells: list[tuple[int, int]]) -> list[np.ndarray]:
    """The (7, 7, 3) view of an agent at each cell of an open (x, y, channel) grid with a wall
    border three cells deep."""
    padded = np.pad(grid, ((3, 3), (3, 3), (0, 0)))
    padded[:3, :, 0] = padded[-3:, :, 0] = padded[:, :3, 0] = padded[:, -3:, 0] = 1.0
    return [padded[x : x + 7, y : y + 7].transpose(1, 0, 2) for x, y in cells]


def test_every_team_size_gets_the_view_expert_and_privileged_stays_available() -> None:
    for n in (1, 2, 4, 32):
        env = make_env("pursuit", n)
        expert, privileged = make_policy("expert", env), make_policy("privileged", env)
        env.close()
        assert isinstance(expert, PursuitViewExpert)
        assert expert.spec()["privileged"] is False and expert.spec()["name"] == "expert"
        assert isinstance(privileged, PursuitExpert)
        assert privileged.spec()["privileged"] is True
        assert privileged.spec()["name"] == "privileged"


def test_acts_from_views_alone() -> None:
    policy = PursuitViewExpert(5)
    alive = np.ones(4, dtype=bool)
    # An evader east of the agent, which stands on one of its ring cells; two others hold two
    # more and a third pursuer is one step from the last: the agent keeps its cell.
    ring = [(1, -1), (2, 0)]
    holder = _view(pursuers=ring + [(0, 1)], evaders=[(1, 0)])
    # The same scene seen from the pursuer at (0, 1) of the agent: it steps east onto the last
    # free ring cell (1, 1).
    closer = _view(pursuers=[(0, -1), (1, -2), (2, -1)], evaders=[(1, -1)])
    # An evader in the open and a single other pursuer: too few to surround it, nothing to chase
    # with; the pair's patrol heads west for the map's edge.
    pair = _view(pursuers=[(-1, 2)], evaders=[(2, 0)])
    # Two other pursuers in view: the three close in on the evader all the same.
    trio = _view(pursuers=[(-1, 2), (0, -3)], evaders=[(2, 0)])
    obs = np.stack([holder, closer, pair, trio])
    decision = policy.act(None, obs, alive, np.random.default_rng(0))
    assert decision.actions.tolist() == [STAY, EAST, WEST, EAST]
    assert (decision.probs == np.eye(5)[decision.actions]).all()  # deterministic


def test_two_pursuers_never_enter_one_cell() -> None:
    """In random scenes where two pursuers stand next to one free cell, exactly one of them may
    step into it, each reading its own view."""
    rng = np.random.default_rng(0)
    into = {(-1, 0): EAST, (1, 0): WEST, (0, -1): SOUTH, (0, 1): NORTH}  # side of cell -> move
    for _ in range(400):
        grid = np.zeros((9, 9, 3), dtype=np.float32)
        grid[rng.random((9, 9)) < 0.15, 2] = 1.0  # evaders
        target = (4, 4)
        a, b = rng.choice(4, size=2, replace=False)
        sides = list(into)
        cells = [(target[0] + sides[a][0], target[1] + sides[a][1])]
        cells.append((target[0] + sides[b][0], target[1] + sides[b][1]))
        for x, y in cells:
            grid[x, y, 1] = 1.0
        views = _views_of(grid, cells)
        allowed = [
            _may_enter(PairView(view), into[sides[k]])
            for view, k in zip(views, (a, b), strict=True)
        ]
        assert sum(allowed) == 1, (cells, allowed)


def test_no_two_pursuers_ever_share_a_cell() -> None:
    env = make_env("pursuit", 16, max_cycles=120)
    policy = make_expert(env)
    steps = 0
    for seed in range(2):
        for _ in play(env, policy, seed):
            cells = pursuer_cells(base_env(env))
            assert len(set(cells.tolist())) == 16
            steps += 1
    env.close()
    assert steps >= 100


def test_expert_probs_are_a_function_of_the_observation(tmp_path: Path) -> None:
    options = {"max_cycles": 200}
    rows = [expert_rows("pursuit", n, tmp_path / f"n{n}.h5", options=options) for n in (2, 8)]
    tables = [probs_by_observation(*row) for row in rows]
    for (obs, _), table in zip(rows, tables, strict=True):
        assert all(len(distinct) == 1 for distinct in table.values())
        assert len(obs) - len(table) >= 50  # rows whose observation occurred before
    shared = set(tables[0]) & set(tables[1])
    assert len(shared) >= 20  # the two team sizes meet on many observations
    assert all(tables[0][key] == tables[1][key] for key in shared)


def test_beats_random() -> None:
    short = {"max_cycles": 60}
    view = evaluate("pursuit", 8, make_expert, 2, seed=0, options=short)
    rand = evaluate("pursuit", 8, lambda env: RandomPolicy(5), 2, seed=0, options=short)
    assert view.metric_means()["evaders_caught"] >= rand.metric_means()["evaders_caught"] + 10
    assert view.mean > rand.mean + 150


@pytest.mark.slow
def test_bc_learns_the_expert(tmp_path: Path) -> None:
    """Plain BC (CNN encoder, hidden 128, 4,000 updates) on 20 expert episodes at n = 8 plays at
    >= 80 normalized at n = 8, sampling its actions. Measured: +148.15, 29.9 of 30 caught,
    normalized 91.3; 450 s on the shared 2-core development machine (other jobs running).

    Sampling, because a learner's slips can put two pursuers on one cell, which the expert never
    does (so its data says nothing about it) and which a greedy policy never leaves (two pursuers
    on a cell see one view). Acting greedily, the same model kept 2.6 of the 8 pursuers per step
    on cells another already held and scored 77 (72.5 after 8,000 updates); an MLP (hidden 256,
    8,000 updates) scored 44.5 greedily, 80 sampling.
    """
    from algos.data import OfflineData
    from algos.registry import build_algorithm
    from algos.train import TrainSettings, fit
    from benchmark.evaluate import evaluate_algorithm
    from datagen.collect import CollectRequest, collect

    n = 8
    request = CollectRequest("pursuit", n, "expert", n_episodes=20, seed=1, out=tmp_path / "e.h5")
    data = OfflineData.from_datasets([collect(request)])
    algo = build_algorithm("bc", data.spec, {"hidden_size": 128, "encoder": "cnn"}, seed=0)
    fit(algo, data, TrainSettings(4000, batch_size=256, seed=0), tmp_path / "run", progress=False)
    evaluation, score = evaluate_algorithm(algo, "pursuit", n, 10, seed=100, greedy=False)
    caught = np.mean(evaluation.metrics["evaders_caught"])
    print(
        f"bc on pursuit n={n}: return {evaluation.mean:.2f}, {caught:.1f} caught, "
        f"normalized {score:.1f}"
    )
    assert score >= 80
