"""The contract every registered algorithm keeps (parametrised over the registry, so algorithms
added later are covered without touching this file)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from algos.base import AlgoConfig, Algorithm
from algos.data import Batch, OfflineData
from algos.registry import ALGORITHMS, algorithm_names, build_algorithm, make_config
from datagen.errors import UserError

ALGOS = algorithm_names()
#: Small networks keep the grid fast; the contract does not depend on width.
SMALL = {"hidden_size": 16}


def small(name: str, data: OfflineData, seed: int = 0) -> Algorithm:
    return build_algorithm(name, data.spec, SMALL, seed=seed)


def batch_of(data: OfflineData, seed: int = 0, size: int = 32) -> Batch:
    return data.sample(size, torch.Generator().manual_seed(seed))


def flat_parameters(algo: Algorithm) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in algo.networks.parameters()])


@pytest.mark.parametrize("name", ALGOS)
def test_registry_entry_is_complete(name: str) -> None:
    entry = ALGORITHMS[name]
    assert entry.name == name and entry.description
    assert entry.config_class is entry.algorithm_class.Config
    assert issubclass(entry.config_class, AlgoConfig)
    assert dataclasses.is_dataclass(entry.config_class)
    assert entry.config_class.__dataclass_params__.frozen
    for key, doc in entry.config_class.docs().items():
        assert doc, f"{name}.{key} has no doc"
    keys = entry.algorithm_class.metric_keys
    assert keys and any(key.startswith("loss/") for key in keys)


@pytest.mark.parametrize("name", ALGOS)
@pytest.mark.parametrize("key", ["prison", "pursuit"])
def test_update_gives_finite_declared_metrics_and_changes_parameters(
    name: str, key: str, request
) -> None:
    data = request.getfixturevalue(f"{key}_data")
    algo = small(name, data)
    before = flat_parameters(algo)
    metrics = algo.update(batch_of(data))
    assert set(metrics) == set(algo.metric_keys)
    assert all(math.isfinite(value) for value in metrics.values()), metrics
    assert algo.n_updates == 1
    assert not torch.equal(before, flat_parameters(algo))


@pytest.mark.parametrize("name", ALGOS)
def test_illegal_actions_are_never_chosen(name: str, prison_data: OfflineData) -> None:
    algo = small(name, prison_data)
    algo.update(batch_of(prison_data))
    generator = torch.Generator().manual_seed(1)
    obs = torch.rand(64, 9, 2, generator=generator)
    mask = torch.rand(64, 9, 3, generator=generator) < 0.5
    mask[..., 1] |= ~mask.any(-1)  # at least one legal action per agent
    alive = torch.ones(64, 9, dtype=torch.bool)
    positions = torch.rand(64, 9, 2, generator=generator)  # 9 agents: more than k nearest
    for greedy in (True, False):
        actions = algo.act(
            obs, alive, mask, greedy=greedy, generator=generator, positions=positions
        )
        assert actions.shape == (64, 9)
        assert mask.gather(-1, actions.unsqueeze(-1)).all()


@pytest.mark.parametrize("name", ALGOS)
def test_save_load_gives_identical_actions_and_continues_counters(
    name: str, prison_data: OfflineData
) -> None:
    algo = small(name, prison_data, seed=0)
    for step in range(3):
        algo.update(batch_of(prison_data, seed=step))
    restored = small(name, prison_data, seed=99)  # other initial weights
    restored.load_state_dict(algo.state_dict())
    assert restored.n_updates == 3
    obs = batch_of(prison_data, seed=7, size=64)
    assert torch.equal(algo.act(obs.obs, obs.alive), restored.act(obs.obs, obs.alive))
    sampled = [
        model.act(obs.obs, obs.alive, greedy=False, generator=torch.Generator().manual_seed(3))
        for model in (algo, restored)
    ]
    assert torch.equal(*sampled)
    # Resumed: the next update is the same as the original's next update.
    next_batch = batch_of(prison_data, seed=11)
    assert algo.update(next_batch) == restored.update(next_batch)
    assert restored.n_updates == 4
    assert torch.equal(flat_parameters(algo), flat_parameters(restored))


def recording(config: AlgoConfig) -> tuple[AlgoConfig, set[str]]:
    """A copy of `config` whose field reads are recorded (after construction)."""
    names = {f.name for f in dataclasses.fields(config)}
    reads: set[str] = set()

    class Recorded(type(config)):  # type: ignore[misc, valid-type]
        def __getattribute__(self, attribute: str):  # noqa: ANN204
            if attribute in names:
                reads.add(attribute)
            return super().__getattribute__(attribute)

    recorded = Recorded(**dataclasses.asdict(config))
    reads.clear()  # validation in __post_init__ does not count as use
    return recorded, reads


@pytest.mark.parametrize("name", ALGOS)
def test_every_config_field_is_consumed(name: str, prison_data: OfflineData) -> None:
    config, reads = recording(make_config(name, SMALL))
    algo = ALGORITHMS[name].algorithm_class(prison_data.spec, config, name=name)
    algo.attach(prison_data)
    for step in range(2):
        algo.update(batch_of(prison_data, seed=step))
    algo.act(batch_of(prison_data).obs, batch_of(prison_data).alive)
    unread = {f.name for f in dataclasses.fields(config)} - reads
    assert not unread, f"{name} never reads {sorted(unread)}"


@pytest.mark.parametrize("name", ALGOS)
def test_unknown_config_key_names_the_valid_ones(name: str) -> None:
    keys = [f.name for f in dataclasses.fields(ALGORITHMS[name].config_class)]
    with pytest.raises(UserError, match="valid keys: " + ", ".join(keys)):
        make_config(name, {"no_such_key": "1"})
    with pytest.raises(UserError, match="needs a int"):
        make_config(name, {"hidden_size": "wide"})


def test_unknown_algorithm_names_the_valid_ones() -> None:
    with pytest.raises(UserError, match="valid algorithms: " + ", ".join(ALGOS)):
        make_config("dqn-but-better")


def test_filtered_bc_samples_only_the_best_episodes(tiny_paths) -> None:
    data = OfflineData.from_datasets([tiny_paths["prison"]])  # 2 episodes
    plain = build_algorithm("bc", data.spec, SMALL)
    assert plain.sampling_subset(data) is None
    filtered = build_algorithm("bc", data.spec, {**SMALL, "top_fraction": 0.5})
    subset = filtered.sampling_subset(data)
    kept = data.batch(subset).episode_return
    everything = data.batch(torch.arange(len(data))).episode_return
    assert 0 < len(subset) < len(data)
    assert torch.all(kept == everything.max())
    with pytest.raises(UserError, match="top_fraction must be in"):
        make_config("bc", {"top_fraction": "0"})


def test_cql_term_is_part_of_the_iql_loss(prison_data: OfflineData) -> None:
    batch = batch_of(prison_data)
    with_cql = build_algorithm("idqn", prison_data.spec, SMALL)
    without = build_algorithm("idqn", prison_data.spec, {**SMALL, "cql_alpha": 0.0})
    total_with, metrics_with = with_cql.loss(batch)
    total_without, metrics_without = without.loss(batch)
    assert torch.allclose(total_with, metrics_with["loss/td"] + metrics_with["loss/cql"])
    assert torch.allclose(total_without, metrics_without["loss/td"])
    assert metrics_with["loss/cql"] > 0
