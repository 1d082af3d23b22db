"""Tests of the pursuit behaviour policies (datagen/policies/pursuit.py): the privileged controller,
the adversary, the view pair, and the expert's returns (its observation-only rule:
tests/datagen/test_policy_pursuit_views.py)."""

from __future__ import annotations

import numpy as np
import pytest

from datagen.envs import make_env
from datagen.policies import RandomPolicy
from datagen.policies.evaluate import evaluate
from datagen.policies.pursuit import (
    FAR,
    STAY,
    PursuitAdversary,
    PursuitExpert,
    PursuitViewExpert,
    PursuitViewPair,
    base_env,
    build_grid,
    corner_odds,
    episode_metrics,
    evader_cells,
    make_adversary,
    make_expert,
    make_privileged,
    pursuer_cells,
    pursuit_map,
    steps_towards,
    team_groups,
)
from datagen.rollout import play

SHORT = {"max_cycles": 100}


def _random(env):
    return RandomPolicy(env.action_space(env.possible_agents[0]).n)


@pytest.fixture(scope="module")
def grid():
    env = make_env("pursuit", 2)
    env.reset(seed=0)
    try:
        return build_grid(pursuit_map(base_env(env)))
    finally:
        env.close()


# --------------------------------------------------------------------------- geometry


def test_grid_geometry(grid) -> None:
    y_size = grid.y_size
    # The four map corners are the only cells an evader is caught in by two pursuers.
    assert sorted(grid.corners.tolist()) == [0, 15, 15 * y_size, 15 * y_size + 15]
    assert grid.need[1] == 3  # map edge (x=0, y=1)
    assert grid.need[1 * y_size + 1] == 4  # open field (1, 1)
    assert grid.need[4 * y_size + 8] == 3  # beside the building (x=4, y=8)
    building = ~grid.is_open
    assert building.sum() == 63
    assert (grid.dist[building] == FAR).all()
    open_cells = np.flatnonzero(grid.is_open)
    sub = grid.dist[np.ix_(open_cells, open_cells)]
    assert (sub == sub.T).all() and sub.max() < FAR  # the ring of open cells is connected
    # Going round the building costs more than the straight line through it.
    assert grid.dist[4 * y_size + 8, 12 * y_size + 8] == 18


def test_steps_towards_shortens_every_path(grid) -> None:
    rng = np.random.default_rng(0)
    open_cells = np.flatnonzero(grid.is_open)
    cells, goals = rng.choice(open_cells, 200), rng.choice(open_cells, 200)
    actions = steps_towards(grid, cells, goals)
    before = grid.dist[cells, goals]
    after = grid.dist[grid.step[cells, actions], goals]
    assert ((after == before - 1) | ((before == 0) & (actions == STAY))).all()


def test_corner_odds_are_probabilities(grid) -> None:
    inside, entered = corner_odds(grid, 30)
    assert inside.shape == entered.shape == (31, len(grid.is_open), 4)
    assert ((inside >= 0) & (inside <= 1)).all()
    assert (np.diff(entered, axis=0) >= -1e-12).all()
    # An evader in a corner stays there with probability 3/5 (two bumps and "stay").
    corner = grid.corners[0]
    assert inside[1, corner, 0] == pytest.approx(0.6)
    slot = grid.slots[corner, 0]
    assert entered[1, slot, 0] == pytest.approx(0.2)


def test_team_groups() -> None:
    assert [len(g) for g in team_groups(2)] == [2]
    assert [len(g) for g in team_groups(6)] == [6]
    assert [len(g) for g in team_groups(8)] == [4, 4]
    assert [len(g) for g in team_groups(10)] == [5, 5]
    assert [len(g) for g in team_groups(11)] == [4, 4, 3]
    assert np.concatenate(team_groups(32)).tolist() == list(range(32))


# --------------------------------------------------------------------------- catch mechanics


def _place(env, pursuers: list[tuple[int, int]], evaders: list[tuple[int, int]]) -> None:
    base = base_env(env)
    for agent, (x, y) in zip(base.pursuer_layer.allies, pursuers, strict=True):
        agent.set_position(x, y)
    for agent, (x, y) in zip(base.evader_layer.allies, evaders, strict=True):
        agent.set_position(x, y)
    base.model_state[1] = base.pursuer_layer.get_state_matrix()
    base.model_state[2] = base.evader_layer.get_state_matrix()


def _view_pair(env):
    return PursuitViewPair(5)


