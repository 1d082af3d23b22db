"""Tests for our Waterworld ParallelEnv: API conformance, determinism and hand-checked physics."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from datagen.envs.waterworld import NO_THRUST_ACTION, WaterworldEnv

F = 8  # features per sensor with speed_features=True
OBSTACLE, BARRIER, FOOD, FOOD_SPEED, POISON, POISON_SPEED, PURSUER, PURSUER_SPEED = range(F)


def _clear_arena(env: WaterworldEnv, pursuer_xy: list[tuple[float, float]] | None = None) -> None:
    """Put every object at a known, quiet spot after reset.

    Obstacles go to the top-right corner, food and poison sit motionless along the top edge
    (out of contact and sensor range of pursuers in the lower half), pursuers stand still at
    ``pursuer_xy`` (default: spread along y = 0.2).
    """
    n = env.n_pursuers
    if pursuer_xy is None:
        pursuer_xy = [(0.1 + 0.8 * i / max(n, 1), 0.2) for i in range(n)]
    env._pursuer_pos = np.array(pursuer_xy, dtype=np.float64)
    env._pursuer_vel = np.zeros((n, 2))
    env._obstacle_pos = np.tile([0.85, 0.85], (env.n_obstacles, 1))
    env._food_pos = np.stack(
        [np.linspace(0.05, 0.45, env.n_evaders), np.full(env.n_evaders, 0.95)], axis=1
    )
    env._food_vel = np.zeros((env.n_evaders, 2))
    env._poison_pos = np.stack(
        [np.linspace(0.05, 0.45, env.n_poisons), np.full(env.n_poisons, 0.88)], axis=1
    )
    env._poison_vel = np.zeros((env.n_poisons, 2))


def _idle(env: WaterworldEnv) -> dict[str, int]:
    return dict.fromkeys(env.agents, NO_THRUST_ACTION)


# ---------------------------------------------------------------------------- API


@pytest.mark.parametrize("n", [1, 2, 8, 32])
def test_parallel_api(n: int) -> None:
    env = WaterworldEnv(n_pursuers=n)
    parallel_api_test(env, num_cycles=40)


def test_constructor_options_all_have_defaults() -> None:
    # make_env validates options against the signature, so every option needs a default.
    params = list(inspect.signature(WaterworldEnv.__init__).parameters.values())[1:]
    assert all(p.default is not inspect.Parameter.empty for p in params)
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)


@pytest.mark.parametrize(("speed_features", "dim"), [(True, 242), (False, 152)])
def test_observations_and_state_inside_spaces(speed_features: bool, dim: int) -> None:
    env = WaterworldEnv(n_pursuers=8, speed_features=speed_features, max_cycles=150)
    obs, infos = env.reset(seed=3)
    assert infos == {a: {} for a in env.possible_agents}
    assert env.state_space.shape == (4 * (8 + 5 + 10) + 2,)
    rng = np.random.default_rng(0)
    while True:
        for agent, o in obs.items():
            space = env.observation_space(agent)
            assert space.shape == (dim,)
            assert o.dtype == np.float32
            assert space.contains(o), agent
        state = env.state()
        assert state.dtype == np.float32
        assert env.state_space.contains(state)
        if not env.agents:
            break
        obs, rewards, terms, truncs, _ = env.step({a: int(rng.integers(9)) for a in env.agents})
        assert all(isinstance(r, float) for r in rewards.values())
        assert not any(terms.values())


def test_truncation_at_max_cycles_and_step_after_end_raises() -> None:
    env = WaterworldEnv(n_pursuers=2, max_cycles=5)
    env.reset(seed=0)
    for t in range(5):
        _, _, terms, truncs, _ = env.step(_idle(env))
        assert not any(terms.values())
        assert all(truncs.values()) == (t == 4)
    assert env.agents == []
    with pytest.raises(RuntimeError, match="no live agents"):
        env.step({})


@pytest.mark.parametrize("n", [1, 4])
def test_zero_counts_of_items_work(n: int) -> None:
    env = WaterworldEnv(n_pursuers=n, n_evaders=0, n_poisons=0, n_obstacles=0, max_cycles=20)
    obs, _ = env.reset(seed=1)
    while env.agents:
        obs, *_ = env.step({a: 0 for a in env.agents})
    o = obs["pursuer_0"].reshape(-1)[:-2].reshape(30, F)
    assert np.all(o[:, [OBSTACLE, FOOD, POISON]] == 1.0)
    assert env.state().shape == (4 * n,)


def test_render_rgb_array() -> None:
    env = WaterworldEnv(n_pursuers=3, render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img is not None
    assert img.shape == (256, 256, 3)
    assert img.dtype == np.uint8
    assert len(np.unique(img.reshape(-1, 3), axis=0)) >= 4  # background + several colours
    assert WaterworldEnv(n_pursuers=1).render() is None


# ---------------------------------------------------------------------------- determinism


def _rollout(env_seed: int, steps: int = 200) -> list[tuple]:
    env = WaterworldEnv(n_pursuers=4, max_cycles=steps)
    obs, _ = env.reset(seed=env_seed)
    action_rng = np.random.default_rng(1234)
    trace = [(np.stack(list(obs.values())),)]
    for _ in range(steps):
        actions = {a: int(action_rng.integers(9)) for a in env.agents}
        obs, rew, term, trunc, _ = env.step(actions)
        trace.append((np.stack(list(obs.values())), rew, term, trunc, env.state()))
    return trace


def test_same_seed_same_actions_is_bit_identical() -> None:
    a, b = _rollout(7), _rollout(7)
    assert len(a) == len(b) == 201
    for step_a, step_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(step_a[0], step_b[0])
        assert step_a[1:4] == step_b[1:4]
        if len(step_a) > 4:
            np.testing.assert_array_equal(step_a[4], step_b[4])


def test_different_seed_differs() -> None:
    a, b = _rollout(7, steps=20), _rollout(8, steps=20)
    assert not np.array_equal(a[0][0], b[0][0])
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a[1:], b[1:], strict=True))


def test_reset_without_seed_continues_generator() -> None:
    env1, env2 = WaterworldEnv(), WaterworldEnv()
    first, _ = env1.reset(seed=5)
    env2.reset(seed=5)
    again1, _ = env1.reset()
    again2, _ = env2.reset()
    np.testing.assert_array_equal(again1["pursuer_0"], again2["pursuer_0"])
    assert not np.array_equal(first["pursuer_0"], again1["pursuer_0"])


# ---------------------------------------------------------------------------- rewards


def test_single_pursuer_catches_food_with_n_coop_1() -> None:
    env = WaterworldEnv(n_pursuers=2, n_coop=1)
    env.reset(seed=0)
    _clear_arena(env, [(0.2, 0.2), (0.6, 0.2)])
    env._food_pos[0] = [0.2, 0.2]
    obs, rewards, *_ = env.step(_idle(env))
    assert rewards == {"pursuer_0": 10.0, "pursuer_1": 0.0}
    assert obs["pursuer_0"][-2] == 1.0 and obs["pursuer_0"][-1] == 0.0
    assert obs["pursuer_1"][-2] == 0.0
    # A caught item respawns away from every pursuer.
    assert not np.allclose(env._food_pos[0], [0.2, 0.2])
    d = np.linalg.norm(env._pursuer_pos - env._food_pos[0], axis=1)
    assert np.all(d > env.pursuer_radius + env.evader_radius)


def test_n_coop_2_single_toucher_gets_encounter_reward_only() -> None:
    env = WaterworldEnv(n_pursuers=2, n_coop=2)
    env.reset(seed=0)
    _clear_arena(env, [(0.2, 0.2), (0.6, 0.2)])
    env._food_pos[0] = [0.21, 0.2]
    obs, rewards, *_ = env.step(_idle(env))
    assert rewards == {"pursuer_0": 0.01, "pursuer_1": 0.0}
    assert obs["pursuer_0"][-2] == 1.0
    np.testing.assert_array_equal(env._food_pos[0], [0.21, 0.2])  # not caught: stays put


def test_n_coop_2_two_touchers_catch_and_both_rewarded() -> None:
    env = WaterworldEnv(n_pursuers=3, n_coop=2)
    env.reset(seed=0)
    _clear_arena(env, [(0.19, 0.2), (0.22, 0.2), (0.7, 0.2)])
    env._food_pos[0] = [0.2, 0.2]
    _, rewards, *_ = env.step(_idle(env))
    assert rewards == {"pursuer_0": 10.0, "pursuer_1": 10.0, "pursuer_2": 0.0}


def test_poison_touch_costs_one_and_respawns() -> None:
    env = WaterworldEnv(n_pursuers=2)
    env.reset(seed=0)
    _clear_arena(env, [(0.3, 0.3), (0.7, 0.3)])
    env._poison_pos[0] = [0.7, 0.31]
    obs, rewards, *_ = env.step(_idle(env))
    assert rewards == {"pursuer_0": 0.0, "pursuer_1": -1.0}
    assert obs["pursuer_1"][-1] == 1.0 and obs["pursuer_1"][-2] == 0.0
    assert not np.allclose(env._poison_pos[0], [0.7, 0.31])


@pytest.mark.parametrize("action", range(9))
def test_thrust_penalty(action: int) -> None:
    env = WaterworldEnv(n_pursuers=1, thrust=0.02, thrust_penalty=-0.5)
    env.reset(seed=0)
    _clear_arena(env, [(0.5, 0.4)])
    _, rewards, *_ = env.step({"pursuer_0": action})
    expected = 0.0 if action == NO_THRUST_ACTION else -0.5 * 0.02
    assert rewards["pursuer_0"] == pytest.approx(expected, abs=1e-12)


def test_local_ratio_zero_shares_team_mean() -> None:
    env = WaterworldEnv(n_pursuers=4, local_ratio=0.0)
    env.reset(seed=0)
    _clear_arena(env)
    env._food_pos[0] = env._pursuer_pos[0]
    _, rewards, *_ = env.step({"pursuer_0": 8, "pursuer_1": 0, "pursuer_2": 8, "pursuer_3": 8})
    expected = (10.0 - 0.5 * 0.01) / 4
    assert all(r == pytest.approx(expected) for r in rewards.values())


def test_local_ratio_half_blends() -> None:
    env = WaterworldEnv(n_pursuers=2, local_ratio=0.5)
    env.reset(seed=0)
    _clear_arena(env, [(0.2, 0.2), (0.6, 0.2)])
    env._food_pos[0] = [0.2, 0.2]
    _, rewards, *_ = env.step(_idle(env))
    assert rewards["pursuer_0"] == pytest.approx(0.5 * 10 + 0.5 * 5)
    assert rewards["pursuer_1"] == pytest.approx(0.5 * 0 + 0.5 * 5)


# ---------------------------------------------------------------------------- physics & sensors


def test_thrust_moves_pursuer_in_action_direction() -> None:
    env = WaterworldEnv(n_pursuers=1, thrust=0.01)
    env.reset(seed=0)
    _clear_arena(env, [(0.5, 0.4)])
    env.step({"pursuer_0": 2})  # +y
    np.testing.assert_allclose(env._pursuer_pos[0], [0.5, 0.41], atol=1e-12)
    env.step({"pursuer_0": 5})  # 225 deg, on top of the damped +y velocity
    v = 0.8 * np.array([0.0, 0.01]) + 0.01 * np.array([-1.0, -1.0]) / np.sqrt(2)
    np.testing.assert_allclose(env._pursuer_vel[0], v, atol=1e-12)


def test_speed_is_capped() -> None:
    env = WaterworldEnv(n_pursuers=1, thrust=0.05, damping=1.0, pursuer_max_speed=0.03)
    env.reset(seed=0)
    _clear_arena(env, [(0.1, 0.4)])
    for _ in range(3):
        env.step({"pursuer_0": 0})
        assert np.linalg.norm(env._pursuer_vel[0]) <= 0.03 + 1e-12


def test_wall_stops_pursuer() -> None:
    env = WaterworldEnv(n_pursuers=1)
    env.reset(seed=0)
    r = env.pursuer_radius
    _clear_arena(env, [(r + 0.001, 0.4)])
    env.step({"pursuer_0": 4})  # -x into the wall
    assert env._pursuer_pos[0, 0] == r
    assert env._pursuer_vel[0, 0] == 0.0


def test_food_bounces_off_wall() -> None:
    env = WaterworldEnv(n_pursuers=1, evader_speed=0.01)
    env.reset(seed=0)
    _clear_arena(env, [(0.5, 0.2)])
    r = env.evader_radius
    env._food_pos[0] = [r + 0.004, 0.6]
    env._food_vel[0] = [-0.01, 0.0]
    env.step(_idle(env))
    np.testing.assert_allclose(env._food_pos[0], [r + 0.006, 0.6], atol=1e-12)
    assert env._food_vel[0, 0] == 0.01


def test_obstacle_blocks_pursuer() -> None:
    env = WaterworldEnv(n_pursuers=1)
    env.reset(seed=0)
    _clear_arena(env, [(0.3, 0.5)])
    env._obstacle_pos[0] = [0.5, 0.5]
    for _ in range(40):
        env.step({"pursuer_0": 0})  # +x straight into the obstacle
    gap = np.linalg.norm(env._pursuer_pos[0] - [0.5, 0.5])
    assert gap >= env.obstacle_radius + env.pursuer_radius - 1e-12
    assert env._pursuer_vel[0, 0] <= 1e-12  # no velocity left into the obstacle


def test_obstacle_and_barrier_sensor_distances() -> None:
    env = WaterworldEnv(n_pursuers=1, n_sensors=30, sensor_range=0.2, obstacle_radius=0.1)
    env.reset(seed=0)
    _clear_arena(env, [(0.3, 0.5)])
    env._obstacle_pos[0] = [0.5, 0.5]  # surface 0.1 ahead along sensor 0 (+x)
    obs, *_ = env.step(_idle(env))
    s = obs["pursuer_0"][:-2].reshape(30, F)
    assert s[0, OBSTACLE] == pytest.approx(0.1 / 0.2)
    assert s[15, OBSTACLE] == 1.0  # sensor 15 points along -x, away from the obstacle
    assert s[15, BARRIER] == 1.0  # the x = 0 wall is 0.3 away, beyond range

    _clear_arena(env, [(0.05, 0.5)])
    obs, *_ = env.step(_idle(env))
    s = obs["pursuer_0"][:-2].reshape(30, F)
    assert s[15, BARRIER] == pytest.approx(0.05 / 0.2)
    assert s[0, BARRIER] == 1.0


def test_pursuer_sensor_distance_and_closing_speed() -> None:
    env = WaterworldEnv(n_pursuers=2)
    env.reset(seed=0)
    _clear_arena(env, [(0.3, 0.3), (0.4, 0.3)])
    env._pursuer_vel[1] = [-0.02, 0.0]  # pursuer_1 approaches pursuer_0 along -x
    obs, *_ = env.step(_idle(env))
    s0 = obs["pursuer_0"][:-2].reshape(30, F)
    s1 = obs["pursuer_1"][:-2].reshape(30, F)
    v1 = 0.8 * -0.02  # damped velocity after the step
    gap = (0.4 + v1) - env.pursuer_radius - 0.3
    scale = 2 * env.pursuer_max_speed
    assert s0[0, PURSUER] == pytest.approx(gap / 0.2, rel=1e-5)
    assert s0[0, PURSUER_SPEED] == pytest.approx(-v1 / scale, rel=1e-5)  # approaching: > 0
    assert s1[15, PURSUER] == pytest.approx(gap / 0.2, rel=1e-5)
    assert s1[15, PURSUER_SPEED] == pytest.approx(-v1 / scale, rel=1e-5)
    # Nothing seen -> distance 1 and speed 0 on the opposite ray.
    assert s0[15, PURSUER] == 1.0 and s0[15, PURSUER_SPEED] == 0.0


def test_food_sensor_sees_receding_food() -> None:
    env = WaterworldEnv(n_pursuers=1)
    env.reset(seed=0)
    _clear_arena(env, [(0.3, 0.3)])
    env._food_pos[0] = [0.4, 0.3]
    env._food_vel[0] = [0.01, 0.0]  # receding along sensor 0 (+x)
    obs, *_ = env.step(_idle(env))
    s = obs["pursuer_0"][:-2].reshape(30, F)
    assert s[0, FOOD] == pytest.approx((0.41 - env.evader_radius - 0.3) / 0.2, rel=1e-5)
    assert s[0, FOOD_SPEED] == pytest.approx(-0.01 / (2 * env.pursuer_max_speed), rel=1e-5)
    assert s[0, POISON] == 1.0
    assert s[0, POISON_SPEED] == 0.0


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_pursuers": 0}, r"n_pursuers must be an integer >= 1, got 0"),
        ({"n_pursuers": 2.5}, r"n_pursuers must be an integer >= 1, got 2\.5"),
        ({"n_evaders": -1}, r"n_evaders must be an integer >= 0, got -1"),
        ({"n_pursuers": 2, "n_coop": 3}, r"n_coop must be between 1 and n_pursuers=2, got 3"),
        ({"n_coop": 0}, r"n_coop must be an integer >= 1, got 0"),
        ({"n_sensors": 0}, r"n_sensors must be an integer >= 1, got 0"),
        ({"sensor_range": 0.0}, r"sensor_range must be a finite number in \(0\.0, "),
        ({"local_ratio": 1.5}, r"local_ratio must be a finite number in \[0\.0, 1\.0\], got 1\.5"),
        ({"max_cycles": 0}, r"max_cycles must be an integer >= 1, got 0"),
        ({"render_mode": "human"}, r"render_mode must be None or one of .*got 'human'"),
        ({"speed_features": "yes"}, r"speed_features must be a bool, got 'yes'"),
        ({"food_reward": float("nan")}, r"food_reward must be a finite number"),
        ({"damping": 1.2}, r"damping must be a finite number in \[0\.0, 1\.0\], got 1\.2"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WaterworldEnv(**kwargs)


@pytest.mark.parametrize("bad", [-1, 9])
def test_bad_action_raises(bad: int) -> None:
    env = WaterworldEnv(n_pursuers=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"actions must be integers in \[0, 8\], got {bad}"):
        env.step({"pursuer_0": 0, "pursuer_1": bad})
