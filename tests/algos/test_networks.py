"""Per-agent networks: any team size, any entity count, the encoder chosen by shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algos.data import DataSpec, OfflineData
from algos.networks import (
    AgentNetwork,
    CNNEncoder,
    MLPEncoder,
    SetEncoder,
    check_obs_shape,
    encoder_kind,
    make_encoder,
)
from algos.registry import algorithm_names, build_algorithm
from datagen.envs import make_env
from datagen.errors import UserError


def spec_of(shape: tuple[int, ...], dtype: str = "float32", stats_shape=None) -> DataSpec:
    stats_shape = stats_shape or shape
    return DataSpec(shape, dtype, 4, None, np.zeros(stats_shape), np.ones(stats_shape))


def test_encoder_chosen_by_shape() -> None:
    assert encoder_kind(spec_of((2,))) == "mlp"
    assert encoder_kind(spec_of((7, 7, 3))) == "mlp"  # pursuit's small float grid
    assert encoder_kind(spec_of((84, 84, 1), "uint8", (1,))) == "cnn"
    assert encoder_kind(spec_of((30, 5), stats_shape=(5,))) == "set"
    assert isinstance(make_encoder(spec_of((2,)), 8), MLPEncoder)
    assert isinstance(make_encoder(spec_of((16, 48, 3), "uint8", (1,)), 8), CNNEncoder)
    assert isinstance(make_encoder(spec_of((7, 7, 3)), 8, "cnn"), CNNEncoder)
    assert isinstance(make_encoder(spec_of((30, 5), stats_shape=(5,)), 8), SetEncoder)
    with pytest.raises(UserError, match="cannot read observations of shape"):
        encoder_kind(spec_of((2,)), "cnn")
    with pytest.raises(UserError, match="valid encoders: auto, mlp, cnn, set"):
        encoder_kind(spec_of((2,)), "transformer")


@pytest.mark.parametrize("algo", algorithm_names())
@pytest.mark.parametrize("key", ["prison", "pursuit"])
def test_model_built_from_two_agents_acts_for_thirty_two(algo: str, key: str, tiny_paths) -> None:
    data = OfflineData.from_datasets([tiny_paths[key]])
    assert data.n_agents == 2
    model = build_algorithm(algo, data.spec, {"hidden_size": 16})
    env = make_env(data.env_name, 32, **data.env_options)
    obs, _ = env.reset(seed=0)
    team = np.stack([obs[agent] for agent in env.possible_agents])  # (32, *obs_shape)
    positions = env.positions()  # (32, 2): whom each agent hears, for the communicating ones
    env.close()
    actions = model.act(team, np.ones(32, dtype=bool), positions=positions)
    assert actions.shape == (32,) and actions.dtype == torch.int64
    assert ((actions >= 0) & (actions < data.spec.n_actions)).all()
    batched = model.act(
        np.stack([team, team]), np.ones((2, 32), dtype=bool), positions=np.stack([positions] * 2)
    )
    assert batched.shape == (2, 32) and torch.equal(batched[0], actions)


def test_set_encoder_reads_any_number_of_entities(tiny_paths) -> None:
    data = OfflineData.from_datasets([tiny_paths["kaz"]])
    model = build_algorithm("bc", data.spec, {"hidden_size": 16})
    env = make_env(data.env_name, 8, **data.env_options)
    obs, _ = env.reset(seed=0)
    team = np.stack([obs[agent] for agent in env.possible_agents])
    env.close()
    assert team.shape[1] > data.spec.obs_shape[0]  # more rows than the model ever saw
    check_obs_shape(data.spec, team.shape[1:], "kaz with 8 agents")
    assert model.act(team, np.ones(8, dtype=bool)).shape == (8,)


def test_set_encoder_ignores_absent_rows_and_the_order_of_others() -> None:
    torch.manual_seed(0)
    encoder = SetEncoder(spec_of((4, 3), stats_shape=(3,)), 16)
    rows = torch.randn(2, 4, 3)
    rows[1, 2:] = 0.0  # absent entities
    out = encoder(rows)
    permuted = rows[:, [0, 3, 1, 2]]  # own row first, the others shuffled
    assert torch.allclose(encoder(permuted), out, atol=1e-6)
    padded = torch.cat([rows, torch.zeros(2, 5, 3)], dim=1)  # more absent rows
    assert torch.allclose(encoder(padded), out, atol=1e-6)
    _, weights = encoder.attention(rows)
    assert torch.allclose(weights.sum(-1), torch.ones(2))
    assert (weights[1, 2:] == 0).all()
    dead = encoder(torch.zeros(1, 4, 3))  # every row zero: still finite
    assert torch.isfinite(dead).all()


def test_agent_network_shares_parameters_across_agents() -> None:
    network = AgentNetwork(spec_of((2,)), 3, 8)
    obs = torch.randn(5, 6, 2)
    out = network(obs)
    assert out.shape == (5, 6, 3) and network.features(obs).shape == (5, 6, 8)
    # The same observation gives the same output whatever the agent's index.
    obs[:, 4] = obs[:, 1]
    out = network(obs)
    assert torch.allclose(out[:, 4], out[:, 1])


def test_cnn_on_uint8_images(tiny_paths) -> None:
    data = OfflineData.from_datasets([tiny_paths["prison_image"]])
    model = build_algorithm("idqn", data.spec, {"hidden_size": 16})
    assert isinstance(model.q.encoder, CNNEncoder)
    batch = data.sample(4, torch.Generator().manual_seed(0))
    metrics = model.update(batch)
    assert all(np.isfinite(v) for v in metrics.values())


def test_obs_shape_mismatch_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"gives observations of shape \(3,\).*trained on \(2,\)"):
        check_obs_shape(spec_of((2,)), (3,), "prison")
    with pytest.raises(UserError):
        check_obs_shape(spec_of((30, 5), stats_shape=(5,)), (30, 6), "kaz")
