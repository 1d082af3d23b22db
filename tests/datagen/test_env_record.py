"""The env record datasets carry: the exact PettingZoo call (or our constructor), importable
wrappers and the action table; and option values checked against their types."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from datagen.cli import main as datagen_cli
from datagen.envs import EnvConfigError, env_record, make_env
from datagen.envs.registry import EnvRecipe, import_callable


def test_pettingzoo_kwargs_are_the_constructor_call() -> None:
    assert env_record("pursuit", 2)["pettingzoo_kwargs"]["n_pursuers"] == 2
    piston = env_record("pistonball", 4)
    assert piston["pettingzoo_kwargs"]["n_pistons"] == 4
    assert piston["pettingzoo_kwargs"]["continuous"] is False
    assert not {"obs_size", "grayscale", "frame_stack"} & set(piston["pettingzoo_kwargs"])
    assert [w["name"] for w in piston["wrappers"]] == [
        "supersuit.color_reduction_v0",
        "supersuit.resize_v1",
        "supersuit.frame_stack_v1",
    ]
    assert piston["wrappers"][1]["kwargs"] == {"x_size": 84, "y_size": 84}
    kaz = env_record("knights_archers_zombies", 3)["pettingzoo_kwargs"]
    assert (kaz["num_archers"], kaz["num_knights"], kaz["obs_method"]) == (2, 1, "vector")
    walker = env_record("multiwalker", 2)
    assert walker["pettingzoo_kwargs"]["n_walkers"] == 2
    assert "torque_levels" not in walker["pettingzoo_kwargs"]
    table = np.asarray(walker["action_table"])
    assert table.shape == (81, 4) and table[0].tolist() == [-1, -1, -1, -1]
    assert table[80].tolist() == [1, 1, 1, 1] and table[40].tolist() == [0, 0, 0, 0]


def test_our_envs_record_their_constructor() -> None:
    prison = env_record("prison", 3, max_cycles=20)
    assert prison["pettingzoo_id"] is None and prison["pettingzoo_kwargs"] is None
    assert prison["constructor"]["name"] == "datagen.envs.prison.PrisonEnv"
    assert prison["constructor"]["kwargs"]["n_prisoners"] == 3
    assert prison["constructor"]["kwargs"]["max_cycles"] == 20
    env = import_callable(prison["constructor"]["name"])(**prison["constructor"]["kwargs"])
    assert len(env.possible_agents) == 3


@pytest.mark.parametrize(
    ("name", "n_agents"),
    [("pursuit", 3), ("pistonball", 3), ("knights_archers_zombies", 3), ("multiwalker", 2)]
    + [("waterworld", 2), ("prison", 2), ("cooperative_pong", 2)],
)
def test_the_record_alone_rebuilds_the_same_env(name: str, n_agents: int) -> None:
    env = make_env(name, n_agents)
    record = json.loads(json.dumps(env.record))  # as stored
    rebuilt = EnvRecipe.from_record(record).construct()
    assert rebuilt.possible_agents == env.possible_agents
    agent = env.possible_agents[0]
    assert rebuilt.observation_space(agent).shape == env.observation_space(agent).shape
    if record["action_table"] is None:
        assert rebuilt.action_space(agent) == env.action_space(agent)
    ours, _ = env.reset(seed=3)
    theirs, _ = rebuilt.reset(seed=3)
    np.testing.assert_array_equal(np.asarray(theirs[agent], np.float32), ours[agent])
    env.close()
    rebuilt.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"obs_range": "abc"}, "option obs_range of env pursuit must be an integer, got 'abc'"),
        ({"obs_range": 7.5}, "option obs_range of env pursuit must be an integer, got 7.5"),
        ({"surround": 1}, "option surround of env pursuit must be a boolean (true or false)"),
        ({"max_cycles": True}, "option max_cycles of env pursuit must be an integer, got True"),
        ({"tag_reward": "high"}, "option tag_reward of env pursuit must be a number"),
    ],
)
def test_option_values_are_checked_against_their_types(options: dict, message: str) -> None:
    with pytest.raises(EnvConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_env("pursuit", 2, **options)


def test_well_typed_options_pass() -> None:
    make_env("pursuit", 2, tag_reward=1, max_cycles=np.int64(20)).close()  # an int is a number
    make_env("prison", 2, image_size=[8, 24], obs_type="image").close()
    make_env("knights_archers_zombies", 2, num_archers=None, num_knights=2).close()
    with pytest.raises(EnvConfigError, match="image_size of env prison must be a list of 2"):
        make_env("prison", 2, image_size=[8])
    with pytest.raises(EnvConfigError, match="num_archers of env knights_archers_zombies must be"):
        make_env("knights_archers_zombies", 2, num_archers="two")


def test_a_mistyped_option_is_one_line_and_exit_2() -> None:
    args = ["collect", "--env", "pursuit", "--agents", "2", "--episodes", "1"]
    result = CliRunner().invoke(datagen_cli, [*args, "--option", "obs_range=abc"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: option obs_range of env pursuit must be an integer, got 'abc'"
    )
