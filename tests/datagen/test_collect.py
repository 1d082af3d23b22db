"""Collection: deterministic content, replayable episodes, consistent arrays, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datagen.collect import CollectRequest, collect, episode_seed, rollout_episode
from datagen.dataset.hdf5 import read_arrays, read_metadata
from datagen.dataset.ids import DatasetId
from datagen.envs import make_env
from datagen.errors import UserError
from datagen.policies import RandomPolicy

SMALL = {"max_cycles": 40}


def _collect(seed: int = 0, **kwargs) -> Path:
    request = CollectRequest(
        "pursuit", 2, "random", n_episodes=3, seed=seed, options=SMALL, **kwargs
    )
    return collect(request)


def test_same_seed_same_checksum_other_seed_other_checksum(tmp_path: Path) -> None:
    first = read_metadata(_collect(0, out=tmp_path / "a.h5"))
    again = read_metadata(_collect(0, out=tmp_path / "b.h5"))
    other = read_metadata(_collect(1, out=tmp_path / "c.h5"))
    assert first["content_checksum"] == again["content_checksum"]
    assert first["checksums"] == again["checksums"]
    assert first["content_checksum"] != other["content_checksum"]
    assert first["episode_seeds"] != other["episode_seeds"]


def test_arrays_are_consistent(data_home: Path) -> None:
    path = _collect()
    assert path == data_home / "pursuit" / "n2" / "random-v1.h5"
    arrays = read_arrays(path)
    metadata = read_metadata(path)
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
    assert metadata["env"]["kwargs"]["max_cycles"] == 40


def test_any_episode_replays_from_metadata() -> None:
    path = _collect(seed=5)
    metadata = read_metadata(path)
    arrays = read_arrays(path)
    assert metadata["episode_seeds"][1] == episode_seed(5, 1)
    env = make_env(metadata["env"]["name"], metadata["n_agents"], **SMALL)
    replay = rollout_episode(env, RandomPolicy(5), metadata["episode_seeds"][1])
    start = int(arrays["episode_lengths"][0])
    np.testing.assert_array_equal(replay.actions, arrays["actions"][start : start + 40])
    np.testing.assert_array_equal(
        replay.observations, arrays["observations"][start + 1 : start + 1 + 41]
    )


def test_refuses_to_overwrite_and_keeps_the_old_dataset_when_a_rewrite_fails(
    data_home: Path,
) -> None:
    path = _collect()
    before = read_metadata(path)["content_checksum"]
    with pytest.raises(UserError, match="already exists; pass --force"):
        _collect()

    def explode(index: int, episode) -> None:
        if index == 1:
            raise RuntimeError("killed mid-collection")

    request = CollectRequest(
        "pursuit", 2, "random", n_episodes=3, seed=9, options=SMALL, force=True
    )
    with pytest.raises(RuntimeError, match="killed mid-collection"):
        collect(request, on_episode=explode)
    assert read_metadata(path)["content_checksum"] == before
    assert not list(path.parent.glob("*.partial"))


def test_steps_mode_collects_whole_episodes() -> None:
    request = CollectRequest("pursuit", 2, "random", n_steps=50, options=SMALL)
    metadata = read_metadata(collect(request))
    assert metadata["totals"] == {"episodes": 2, "steps": 80}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_episodes": None}, "exactly one of --episodes and --steps"),
        ({"n_episodes": 0}, "at least 1"),
        ({"quality": "legendary"}, "unknown quality 'legendary'; valid qualities: random"),
    ],
)
def test_bad_requests(kwargs: dict, message: str) -> None:
    base = {"env": "pursuit", "n_agents": 2, "quality": "random", "n_episodes": 1}
    with pytest.raises(UserError, match=message):
        collect(CollectRequest(**{**base, **kwargs}))


def test_dataset_ids_round_trip_and_reject_garbage(data_home: Path) -> None:
    parsed = DatasetId.parse("pursuit-n8-degenerate-saboteur-v2")
    assert parsed == DatasetId("pursuit", 8, "degenerate-saboteur", 2)
    assert str(parsed) == "pursuit-n8-degenerate-saboteur-v2"
    assert parsed.path("zarr") == data_home / "pursuit" / "n8" / "degenerate-saboteur-v2.zarr"
    with pytest.raises(UserError, match="is not a dataset id"):
        DatasetId.parse("pursuit-8-expert")
