"""Tests of our own Prison env (datagen/envs/prison.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from datagen.envs.prison import (
    LEFT,
    NO_WALL,
    RIGHT,
    PrisonEnv,
    expected_max_episode_return,
    max_episode_return,
    optimal_actions,
    pixel_column,
)

LEFT_ACT, STAY, RIGHT_ACT = 0, 1, 2


def _all(env: PrisonEnv, action: int) -> dict[str, int]:
    return {agent: action for agent in env.agents}


def _random_actions(env: PrisonEnv, rng: np.random.Generator) -> dict[str, int]:
    return {
        agent: int(a)
        for agent, a in zip(env.agents, rng.integers(0, 3, len(env.agents)), strict=True)
    }


def _rollout(env: PrisonEnv, seed: int, action_seed: int) -> list:
    """Every output of one episode under uniformly random actions."""
    rng = np.random.default_rng(action_seed)
    obs, infos = env.reset(seed=seed)
    trace = [obs, infos, env.state()]
    while env.agents:
        out = env.step(_random_actions(env, rng))
        trace.extend([*out, env.state()])
    return trace


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------- API


@pytest.mark.parametrize("obs_type", ["vector", "image"])
@pytest.mark.parametrize("n", [1, 2, 8, 32])
def test_parallel_api(n: int, obs_type: str) -> None:
    env = PrisonEnv(n_prisoners=n, obs_type=obs_type)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(env, num_cycles=160)
    assert env.agents == []  # truncated after max_cycles = num_cycles steps


@pytest.mark.parametrize(
    "kwargs",
    [
        {"obs_type": "vector"},
        {"obs_type": "vector", "include_last_wall": True},
        {"obs_type": "image", "state_type": "image"},
        {"obs_type": "image", "include_last_wall": True, "random_aliens": True, "n_prisoners": 5},
        {"obs_type": "vector", "speed": 7, "cell_width": 20, "n_prisoners": 3},
    ],
)
def test_outputs_inside_declared_spaces(kwargs: dict) -> None:
    env = PrisonEnv(**{"n_prisoners": 4, "max_cycles": 120, **kwargs})
    rng = np.random.default_rng(0)
    obs, infos = env.reset(seed=1)
    assert infos == {agent: {} for agent in env.possible_agents}
    while True:
        for agent, o in obs.items():
            assert env.observation_space(agent).contains(o), (agent, o)
        state = env.state()
        assert env.state_space.contains(state)
        if not env.agents:
            break
        obs, rewards, terms, truncs, infos = env.step(_random_actions(env, rng))
        assert all(type(r) is float and r in (0.0, 1.0) for r in rewards.values())
        assert not any(terms.values())
        assert infos == {agent: {} for agent in rewards}
    assert env.cycle == 120


def test_spaces_are_stable_objects() -> None:
    env = PrisonEnv(n_prisoners=3)
    for agent in env.possible_agents:
        assert env.observation_space(agent) is env.observation_space(agent)
        assert env.action_space(agent) is env.action_space(agent)
        assert env.action_space(agent).n == 3
    assert env.observation_space("prisoner_0").shape == (1,)
    assert env.observation_space("prisoner_0").dtype == np.float32
    assert env.state_space.shape == (6,)
    image_env = PrisonEnv(n_prisoners=3, obs_type="image", state_type="image", image_size=(10, 30))
    assert image_env.observation_space("prisoner_2").shape == (10, 30, 3)
    assert image_env.observation_space("prisoner_2").dtype == np.uint8
    assert image_env.state_space.shape == (20, 60, 3)  # 2 floors x 2 columns of cells


def test_truncation_after_max_cycles() -> None:
    env = PrisonEnv(n_prisoners=2, max_cycles=5)
    env.reset(seed=0)
    for step in range(1, 6):
        _, _, terms, truncs, _ = env.step(_all(env, STAY))
        assert terms == {"prisoner_0": False, "prisoner_1": False}
        assert all(t == (step == 5) for t in truncs.values())
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
    env.reset()
    assert env.agents == ["prisoner_0", "prisoner_1"] and env.cycle == 0


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("obs_type", ["vector", "image"])
def test_same_seed_same_actions_bit_identical(obs_type: str) -> None:
    kwargs = {"n_prisoners": 8, "obs_type": obs_type, "max_cycles": 150, "random_aliens": True}
    first = _rollout(PrisonEnv(**kwargs), seed=7, action_seed=3)
    second = _rollout(PrisonEnv(**kwargs), seed=7, action_seed=3)
    assert len(first) == 3 + 6 * 150
    assert all(_same(a, b) for a, b in zip(first, second, strict=True))
    # The same env object reseeded reproduces the episode too.
    env = PrisonEnv(**kwargs)
    _rollout(env, seed=99, action_seed=0)
    third = _rollout(env, seed=7, action_seed=3)
    assert all(_same(a, b) for a, b in zip(first, third, strict=True))


def test_different_seed_different_episode() -> None:
    env = PrisonEnv(n_prisoners=8)
    first = _rollout(env, seed=7, action_seed=3)
    second = _rollout(env, seed=8, action_seed=3)
    assert not all(_same(a, b) for a, b in zip(first, second, strict=True))
    env.reset(seed=7)
    starts_7 = env.start_positions
    env.reset(seed=8)
    assert not np.array_equal(starts_7, env.start_positions)


def test_reset_without_seed_continues_the_generator() -> None:
    a, b = PrisonEnv(n_prisoners=8), PrisonEnv(n_prisoners=8)
    a.reset(seed=5)
    b.reset(seed=5)
    first = a.start_positions
    a.reset()
    b.reset()
    assert np.array_equal(a.start_positions, b.start_positions)
    assert not np.array_equal(a.start_positions, first)
    PrisonEnv(n_prisoners=8).reset()  # never seeded: a fresh generator


def test_synchronized_start() -> None:
    env = PrisonEnv(n_prisoners=8, synchronized_start=True, cell_width=45)
    for seed in (0, 1, 2):
        obs, _ = env.reset(seed=seed)
        assert np.array_equal(env.positions, np.full(8, 22))
        assert all(o[0] == np.float32(22 / 45) for o in obs.values())
    random_env = PrisonEnv(n_prisoners=8)
    random_env.reset(seed=0)
    assert len(set(random_env.positions.tolist())) > 1
    assert np.all((random_env.positions >= 1) & (random_env.positions <= 44))


# --------------------------------------------------------------------------- dynamics, reward


def test_moving_right_reaches_wall_after_computed_steps_and_scores_once() -> None:
    env = PrisonEnv(n_prisoners=1, cell_width=45, speed=1)
    obs, _ = env.reset(options={"start_positions": [40]})
    assert obs["prisoner_0"][0] == np.float32(40 / 45)
    for step in range(1, 6):  # 5 steps of distance 1 to reach x = 45
        obs, rewards, *_ = env.step({"prisoner_0": RIGHT_ACT})
        assert env.positions[0] == 40 + step
        assert rewards["prisoner_0"] == (1.0 if step == 5 else 0.0)
    assert obs["prisoner_0"][0] == 1.0
    assert env.last_wall[0] == RIGHT
    for _ in range(3):  # pushing against, or resting at, the same wall scores nothing
        _, rewards, *_ = env.step({"prisoner_0": RIGHT_ACT})
        assert rewards["prisoner_0"] == 0.0
        _, rewards, *_ = env.step({"prisoner_0": STAY})
        assert rewards["prisoner_0"] == 0.0
    assert env.positions[0] == 45


def test_speed_clips_at_the_wall() -> None:
    env = PrisonEnv(n_prisoners=2, cell_width=45, speed=4)
    env.reset(options={"start_positions": [40, 3]})
    _, rewards, *_ = env.step({"prisoner_0": RIGHT_ACT, "prisoner_1": LEFT_ACT})
    assert env.positions.tolist() == [44, 0]  # 3 - 4 clipped to the left wall
    assert rewards == {"prisoner_0": 0.0, "prisoner_1": 1.0}
    _, rewards, *_ = env.step({"prisoner_0": RIGHT_ACT, "prisoner_1": STAY})
    assert env.positions.tolist() == [45, 0]  # ceil(5 / 4) = 2 steps
    assert rewards == {"prisoner_0": 1.0, "prisoner_1": 0.0}
    assert env.last_wall.tolist() == [RIGHT, LEFT]


def test_returning_to_the_last_wall_scores_nothing_opposite_wall_scores() -> None:
    env = PrisonEnv(n_prisoners=1, cell_width=4, speed=1, max_cycles=50)
    env.reset(options={"start_positions": [1]})
    script = [LEFT_ACT, RIGHT_ACT, LEFT_ACT] + [RIGHT_ACT] * 4 + [LEFT_ACT] * 4
    expected = [1.0, 0.0, 0.0] + [0.0, 0.0, 0.0, 1.0] + [0.0, 0.0, 0.0, 1.0]
    got = [env.step({"prisoner_0": a})[1]["prisoner_0"] for a in script]
    assert got == expected


def test_staying_scores_zero() -> None:
    env = PrisonEnv(n_prisoners=8)
    env.reset(seed=3)
    starts = env.positions
    total = 0.0
    while env.agents:
        total += sum(env.step(_all(env, STAY))[1].values())
    assert total == 0.0
    assert np.array_equal(env.positions, starts)


def test_max_episode_return_hand_values() -> None:
    # W = 45, s = 1, T = 150: crossing c = 45.
    assert max_episode_return(22).item() == 1 + (150 - 22) // 45 == 3
    assert max_episode_return(1).item() == 1 + 149 // 45 == 4
    assert max_episode_return(44).item() == 4
    assert max_episode_return([22], max_cycles=21).tolist() == [0]
    assert max_episode_return([22], max_cycles=22).tolist() == [1]
    assert max_episode_return([22], max_cycles=67).tolist() == [2]
    # W = 10, s = 3: t_first = min(ceil(4/3), ceil(6/3)) = 2, c = ceil(10/3) = 4.
    assert max_episode_return(4, cell_width=10, speed=3, max_cycles=10).item() == 3
    assert expected_max_episode_return(synchronized_start=True) == 3.0
    with pytest.raises(ValueError, match="start_positions must be in 1..44"):
        max_episode_return([0, 5])


@pytest.mark.parametrize(
    ("cell_width", "speed", "max_cycles", "synchronized"),
    [
        (45, 1, 150, False),
        (45, 1, 150, True),
        (20, 3, 57, False),
        (7, 7, 30, False),
        (50, 4, 9, False),
    ],
)
def test_bouncing_policy_achieves_the_derived_maximum(
    cell_width: int, speed: int, max_cycles: int, synchronized: bool
) -> None:
    env = PrisonEnv(
        n_prisoners=32,
        cell_width=cell_width,
        speed=speed,
        max_cycles=max_cycles,
        synchronized_start=synchronized,
    )
    for seed in range(3):
        env.reset(seed=seed)
        best = env.max_episode_returns()
        returns = np.zeros(32)
        while env.agents:
            acts = optimal_actions(env.positions, env.last_wall, cell_width)
            _, rewards, *_ = env.step(dict(zip(env.agents, acts.tolist(), strict=True)))
            returns += np.array([rewards[a] for a in env.possible_agents])
        assert np.array_equal(returns, best)


def test_every_start_position_bounce_matches_formula_and_random_never_beats_it() -> None:
    width = 13
    starts = np.arange(1, width)
    env = PrisonEnv(n_prisoners=len(starts), cell_width=width, speed=2, max_cycles=40)
    env.reset(options={"start_positions": starts})
    returns = np.zeros(len(starts))
    while env.agents:
        acts = optimal_actions(env.positions, env.last_wall, width)
        _, rewards, *_ = env.step(dict(zip(env.agents, acts.tolist(), strict=True)))
        returns += [rewards[a] for a in env.possible_agents]
    best = max_episode_return(starts, width, 2, 40)
    assert np.array_equal(returns, best)
    rng = np.random.default_rng(0)
    for _ in range(20):
        env.reset(options={"start_positions": starts})
        random_returns = np.zeros(len(starts))
        while env.agents:
            _, rewards, *_ = env.step(_random_actions(env, rng))
            random_returns += [rewards[a] for a in env.possible_agents]
        assert np.all(random_returns <= best)


def test_random_policy_team_return_is_far_below_maximum() -> None:
    env = PrisonEnv(n_prisoners=8)
    rng = np.random.default_rng(0)
    totals = []
    for seed in range(20):
        env.reset(seed=seed)
        total = 0.0
        while env.agents:
            total += sum(env.step(_random_actions(env, rng))[1].values())
        totals.append(total)
    assert 1.0 < np.mean(totals) < 5.0  # about 2.7; the team maximum is about 29
    assert 8 * expected_max_episode_return() > 29


# --------------------------------------------------------------------------- observations, images


def test_include_last_wall_vector_observation() -> None:
    env = PrisonEnv(n_prisoners=2, cell_width=4, include_last_wall=True)
    obs, _ = env.reset(options={"start_positions": [1, 3]})
    assert env.observation_space("prisoner_0").shape == (2,)
    assert obs["prisoner_0"].tolist() == [0.25, NO_WALL]
    obs, *_ = env.step({"prisoner_0": LEFT_ACT, "prisoner_1": RIGHT_ACT})
    assert obs["prisoner_0"].tolist() == [0.0, LEFT]
    assert obs["prisoner_1"].tolist() == [1.0, RIGHT]
    obs, *_ = env.step({"prisoner_0": RIGHT_ACT, "prisoner_1": STAY})
    assert obs["prisoner_0"].tolist() == [0.25, LEFT]
    assert env.state().tolist() == [0.25, 1.0, LEFT, RIGHT]


def _figure_columns(image: np.ndarray, colour: np.ndarray, row: int) -> list[int]:
    return np.flatnonzero(np.all(image[row] == colour, axis=-1)).tolist()


def test_image_observation_shows_prisoner_at_the_right_column() -> None:
    env = PrisonEnv(n_prisoners=2, obs_type="image", identical_aliens=True)  # W=45, 16x48 image
    obs, _ = env.reset(options={"start_positions": [10, 44]})
    img = obs["prisoner_0"]
    assert img.shape == (16, 48, 3) and img.dtype == np.uint8
    colour = img[14, 11]
    assert _figure_columns(img, colour, 14) == [11]  # body row: column x + 1
    assert _figure_columns(img, colour, 4) == [10, 11, 12]  # head row H // 4
    assert _figure_columns(obs["prisoner_1"], colour, 14) == [45]
    for _ in range(3):
        obs, *_ = env.step({"prisoner_0": RIGHT_ACT, "prisoner_1": RIGHT_ACT})
    assert _figure_columns(obs["prisoner_0"], colour, 14) == [14]
    right = obs["prisoner_1"]  # at the wall x = 45 -> column 46, head clipped off the wall
    assert _figure_columns(right, colour, 14) == [46]
    assert _figure_columns(right, colour, 4) == [45, 46]
    assert np.all(right[:, 47] == right[0, 0])  # the wall column is untouched


def test_pixel_column_mapping_non_identity() -> None:
    # cell_width 90 onto 45 interior columns: column 1 + round_half_up(x / 2).
    xs = np.arange(91)
    assert np.array_equal(pixel_column(xs, 90, 48), 1 + (xs + 1) // 2)
    env = PrisonEnv(n_prisoners=1, obs_type="image", cell_width=90)
    obs, _ = env.reset(options={"start_positions": [31]})
    img = obs["prisoner_0"]
    assert _figure_columns(img, img[14, 17], 14) == [17]


def test_image_last_wall_highlight_and_colours() -> None:
    env = PrisonEnv(n_prisoners=2, obs_type="image", cell_width=4, include_last_wall=True)
    obs, _ = env.reset(options={"start_positions": [1, 1]})
    wall = obs["prisoner_0"][0, 0].copy()
    col = pixel_column(1, 4, 48).item()
    assert col == 12
    colours = obs["prisoner_0"][5, col], obs["prisoner_1"][5, col]
    assert not np.array_equal(*colours)  # distinct default colours
    assert not np.array_equal(colours[0], obs["prisoner_0"][5, col + 2])  # not background
    obs, *_ = env.step({"prisoner_0": LEFT_ACT, "prisoner_1": STAY})
    assert not np.array_equal(obs["prisoner_0"][0, 0], wall)  # left wall highlighted
    assert np.array_equal(obs["prisoner_0"][0, 47], wall)
    assert np.array_equal(obs["prisoner_1"][0, 0], wall)
    same = PrisonEnv(n_prisoners=2, obs_type="image", identical_aliens=True, random_aliens=True)
    obs, _ = same.reset(seed=0, options={"start_positions": [5, 5]})
    assert np.array_equal(obs["prisoner_0"], obs["prisoner_1"])


@pytest.mark.parametrize("n", [1, 5, 8])
def test_render_and_image_state_tile_the_cells(n: int) -> None:
    env = PrisonEnv(n_prisoners=n, obs_type="image", state_type="image", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    floors = (n + 1) // 2
    assert frame.shape == (floors * 16, 96, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame, env.state())
    for i, agent in enumerate(env.possible_agents):
        row, col = (i // 2) * 16, (i % 2) * 48
        assert np.array_equal(frame[row : row + 16, col : col + 48], obs[agent])
    if n % 2:
        empty = frame[-16:, 48:]
        assert len(np.unique(empty.reshape(-1, 3), axis=0)) == 2  # background and walls only
    no_render = PrisonEnv(n_prisoners=1)
    no_render.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert no_render.render() is None
    env.close()


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_prisoners": 0}, r"n_prisoners must be an integer >= 1, got 0"),
        ({"n_prisoners": 2.0}, r"n_prisoners must be an integer >= 1, got 2.0"),
        ({"obs_type": "rgb"}, r"obs_type must be one of 'vector', 'image', got 'rgb'"),
        ({"state_type": "pixels"}, r"state_type must be one of 'vector', 'image', got 'pixels'"),
        ({"render_mode": "human"}, r"render_mode must be one of None, 'rgb_array', got 'human'"),
        ({"cell_width": 1}, r"cell_width must be an integer >= 2, got 1"),
        ({"speed": 0}, r"speed must be an integer >= 1, got 0"),
        ({"speed": True}, r"speed must be an integer >= 1, got True"),
        ({"max_cycles": 0}, r"max_cycles must be an integer >= 1, got 0"),
        ({"image_size": (2, 48)}, r"image_size must be a \(height, width\) pair.*got \(2, 48\)"),
        ({"image_size": 16}, r"image_size must be a \(height, width\) pair.*got 16"),
        ({"synchronized_start": "yes"}, r"synchronized_start must be True or False, got 'yes'"),
        ({"include_last_wall": 1}, r"include_last_wall must be True or False, got 1"),
        ({"random_aliens": None}, r"random_aliens must be True or False, got None"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PrisonEnv(**kwargs)


def test_bad_step_and_reset_inputs_raise() -> None:
    env = PrisonEnv(n_prisoners=2, cell_width=10)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must be 0 \(left\), 1 \(stay\) or 2 .*\[3\]"):
        env.step({"prisoner_0": 3, "prisoner_1": 1})
    with pytest.raises(ValueError, match=r"missing \['prisoner_1'\], unknown \[\]"):
        env.step({"prisoner_0": 1})
    with pytest.raises(ValueError, match=r"unknown \['prisoner_7'\]"):
        env.step({"prisoner_0": 1, "prisoner_1": 1, "prisoner_7": 1})
    with pytest.raises(ValueError, match=r"start_positions must be 2 integers in 1..9"):
        env.reset(options={"start_positions": [0, 5]})
    with pytest.raises(ValueError, match=r"start_positions must be 2 integers in 1..9"):
        env.reset(options={"start_positions": [5]})
    env.reset(options={"unrelated": 1})  # other option keys are ignored
    env.step({"prisoner_0": np.int64(2), "prisoner_1": np.array(0)})  # numpy actions accepted
