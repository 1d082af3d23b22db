"""Conformance of every env of the suite: PettingZoo's API test, multi-step determinism, the team
contract (fixed agent axis, alive flags) and clear errors for bad requests."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from datagen.envs import ENV_SPECS, EnvConfigError, describe_env, env_names, get_spec, make_env
from datagen.envs.registry import kaz_split, multiwalker_action_table

OWN_ENVS = ("waterworld", "prison")


def _two_counts(name: str) -> list[int]:
    spec = get_spec(name)
    if name in OWN_ENVS:
        return [1, 2, 8, 32]
    return sorted({spec.ladder[0], spec.ladder[1] if len(spec.ladder) > 1 else spec.n_max})


API_CASES = [(name, n) for name in env_names() for n in _two_counts(name)]


@pytest.mark.parametrize(("name", "n_agents"), API_CASES)
def test_parallel_api(name: str, n_agents: int) -> None:
    env = make_env(name, n_agents, seed=0)
    parallel_api_test(env, num_cycles=50)
    assert len(env.possible_agents) == n_agents


def _rollout(name: str, n_agents: int, seed: int, n_steps: int = 100) -> list[tuple]:
    """Step with actions from a fixed generator; episodes that end are reset without a seed."""
    env = make_env(name, n_agents)
    rng = np.random.default_rng(1234)
    obs, _ = env.reset(seed=seed)
    history = []
    for _ in range(n_steps):
        if not env.agents:
            obs, _ = env.reset()
        actions = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        obs, rewards, terminated, truncated, infos = env.step(actions)
        history.append(
            (
                {a: o.copy() for a, o in obs.items()},
                dict(rewards),
                dict(terminated),
                dict(truncated),
            )
        )
    env.close()
    return history


def _same(a: list[tuple], b: list[tuple]) -> bool:
    for (obs_a, *rest_a), (obs_b, *rest_b) in zip(a, b, strict=True):
        if obs_a.keys() != obs_b.keys() or rest_a != rest_b:
            return False
        if any(not np.array_equal(obs_a[k], obs_b[k]) for k in obs_a):
            return False
    return True


DETERMINISM_CASES = [
    (name, n)
    for name in env_names()
    for n in ([1, 2, 8, 32] if name in OWN_ENVS else [get_spec(name).ladder[0]])
]


@pytest.mark.parametrize(("name", "n"), DETERMINISM_CASES)
def test_multi_step_determinism(name: str, n: int) -> None:
    first = _rollout(name, n, seed=7)
    assert _same(first, _rollout(name, n, seed=7)), "same seed and actions must replay exactly"
    assert not _same(first, _rollout(name, n, seed=8)), "another seed must give another episode"


@pytest.mark.parametrize("name", env_names())
def test_alive_flag_and_fixed_agent_axis(name: str) -> None:
    n = get_spec(name).ladder[0]
    env = make_env(name, n, seed=3)
    obs, infos = env.reset()
    assert list(obs) == env.possible_agents
    assert all(info["alive"] is True for info in infos.values())
    rng = np.random.default_rng(0)
    for _ in range(30):
        if not env.agents:
            break
        assert env.agents == env.possible_agents, "the agent axis must not shift mid-episode"
        obs, _, _, _, infos = env.step(
            {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        )
        assert set(infos) == set(env.possible_agents)
        assert all(isinstance(info["alive"], bool) for info in infos.values())
        positions = np.stack([infos[agent]["position"] for agent in env.possible_agents])
        assert positions.dtype == np.float32 and np.isfinite(positions).all()
        np.testing.assert_array_equal(env.positions(), positions)
        for agent, o in obs.items():
            assert env.observation_space(agent).contains(o), f"{agent} obs outside its space"


def test_kaz_dead_agents_stay_with_zero_obs_and_alive_false() -> None:
    # Knights and archers die when a zombie reaches them; with random play some die within an
    # episode. The team keeps them: same agent list, zero observation, zero reward, alive False.
    env = make_env("knights_archers_zombies", 4, seed=0, spawn_delay=5)
    rng = np.random.default_rng(0)
    env.reset()
    dead_seen = False
    for _ in range(900):
        if not env.agents:
            break
        obs, rewards, _, _, infos = env.step({a: int(rng.integers(6)) for a in env.agents})
        if env.agents:
            assert env.agents == env.possible_agents
        dead = [a for a, info in infos.items() if not info["alive"]]
        if dead and env.agents:
            dead_seen = True
            last_seen = {agent: infos[agent]["position"] for agent in dead}
            # From the step after death on, a dead agent reads zeros and earns nothing; its
            # position stays where it was last seen alive.
            obs, rewards, _, _, infos = env.step({a: int(rng.integers(6)) for a in env.agents})
            for agent in dead:
                assert not np.any(obs[agent])
                assert rewards[agent] == 0.0
                assert infos[agent]["alive"] is False
                np.testing.assert_array_equal(infos[agent]["position"], last_seen[agent])
            break
    assert dead_seen, "expected at least one death with fast-spawning zombies"


def test_describe_pursuit_matches_pettingzoo_facts() -> None:
    info = describe_env("pursuit")
    assert info["pettingzoo_id"] == "sisl/pursuit-v5"
    assert info["obs"] == {"shape": [7, 7, 3], "dtype": "float32"}
    assert info["n_actions"] == 5
    assert info["state_shape"] == [16, 16, 3]
    assert info["episode_length"] == 500
    assert info["view_radius"] == 3.0  # the half-width of its 7 x 7 window, in cells
    assert info["ladder"] == [2, 4, 8, 16]
    assert info["obs_grows_with_n"] is False


def test_describe_pixel_and_entity_envs() -> None:
    piston = describe_env("pistonball", 5)
    assert piston["obs"] == {"shape": [84, 84, 1], "dtype": "uint8"}
    assert piston["n_actions"] == 3
    assert piston["state_shape"] == [560, 40 * 5 + 80, 3]
    kaz_small, kaz_large = (
        describe_env("knights_archers_zombies", 2),
        describe_env("knights_archers_zombies", 8),
    )
    # One row per entity: 1 (self) + archers + 2 * knights + 10 arrows + 10 zombies.
    assert kaz_small["obs"]["shape"] == [1 + 1 + 2 * 1 + 20, 5]
    assert kaz_large["obs"]["shape"] == [1 + 4 + 2 * 4 + 20, 5]
    assert kaz_small["obs"]["dtype"] == "float32"
    invaders = describe_env("space_invaders", 2)
    assert invaders["obs"] == {"shape": [84, 84, 4], "dtype": "uint8"}
    assert invaders["n_actions"] == 6
    assert invaders["episode_length"] == 10_000 // 4
    assert describe_env("space_invaders", 1)["agent_ids"] == ["first_0"]


def test_multiwalker_action_table() -> None:
    table = multiwalker_action_table(3)
    assert table.shape == (81, 4)
    np.testing.assert_array_equal(table[0], [-1, -1, -1, -1])
    np.testing.assert_array_equal(table[40], [0, 0, 0, 0])
    np.testing.assert_array_equal(table[80], [1, 1, 1, 1])
    np.testing.assert_array_equal(table[1], [-1, -1, -1, 0])
    assert multiwalker_action_table(5).shape == (625, 4)
    env = make_env("multiwalker", 2, torque_levels=5)
    assert env.action_space("walker_0").n == 625


def test_multiwalker_discrete_action_drives_the_torques() -> None:
    # Action 40 is zero torque: the discrete env must replay exactly like the raw env given zeros.
    import pettingzoo

    env = make_env("multiwalker", 2)
    raw = pettingzoo.make("parallel", "sisl/multiwalker-v9", n_walkers=2)
    obs, _ = env.reset(seed=5)
    raw_obs, _ = raw.reset(seed=5)
    for _ in range(20):
        obs, *_ = env.step(dict.fromkeys(env.agents, 40))
        raw_obs, *_ = raw.step({a: np.zeros(4, np.float32) for a in raw.agents})
    np.testing.assert_array_equal(obs["walker_0"], raw_obs["walker_0"])
    moved, *_ = make_env("multiwalker", 2).reset(seed=5)
    env2 = make_env("multiwalker", 2)
    env2.reset(seed=5)
    for _ in range(20):
        moved, *_ = env2.step(dict.fromkeys(env2.agents, 80))
    assert not np.array_equal(moved["walker_0"], obs["walker_0"]), "full torque must move joints"


def test_kaz_split() -> None:
    assert kaz_split(5, None, None) == (3, 2)
    assert kaz_split(4, None, 3) == (1, 3)
    assert kaz_split(4, 4, None) == (4, 0)
    with pytest.raises(EnvConfigError, match="must equal the agent count 4"):
        kaz_split(4, 3, 3)
    with pytest.raises(EnvConfigError, match="at most 8 archers"):
        kaz_split(12, 10, None)
    env = make_env("knights_archers_zombies", 3, num_knights=2)
    assert env.possible_agents == ["archer_0", "knight_0", "knight_1"]


def test_seed_argument_seeds_the_first_reset() -> None:
    a, _ = make_env("pursuit", 2, seed=11).reset()
    b, _ = make_env("pursuit", 2).reset(seed=11)
    c, _ = make_env("pursuit", 2, seed=12).reset()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize(
    ("name", "n_agents", "options", "message"),
    [
        ("pursuits", 2, {}, r"unknown env 'pursuits'; valid envs: pursuit, pistonball"),
        ("pistonball", 1, {}, r"pistonball supports 2 to 40 agents, got 1"),
        ("space_invaders", 3, {}, r"space_invaders supports 1 to 2 agents, got 3"),
        ("cooperative_pong", 3, {}, r"cooperative_pong supports 2 agents, got 3"),
        ("pursuit", 2, {"colour": 1}, r"unknown option 'colour' for env pursuit; valid options: "),
        ("prison", 2, {"obs_type": "rgb"}, r"prison: invalid options .*obs_type must be one of"),
        ("waterworld", 2, {"n_coop": 3}, r"waterworld: invalid options .*n_coop must be between"),
    ],
)
def test_bad_requests_name_the_problem(name, n_agents, options, message) -> None:
    with pytest.raises(EnvConfigError, match=message):
        make_env(name, n_agents, **options)


def test_every_spec_is_consistent() -> None:
    for name, spec in ENV_SPECS.items():
        spec = get_spec(name)
        assert spec.n_min <= spec.default_n <= spec.n_max, name
        assert list(spec.ladder) == sorted(spec.ladder), name
        assert all(spec.n_min <= n <= spec.n_max for n in spec.ladder), name
        assert "max_cycles" in spec.options, name


def test_kaz_seed_replays_on_a_reused_env() -> None:
    # PettingZoo's KAZ v11 keeps its spawn timer across resets; make_env restarts it.
    def first_steps(env) -> list[np.ndarray]:
        env.reset(seed=21)
        out = []
        for _ in range(60):
            obs, *_ = env.step(dict.fromkeys(env.agents, 5))
            out.append(obs["archer_0"].copy())
        return out

    env = make_env("knights_archers_zombies", 2)
    reference = first_steps(env)
    env.reset(seed=3)
    for _ in range(7):  # an episode prefix that is not a multiple of spawn_delay
        env.step(dict.fromkeys(env.agents, 5))
    again = first_steps(env)
    assert all(np.array_equal(a, b) for a, b in zip(reference, again, strict=True))


def test_waterworld_counts_food_and_poison_per_episode() -> None:
    from datagen.policies.evaluate import evaluate
    from datagen.policies.registry import make_policy

    result = evaluate(
        "waterworld", 2, lambda env: make_policy("random", env), 2, options={"max_cycles": 100}
    )
    assert set(result.metrics) == {"food_caught", "poison_touched"}
    # Random play touches poison now and then, and each touch costs exactly poison_reward (-1):
    assert all(v >= 0 for v in result.metrics["poison_touched"])
    assert sum(result.metrics["poison_touched"]) > 0


def test_multiwalker_state_after_a_fall_is_zeros_not_a_crash() -> None:
    env = make_env("multiwalker", 2)
    env.reset(seed=1)
    state = env.state()
    assert np.any(state)
    while env.agents:
        env.step(dict.fromkeys(env.agents, 60))  # everyone sits back and falls
    np.testing.assert_array_equal(env.state(), np.zeros_like(state))