@pytest.mark.parametrize(
    ("make", "pursuers", "evader", "reward"),
    [
        # Four pursuers one step from the four neighbours of an evader in the open: the
        # privileged groups of 4, and the expert, whose pursuers each see two of the others.
        (make_privileged, [(0, 2), (4, 2), (2, 4), (2, 0)], (2, 2), 20.0),
        (make_expert, [(0, 2), (4, 2), (2, 4), (2, 0)], (2, 2), 20.0),
        # By the map's edge three surround an evader: two hold their cells, the third steps in.
        (make_expert, [(0, 2), (0, 4), (2, 3)], (0, 3), 15.0),
        # The privileged pair one step from the two neighbours of a corner.
        (make_privileged, [(2, 0), (0, 2)], (0, 0), 10.0),
        # The expert's pair and the view pair: one waits past the corner for its partner, who
        # steps in before it.
        (make_expert, [(1, 0), (0, 2)], (0, 0), 10.0),
        (_view_pair, [(1, 0), (0, 2)], (0, 0), 10.0),
    ],
)
def test_expert_closes_the_ring_in_one_step(make, pursuers, evader, reward) -> None:
    n = len(pursuers)
    # Placing agents by hand needs PettingZoo's own objects.
    env = make_env("pursuit", n, n_evaders=1, implementation="pettingzoo")
    policy = make(env)
    rng = np.random.default_rng(0)
    env.reset(seed=3)
    policy.reset(env, rng)
    _place(env, pursuers, [evader])
    base = base_env(env)
    team_obs = np.stack([np.swapaxes(base.safely_observe(i), 2, 0) for i in range(n)])
    decision = policy.act(env, team_obs, np.ones(n, bool), rng)
    _, rewards, terminated, _, _ = env.step(
        {a: int(decision.actions[i]) for i, a in enumerate(env.possible_agents)}
    )
    assert episode_metrics(env) == {"evaders_caught": 1.0}
    assert not env.agents and all(terminated.values())  # the last evader ends the episode
    # +5 to each pursuer on a neighbouring cell, the urgency penalty, a tag or two.
    assert sum(rewards.values()) == pytest.approx(reward - 0.1 * n, abs=0.1)
    env.close()


# --------------------------------------------------------------------------- returns


def test_privileged_beats_random_and_catches() -> None:
    expert = evaluate("pursuit", 4, make_privileged, 3, seed=0, options=SHORT)
    random = evaluate("pursuit", 4, _random, 3, seed=0, options=SHORT)
    assert expert.mean > random.mean + 200
    assert min(expert.metrics["evaders_caught"]) >= 15
    assert random.mean < 0


def test_pair_guarding_a_corner_is_positive() -> None:
    options = {"max_cycles": 150}
    expert = evaluate("pursuit", 2, make_expert, 2, seed=0, options=options)
    random = evaluate("pursuit", 2, _random, 2, seed=0, options=options)
    assert min(expert.metrics["evaders_caught"]) >= 3
    assert expert.mean > 0 > random.mean


def test_adversary_is_worse_than_random() -> None:
    adversary = evaluate("pursuit", 4, make_adversary, 2, seed=0, options=SHORT)
    random = evaluate("pursuit", 4, _random, 2, seed=0, options=SHORT)
    assert adversary.mean < random.mean
    assert adversary.metrics["evaders_caught"] == [0.0, 0.0]
    # Only the urgency penalty (-0.1 per agent per step) and stray tags.
    assert adversary.mean == pytest.approx(-0.1 * 4 * 100, abs=2.0)


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("make", [make_expert, make_privileged, make_adversary])
def test_deterministic_valid_actions_and_metrics(make) -> None:
    env = make_env("pursuit", 5, max_cycles=60)
    policy = make(env)
    assert isinstance(policy, PursuitViewExpert | PursuitExpert | PursuitAdversary)
    assert policy.spec()["privileged"] is (make is not make_expert)
    runs = []
    for _ in range(2):
        actions, total = [], 0.0
        for step in play(env, policy, seed=11):
            decision = step.decision
            assert decision.actions.shape == (5,) and decision.actions.dtype == np.int64
            assert ((decision.actions >= 0) & (decision.actions < 5)).all()
            assert (decision.probs[np.arange(5), decision.actions] == 1.0).all()
            assert (decision.probs.sum(axis=1) == 1.0).all()
            actions.append(decision.actions)
            total += float(step.rewards.sum())
        left = len(evader_cells(base_env(env))[0])
        assert episode_metrics(env) == {"evaders_caught": float(30 - left)}
        runs.append((np.stack(actions), total))
    assert runs[0][0].shape == runs[1][0].shape
    assert (runs[0][0] == runs[1][0]).all() and runs[0][1] == runs[1][1]
    env.close()


@pytest.mark.parametrize("make", [make_expert, make_privileged])
def test_expert_at_32_catches_fast(make) -> None:
    result = evaluate("pursuit", 32, make, 1, seed=0, options=SHORT)
    assert result.metrics["evaders_caught"] == [30.0]
    assert result.mean > 300


@pytest.mark.parametrize("make", [make_expert, _view_pair])
def test_pair_reads_only_its_views_and_forms_at_a_corner(make) -> None:
    """At n = 2 the expert (patrolling with the view pair's rule) and the view pair act from the
    agents' views alone (no env handed in) and, from every start of a few seeds, the two meet on
    one corner's two open neighbours within 60 cycles."""
    env = make_env("pursuit", 2, max_cycles=80)
    pair = make(env)
    assert not pair.spec()["privileged"]
    slots = [{(0, 1), (1, 0)}, {(14, 0), (15, 1)}, {(15, 14), (14, 15)}, {(1, 15), (0, 14)}]
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        formed = False
        for _ in range(60):
            views = np.stack([obs[agent] for agent in env.possible_agents])
            actions = pair.choose(None, views, np.ones(2, dtype=bool))
            obs, *_ = env.step(dict(zip(env.possible_agents, actions.tolist(), strict=True)))
            cells = pursuer_cells(base_env(env))
            formed |= {(int(c) // 16, int(c) % 16) for c in cells} in slots
        assert formed, f"seed {seed}: the pair never held a corner"
