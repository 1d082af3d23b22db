"""Batched evaluation plays what one-at-a-time evaluation plays: the same seeds give the same
returns, lengths and env metrics, greedy or sampled, on pursuit's vectorised engine, on batches of
envs, and across worker processes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gymnasium import spaces

from algos.data import DataSpec
from algos.registry import build_algorithm
from benchmark.evaluate import (
    LearnedActors,
    RunPolicy,
    env_action_masks,
    evaluate_algorithm,
    evaluate_algorithm_sizes,
)
from datagen.envs import env_names, get_spec, make_env
from datagen.errors import UserError
from datagen.policies.evaluate import evaluate, evaluate_batched

#: (env, agents, options): short episodes; knights and archers can die within 150 cycles.
CASES = [
    ("prison", 3, {"max_cycles": 30}),
    ("pursuit", 3, {"max_cycles": 40}),
    ("waterworld", 2, {"max_cycles": 30}),
    ("knights_archers_zombies", 2, {"max_cycles": 150}),
]


def untrained(
    env_name: str, n_agents: int, options: dict, algo: str = "bc", **overrides: object
) -> object:
    """An algorithm with freshly initialised networks for the env's spaces (it acts, badly)."""
    env = make_env(env_name, n_agents, **options)
    agent = env.possible_agents[0]
    shape = env.observation_space(agent).shape
    n_actions = int(env.action_space(agent).n)
    env.close()
    features = (shape[-1],)
    spec = DataSpec(
        tuple(shape),
        "float32",
        n_actions,
        None,
        np.zeros(features, np.float32),
        np.ones(features, np.float32),
    )
    return build_algorithm(algo, spec, {"hidden_size": 16, **overrides}, seed=3)


@pytest.mark.parametrize(("env_name", "n_agents", "options"), CASES[:2], ids=["prison", "pursuit"])
def test_a_communicating_algorithm_acts_on_the_envs_positions(
    env_name: str, n_agents: int, options: dict
) -> None:
    """gawi hearing its 2 nearest of 3 agents needs every agent's position to act: both ways of
    evaluating pass the env's (pursuit's batch on the vectorised engine), and play the same."""
    algo = untrained(env_name, n_agents, options, "gawi", graph_neighbours=2)
    env = make_env(env_name, n_agents, **options)
    obs, infos = env.reset(seed=0)
    team = np.stack([obs[agent] for agent in env.possible_agents])
    with pytest.raises(UserError, match="2 nearest of 3 agents, which needs every agent's pos"):
        algo.act(team, np.ones(n_agents, bool))
    env.close()
    batched = evaluate_batched(
        env_name, n_agents, LearnedActors(algo, False, env_name), 3, seed=7, options=options
    )
    alone = evaluate(
        env_name, n_agents, lambda env: RunPolicy(algo, False), 3, seed=7, options=options
    )
    assert batched.returns == alone.returns and batched.lengths == alone.lengths
    evaluation, _ = evaluate_algorithm(algo, env_name, n_agents, 3, 7, options, greedy=False)
    assert evaluation.returns == alone.returns


@pytest.mark.parametrize("greedy", [True, False], ids=["greedy", "sampled"])
@pytest.mark.parametrize(("env_name", "n_agents", "options"), CASES, ids=[c[0] for c in CASES])
def test_batched_equals_one_at_a_time(
    env_name: str, n_agents: int, options: dict, greedy: bool
) -> None:
    algo = untrained(env_name, n_agents, options)
    batched = evaluate_batched(
        env_name, n_agents, LearnedActors(algo, greedy, env_name), 4, seed=7, options=options
    )
    alone = evaluate(
        env_name, n_agents, lambda env: RunPolicy(algo, greedy), 4, seed=7, options=options
    )
    assert batched.returns == alone.returns
    assert batched.lengths == alone.lengths
    assert batched.metrics == alone.metrics
    if env_name in ("pursuit", "waterworld"):  # not vacuous: the episodes differ
        assert len(set(batched.returns)) > 1


