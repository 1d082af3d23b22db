"""Collection: deterministic content whatever the worker count, replayable episodes, consistent
arrays, refusal to overwrite, resume rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datagen import load_dataset
from datagen.collect import CollectRequest, Staging, collect, rollout_episode
from datagen.dataset.format import FORMAT_VERSION
from datagen.dataset.ids import DatasetId
from datagen.envs import describe_env, env_names, get_spec, make_env
from datagen.errors import UserError
from datagen.policies import RandomPolicy
from datagen.rollout import episode_seed

SMALL = {"max_cycles": 40}


def _request(**kwargs) -> CollectRequest:
    base = {"env": "pursuit", "n_agents": 2, "quality": "random", "n_episodes": 3, "options": SMALL}
    return CollectRequest(**{**base, **kwargs})


def _checksum(path: Path) -> str:
    with load_dataset(path) as dataset:
        return dataset.metadata["content_checksum"]


def test_same_seed_same_checksum_other_seed_other_checksum(tmp_path: Path) -> None:
    first = _checksum(collect(_request(seed=0, out=tmp_path / "a.h5")))
    assert _checksum(collect(_request(seed=0, out=tmp_path / "b.h5"))) == first
    assert _checksum(collect(_request(seed=1, out=tmp_path / "c.h5"))) != first


def test_parallel_workers_give_the_same_content(tmp_path: Path) -> None:
    one = collect(_request(n_episodes=4, out=tmp_path / "one.h5"))
    two = collect(_request(n_episodes=4, out=tmp_path / "two.h5", workers=2))
    assert _checksum(one) == _checksum(two)
    steps_one = collect(
        _request(n_episodes=None, n_steps=100, out=tmp_path / "s1.zarr", fmt="zarr")
    )
    steps_two = collect(
        _request(n_episodes=None, n_steps=100, out=tmp_path / "s2.zarr", fmt="zarr", workers=2)
    )
    assert _checksum(steps_one) == _checksum(steps_two)
    with load_dataset(steps_two) as dataset:
        # 100 steps of 40-step episodes: the shortest prefix reaching 100 is three episodes.
        assert dataset.metadata["totals"] == {"episodes": 3, "steps": 120}


def test_arrays_are_consistent(data_home: Path) -> None:
    path = collect(_request())
    assert path == data_home / "pursuit" / "n2" / "random-v1.h5"
    with load_dataset("pursuit-n2-random-v1") as dataset:
        arrays = dataset.load()
        metadata = dataset.metadata
    lengths = arrays["episode_lengths"]
    n_steps, n_episodes = int(lengths.sum()), len(lengths)
    assert list(lengths) == [40, 40, 40]
    assert metadata["totals"] == {"episodes": 3, "steps": 120}
    assert arrays["observations"].shape == (n_steps + n_episodes, 2, 7, 7, 3)
    assert arrays["state"].shape == (n_steps + n_episodes, 16, 16, 3)
    assert arrays["actions"].shape == (n_steps, 2)
    assert arrays["behaviour_probs"].shape == (n_steps, 2, 5)
    np.testing.assert_allclose(arrays["behaviour_probs"].sum(-1), 1.0, rtol=1e-6)
    # Pursuit is truncated at max_cycles: one truncation row per episode, no terminations.
    assert arrays["truncations"].all(axis=1).sum() == n_episodes
    assert not arrays["terminations"].any()
    assert arrays["alive"].all()
    returns = [float(r.sum()) for r in np.split(arrays["rewards"], np.cumsum(lengths)[:-1])]
    np.testing.assert_allclose(metadata["stats"]["episode_returns"], returns, rtol=1e-5)
    assert metadata["stats"]["mean"] == pytest.approx(np.mean(returns), rel=1e-6)
    assert 0.0 < metadata["coverage"] <= 1.0
    assert metadata["agent_ids"] == ["pursuer_0", "pursuer_1"]
    assert metadata["env"]["options"]["max_cycles"] == 40
    assert metadata["env"]["options"]["n_evaders"] == 30, "defaults are recorded too"
    assert metadata["env"]["wrappers"] == []
    assert metadata["env"]["pettingzoo_id"] == "sisl/pursuit-v5"
    kwargs = metadata["env"]["pettingzoo_kwargs"]
    assert kwargs["n_pursuers"] == 2 and kwargs["max_cycles"] == 40, "the exact constructor call"
    assert metadata["format_version"] == FORMAT_VERSION == 3
    # Positions: each pursuer's grid cell, on the grid, one row per observation.
    positions = arrays["positions"]
    assert positions.shape == (n_steps + n_episodes, 2, 2) and positions.dtype == np.float32
    assert ((positions >= 0) & (positions < 16)).all()
    assert np.array_equal(positions, np.round(positions))
    for episode in np.split(positions, np.cumsum(lengths + 1)[:-1]):
        assert np.abs(np.diff(episode, axis=0)).sum(-1).max() <= 1  # one cell a step at most
    assert metadata["view_radius"] == 3.0  # (obs_range 7 - 1) // 2 cells
    assert metadata["action_space"] == {"type": "Discrete", "n": 5}
    assert metadata["policy"]["labels"] == ["random"]


@pytest.mark.parametrize("name", env_names())
def test_every_env_records_positions_and_its_view_radius(name: str, tmp_path: Path) -> None:
    """One short random episode of a team of (at least) two: a finite (T + 1, N, 2) float32
    position per agent and observation, and the env's view radius in the metadata."""
    spec = get_spec(name)
    n_agents = max(2, spec.n_min) if spec.n_max >= 2 else spec.n_min
    request = CollectRequest(
        name, n_agents, "random", n_episodes=1, out=tmp_path / "d.h5", options={"max_cycles": 24}
    )
    with load_dataset(collect(request)) as dataset:
        positions = dataset.load(["positions"])["positions"]
        metadata = dataset.metadata
    assert positions.shape == (dataset.n_steps + 1, n_agents, 2)
    assert positions.dtype == np.float32 and np.isfinite(positions).all()
    assert metadata["view_radius"] == describe_env(name, n_agents)["view_radius"] >= 0


