"""The vectorised pursuit (datagen/envs/pursuit.py) against PettingZoo's `sisl/pursuit-v5`.

Both envs get the same seed and the same actions (chosen on PettingZoo's side, since the expert
reads PettingZoo's internals) and must agree bit for bit, step by step: observations (dtype,
shape and bytes), rewards (float64 bits), terminations, truncations, the live agents and
`state()`. The short versions run in `make test`; the 22-episode full-length version is `slow`.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pettingzoo
import pytest
from pettingzoo.sisl.pursuit.pursuit_base import Pursuit
from pettingzoo.test import parallel_api_test

from datagen.envs.pursuit import PursuitEnv, VectorPursuit, building_map
from datagen.policies.pursuit import make_expert

PETTINGZOO_ID = "sisl/pursuit-v5"


def pettingzoo_pursuit(**kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pettingzoo.make("parallel", PETTINGZOO_ID, **kwargs)


def same_array(ours: np.ndarray, theirs: np.ndarray) -> bool:
    theirs = np.asarray(theirs)
    return (
        ours.dtype == theirs.dtype
        and ours.shape == theirs.shape
        and ours.tobytes() == np.ascontiguousarray(theirs).tobytes()
    )


def same_float(ours: float, theirs: float) -> bool:
    return np.float64(ours).tobytes() == np.float64(theirs).tobytes()


@dataclass(frozen=True)
class Played:
    """What one compared episode did (so a test can check it exercised what it claims)."""

    n_steps: int
    team_return: float
    terminated: bool
    truncated: bool


def assert_same_step(ours: tuple, theirs: tuple, where: str) -> None:
    names = ("observations", "rewards", "terminations", "truncations", "infos")
    for name, mine, reference in zip(names, ours, theirs, strict=True):
        assert set(mine) == set(reference), f"{where}: {name} keys differ"
    obs, rewards, terminations, truncations, _ = ours
    ref_obs, ref_rewards, ref_terminations, ref_truncations, _ = theirs
    for agent in ref_obs:
        assert same_array(obs[agent], ref_obs[agent]), f"{where}: observation of {agent}"
        assert same_float(rewards[agent], ref_rewards[agent]), (
            f"{where}: reward of {agent}: {rewards[agent]!r} != {ref_rewards[agent]!r}"
        )
        assert terminations[agent] == ref_terminations[agent], f"{where}: termination of {agent}"
        assert truncations[agent] == ref_truncations[agent], f"{where}: truncation of {agent}"


def play_both(
    ours: PursuitEnv,
    theirs: Any,
    seed: int | None,
    policy: str,
    rng: np.random.Generator,
) -> Played:
    """One episode on both envs, compared after reset and after every step.

    Args:
        seed: the reset seed; None continues both envs' streams.
        policy: "random" (actions from `rng`) or "expert" (`make_expert`, on PettingZoo's env).
    """
    obs, _ = ours.reset(seed=seed)
    ref_obs, _ = theirs.reset(seed=seed)
    assert ours.agents == theirs.agents
    assert set(obs) == set(ref_obs)
    for agent in ref_obs:
        assert same_array(obs[agent], ref_obs[agent]), f"reset: observation of {agent}"
    assert same_array(ours.state(), theirs.state()), "reset: state"
    expert = make_expert(theirs) if policy == "expert" else None
    if expert is not None:
        expert.reset(theirs, rng)
    n_steps, team_return, last = 0, 0.0, None
    while theirs.agents:
        if expert is None:
            actions = {agent: int(rng.integers(5)) for agent in theirs.agents}
        else:
            views = np.stack([ref_obs[agent] for agent in theirs.possible_agents])
            alive = np.ones(len(theirs.possible_agents), dtype=bool)
            chosen = expert.act(theirs, views, alive, rng).actions
            actions = dict(zip(theirs.possible_agents, chosen.tolist(), strict=True))
        reference = theirs.step(actions)
        result = ours.step(actions)
        where = f"seed {seed}, step {n_steps}"
        assert_same_step(result, reference, where)
        assert ours.agents == list(theirs.agents), f"{where}: live agents"
        assert same_array(ours.state(), theirs.state()), f"{where}: state"
        ref_obs, last = reference[0], reference
        team_return += sum(reference[1].values())
        n_steps += 1
    return Played(n_steps, team_return, any(last[2].values()), any(last[3].values()))


def compare_episodes(
    n_agents: int, seeds: list[int | None], policy: str, **options: Any
) -> list[Played]:
    kwargs = {"n_pursuers": n_agents, **options}
    ours, theirs = PursuitEnv(**kwargs), pettingzoo_pursuit(**kwargs)
    rng = np.random.default_rng(12345)
    try:
        return [play_both(ours, theirs, seed, policy, rng) for seed in seeds]
    finally:
        theirs.close()


# --------------------------------------------------------------------------- short versions


@pytest.mark.parametrize("n_agents", [2, 8, 16])
def test_random_episodes_match_pettingzoo(n_agents: int) -> None:
    # The second episode resets without a seed: both envs continue their generators' streams.
    played = compare_episodes(n_agents, [n_agents, None], "random", max_cycles=40)
    assert [p.n_steps for p in played] == [40, 40]
    assert all(p.truncated and not p.terminated for p in played)


@pytest.mark.parametrize("n_agents", [2, 8, 16])
def test_expert_episodes_match_pettingzoo(n_agents: int) -> None:
    (played,) = compare_episodes(n_agents, [100 + n_agents], "expert", max_cycles=40)
    assert played.n_steps == 40
    if n_agents > 2:
        assert played.team_return > 0  # catches happened: the catch reward was compared too


def test_expert_episode_to_the_last_evader_matches_pettingzoo() -> None:
    (played,) = compare_episodes(8, [7], "expert", n_evaders=6)
    assert played.terminated and not played.truncated
    assert played.n_steps < 500


def test_full_length_random_episode_matches_pettingzoo() -> None:
    (played,) = compare_episodes(8, [2026], "random")
    assert played.n_steps == 500 and played.truncated


@pytest.mark.parametrize(
    ("n_agents", "options"),
    [
        (8, {"shared_reward": False}),
        (8, {"surround": False, "n_catch": 1}),
        (16, {"surround": False, "n_catch": 2, "shared_reward": False}),
        (8, {"freeze_evaders": True}),
        (8, {"obs_range": 5}),
        (4, {"obs_range": 6}),
        (4, {"x_size": 20, "y_size": 12, "constraint_window": 0.8, "n_evaders": 12}),
        # PettingZoo's constructor resets from an unseeded generator and redraws forever when
        # the spawn window has no room left: every window of 0.75 keeps 81 open cells on the
        # 16 x 16 map, more than 8 agents can close (5 cells each). At 0.5 some keep only 8.
        (
            6,
            {
                "constraint_window": 0.75,
                "n_evaders": 8,
                "tag_reward": 0.1,
                "catch_reward": 3,
                "urgency_reward": -0.05,
            },
        ),
        (1, {}),
    ],
)
def test_options_match_pettingzoo(n_agents: int, options: dict[str, Any]) -> None:
    compare_episodes(n_agents, [n_agents + 3], "random", max_cycles=30, **options)


def test_options_with_expert_match_pettingzoo() -> None:
    # Without `surround`, extras of a group stand on the evader's cell: catches by n_catch.
    (played,) = compare_episodes(
        12, [5], "expert", surround=False, n_catch=1, shared_reward=False, max_cycles=60
    )
    assert played.team_return > 0


# --------------------------------------------------------------------------- the batch


def test_batch_equals_separate_single_envs() -> None:
    options = {"n_pursuers": 6, "n_evaders": 2, "surround": False, "n_catch": 1}
    seeds = [3, 11, 29, 40]
    batch = VectorPursuit(len(seeds), max_cycles=200, **options)
    singles = [PursuitEnv(max_cycles=200, **options) for _ in seeds]
    obs = batch.reset(seeds)
    for b, (env, seed) in enumerate(zip(singles, seeds, strict=True)):
        single_obs, _ = env.reset(seed=seed)
        assert same_array(obs[b], np.stack(list(single_obs.values())))
    rng = np.random.default_rng(0)
    lengths = [None] * len(seeds)
    final_obs: dict[int, np.ndarray] = {}
    for t in range(200):
        actions = rng.integers(5, size=(len(seeds), 6))
        obs, rewards, terminated, truncated = batch.step(actions)
        for b, env in enumerate(singles):
            if lengths[b] is not None:  # ended: nothing changes any more
                assert same_array(obs[b], final_obs[b])
                assert (rewards[b] == 0).all()
                assert terminated[b].all() or truncated[b].all()
                continue
            single = env.step(dict(zip(env.possible_agents, actions[b].tolist(), strict=True)))
            assert same_array(obs[b], np.stack(list(single[0].values())))
            assert rewards[b].tolist() == list(single[1].values())
            assert terminated[b].tolist() == list(single[2].values())
            assert truncated[b].tolist() == list(single[3].values())
            assert same_array(batch.state()[b], env.state())
            if not env.agents:
                lengths[b], final_obs[b] = t + 1, obs[b].copy()
        assert batch.done.tolist() == [length is not None for length in lengths]
        if batch.done.all():
            break
    # Episodes ended at different cycles, so the frozen episodes were really exercised.
    assert None not in lengths and len(set(lengths)) > 1, lengths


# --------------------------------------------------------------------------- API


def test_parallel_api() -> None:
    parallel_api_test(PursuitEnv(n_pursuers=3, max_cycles=50), num_cycles=60)


def test_constructor_spaces_and_metadata_match_pettingzoo() -> None:
    ours_signature = inspect.signature(PursuitEnv).parameters
    theirs_signature = dict(inspect.signature(Pursuit).parameters)
    assert list(ours_signature) == list(theirs_signature)
    for name, parameter in theirs_signature.items():
        assert ours_signature[name].default == parameter.default, name
    kwargs = {"n_pursuers": 5, "x_size": 20, "y_size": 12, "obs_range": 9, "n_evaders": 40}
    ours, theirs = PursuitEnv(**kwargs), pettingzoo_pursuit(**kwargs)
    assert ours.possible_agents == theirs.possible_agents
    for agent in theirs.possible_agents:
        assert ours.observation_space(agent) == theirs.observation_space(agent)
        assert ours.action_space(agent) == theirs.action_space(agent)
    assert ours.state_space == theirs.state_space
    assert ours.metadata["name"] == theirs.metadata["name"] == "pursuit_v5"
    assert ours.metadata["is_parallelizable"]
    map_matrix = theirs.unwrapped.env.map_matrix
    assert same_array(building_map(20, 12), map_matrix)


def test_bad_arguments_and_actions_are_refused() -> None:
    with pytest.raises(ValueError, match="evader_controller"):
        PursuitEnv(evader_controller=object())
    with pytest.raises(ValueError, match="n_evaders must be an integer >= 1"):
        PursuitEnv(n_evaders=0)
    with pytest.raises(ValueError, match="render_mode"):
        PursuitEnv(render_mode="human")
    # PettingZoo loops forever here: 30 evaders cannot be spread over an 8x6 window.
    with pytest.raises(ValueError, match="no free cell left in the spawn window"):
        PursuitEnv(x_size=16, y_size=12, constraint_window=0.5).reset(seed=0)
    env = PursuitEnv(n_pursuers=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be in 0..4"):
        env.step({"pursuer_0": 5, "pursuer_1": 0})
    with pytest.raises(ValueError, match="actions must be integers"):
        env.step({"pursuer_0": 1.0, "pursuer_1": 0})
    batch = VectorPursuit(2, n_pursuers=2)
    with pytest.raises(RuntimeError, match="before reset"):
        batch.step(np.zeros((2, 2), dtype=np.int64))
    batch.reset([0, 1])
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        batch.step(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="expected 2 seeds"):
        batch.reset([0])


def test_render_draws_the_grid() -> None:
    env = PursuitEnv(n_pursuers=2, render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (16 * 30, 16 * 30, 3) and image.dtype == np.uint8
    (positions,) = env.engine.pursuer_positions()
    x, y = positions[0]
    assert image[y * 30 + 15, x * 30 + 15].tolist() == [255, 0, 0]
    assert image[8 * 30 + 15, 8 * 30 + 15].tolist() == [255, 255, 255]  # the building
    assert PursuitEnv(n_pursuers=2).render() is None


# --------------------------------------------------------------------------- long version


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_agents", "policy", "seeds"),
    [
        (2, "random", [1000, 1001, 1002, 1003]),
        (8, "random", [1000, 1001, 1002, 1003]),
        (16, "random", [1000, 1001]),
        (2, "expert", [1000, 1001, 1002, 1003]),
        (8, "expert", [1000, 1001, 1002, 1003]),
        (16, "expert", [1000, 1001, 1002, 1003]),
    ],
)
def test_full_length_episodes_match_pettingzoo(
    n_agents: int, policy: str, seeds: list[int]
) -> None:
    played = compare_episodes(n_agents, seeds, policy)
    assert len(played) == len(seeds)
    if policy == "expert" and n_agents > 2:
        assert all(p.terminated for p in played)  # the expert catches every evader
    else:
        assert all(p.n_steps == 500 for p in played)