def test_vectorised_pursuit_batch_plays_pettingzoos_episodes() -> None:
    """The vectorised engine in a batch against PettingZoo's own env, one episode at a time."""
    options = {"max_cycles": 60}
    algo = untrained("pursuit", 4, options)
    batched = evaluate_batched("pursuit", 4, LearnedActors(algo, False, "pursuit"), 5, 1, options)
    pettingzoo = {**options, "implementation": "pettingzoo"}
    alone = evaluate("pursuit", 4, lambda env: RunPolicy(algo, False), 5, 1, options=pettingzoo)
    assert batched.returns == alone.returns and batched.metrics == alone.metrics


def test_worker_processes_give_the_same_episodes() -> None:
    options = {"max_cycles": 30}
    algo = untrained("knights_archers_zombies", 2, options)
    actors = LearnedActors(algo, False, "kaz")
    one = evaluate_batched("knights_archers_zombies", 2, actors, 5, 4, options, workers=1)
    two = evaluate_batched("knights_archers_zombies", 2, actors, 5, 4, options, workers=2)
    assert one.returns == two.returns and one.lengths == two.lengths


def test_one_model_at_every_team_size_in_one_call() -> None:
    options = {"max_cycles": 20}
    algo = untrained("pursuit", 2, options)
    results = evaluate_algorithm_sizes(algo, "pursuit", [2, 4, 8], 3, seed=0, options=options)
    assert sorted(results) == [2, 4, 8]
    for n, (evaluation, score) in results.items():
        assert evaluation.n_agents == n and len(evaluation.returns) == 3
        assert score is not None
    alone = evaluate("pursuit", 8, lambda env: RunPolicy(algo), 3, seed=0, options=options)
    assert results[8][0].returns == alone.returns


# ------------------------------------------------------------------------- action masks
@pytest.mark.parametrize("env_name", env_names())
def test_no_env_of_the_suite_has_action_masks(env_name: str) -> None:
    env = make_env(env_name, get_spec(env_name).n_min)
    try:
        env.reset(seed=0)
        assert env_action_masks(env) is None
        env.step({agent: 0 for agent in env.agents})
        assert env_action_masks(env) is None
    finally:
        env.close()


def test_masks_of_a_pettingzoo_parallel_env_reach_the_policy() -> None:
    """Tic-tac-toe as a PettingZoo parallel env: its masks are dict-observation entries."""
    from pettingzoo.classic import tictactoe_v3
    from pettingzoo.utils.conversions import turn_based_aec_to_parallel

    env = turn_based_aec_to_parallel(tictactoe_v3.env())
    env.reset(seed=0)
    assert env_action_masks(env).all()  # player_1 may play anywhere; player_2 waits
    obs, *_ = env.step({"player_1": 4, "player_2": 0})
    masks = env_action_masks(env)
    assert masks[1].tolist() == obs["player_2"]["action_mask"].astype(bool).tolist()
    assert masks[1].sum() == 8 and not masks[1, 4]  # the centre is taken
    assert masks[0].all()  # not player_1's turn: its mask allows nothing, so anything goes
    # An untrained policy that prefers the taken square still plays a legal one.
    spec = DataSpec((3,), "float32", 9, None, np.zeros(3, np.float32), np.ones(3, np.float32))
    algo = build_algorithm("bc", spec, {"hidden_size": 16}, seed=3)
    with torch.no_grad():
        algo.networks["policy"].head.bias.fill_(0.0)[4] = 100.0
    for greedy in (True, False):
        policy = RunPolicy(algo, greedy)
        policy.reset(env, np.random.default_rng(0))
        team = policy.act(env, np.zeros((2, 3), np.float32), np.ones(2, bool), None)
        assert team.actions[0] == 4 and team.actions[1] != 4
    # The batch path reads each slot's env the same way (a batch of envs keeps them in `envs`).
    slots = SimpleNamespace(
        envs=[env, env],
        possible_agents=env.possible_agents,
        observation_space=lambda agent: spaces.Box(0, 1, (3,)),
        action_space=env.action_space,
    )
    act = LearnedActors(algo, True, "tictactoe")(slots, [0, 1])
    positions = np.zeros((1, 2, 2), np.float32)
    actions = act(np.zeros((1, 2, 3), np.float32), np.ones((1, 2), bool), positions, np.array([1]))
    assert actions.tolist() == [[4, actions[0, 1]]] and actions[0, 1] != 4