def test_any_episode_replays_from_metadata() -> None:
    path = collect(_request(seed=5))
    with load_dataset(path) as dataset:
        metadata = dataset.metadata
        stored = dataset.episode(1)
    assert metadata["episode_seeds"][1] == episode_seed(5, 1)
    env = make_env(metadata["env"]["name"], metadata["n_agents"], **metadata["env"]["options"])
    replay = rollout_episode(env, RandomPolicy(5), metadata["episode_seeds"][1])
    for name, values in replay.arrays().items():
        np.testing.assert_array_equal(values, getattr(stored, name), err_msg=name)


def test_refuses_to_overwrite_and_keeps_the_old_dataset_when_a_rewrite_fails() -> None:
    path = collect(_request())
    before = _checksum(path)
    with pytest.raises(UserError, match="already exists; pass --force"):
        collect(_request())

    def explode(index: int, length: int, team_return: float) -> None:
        if index == 1:
            raise RuntimeError("killed mid-collection")

    with pytest.raises(RuntimeError, match="killed mid-collection"):
        collect(_request(seed=9, force=True), on_episode=explode)
    assert _checksum(path) == before
    # The interrupted re-collection is staged: a rerun must neither mix nor silently discard it.
    staged = Staging(path).done()
    assert staged == [0, 1]
    with pytest.raises(UserError, match="cannot resume .* other arguments"):
        collect(_request(seed=10, force=True, resume=True))
    collect(_request(seed=9, force=True, resume=True))
    assert _checksum(path) == _checksum(collect(_request(seed=9, out=path.with_name("u.h5"))))


def test_an_interrupted_collection_needs_resume_or_force(tmp_path: Path) -> None:
    target = tmp_path / "t.h5"

    def explode(index: int, length: int, team_return: float) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        collect(_request(out=target), on_episode=explode)
    with pytest.raises(UserError, match="interrupted collection exists .* --resume .* --force"):
        collect(_request(out=target))
    collect(_request(out=target, force=True))
    assert target.exists()


def test_resume_after_an_exception_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    target = tmp_path / "resumed.h5"

    def explode(index: int, length: int, team_return: float) -> None:
        if index == 2:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        collect(_request(n_episodes=5, out=target), on_episode=explode)
    assert not target.exists()
    assert Staging(target).done() == [0, 1, 2]
    seen = []
    collect(
        _request(n_episodes=5, out=target, resume=True), on_episode=lambda i, *_: seen.append(i)
    )
    assert seen == [3, 4], "staged episodes are not played again"
    assert _checksum(target) == _checksum(collect(_request(n_episodes=5, out=tmp_path / "u.h5")))
    assert not Staging(target).root.exists(), "staging is removed once the dataset is written"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_episodes": None}, "exactly one of --episodes and --steps"),
        ({"n_episodes": 0}, "at least 1"),
        ({"quality": "legendary"}, "unknown quality 'legendary'; valid qualities: random"),
        ({"workers": 0}, "--workers must be at least 1"),
        ({"fmt": "parquet"}, "unknown format 'parquet'; valid formats: hdf5, zarr"),
        ({"fmt": "zarr", "out": Path("x.h5")}, "must end in .zarr"),
        ({"env": "pursuit", "n_agents": 99}, "pursuit supports 1 to 64 agents, got 99"),
    ],
)
def test_bad_requests(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        collect(_request(**kwargs))


def test_dataset_ids_round_trip_and_reject_garbage(data_home: Path) -> None:
    parsed = DatasetId.parse("pursuit-n8-degenerate-saboteur-v2")
    assert parsed == DatasetId("pursuit", 8, "degenerate-saboteur", 2)
    assert str(parsed) == "pursuit-n8-degenerate-saboteur-v2"
    assert parsed.path("zarr") == data_home / "pursuit" / "n8" / "degenerate-saboteur-v2.zarr"
    with pytest.raises(UserError, match="is not a dataset id"):
        DatasetId.parse("pursuit-8-expert")
