"""OfflineData: bootstrap resolution, padding when mixing team sizes, statistics, sampling."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from algos.data import Batch, DataSpec, OfflineData, bootstrap_mask, obs_stats
from datagen.dataset import Dataset
from datagen.errors import UserError


def test_bootstrap_truncation_bootstraps_death_and_termination_do_not() -> None:
    terminated = np.array([[False, True, False, False]])
    truncated = np.array([[True, False, False, True]])
    alive = np.array([[True, True, True, False]])
    next_alive = np.array([[True, False, False, False]])
    # truncated alive agent: yes; terminated: no; died (next_alive False): no; dead already: no.
    result = bootstrap_mask(terminated, truncated, alive, next_alive)
    assert result.tolist() == [[True, False, False, False]]


def test_batch_shapes_and_alignment(prison_data: OfflineData, tiny_paths: dict) -> None:
    generator = torch.Generator().manual_seed(0)
    batch = prison_data.sample(64, generator)
    assert batch.obs.shape == (64, 2, 2) and batch.obs.dtype == torch.float32
    assert batch.actions.shape == (64, 2) and batch.actions.dtype == torch.int64
    assert batch.action_mask.shape == (64, 2, 3) and batch.action_mask.all()
    assert batch.state.shape == (64, 4)
    assert torch.equal(batch.team_reward, batch.rewards.sum(1))
    # Prison never kills or terminates: every transition bootstraps, the last of each episode
    # included (it is truncated).
    assert batch.bootstrap.all() and batch.team_bootstrap.all()
    everything = prison_data.batch(torch.arange(len(prison_data)))
    with Dataset(tiny_paths["prison"]) as dataset:
        transitions = dataset.transitions()
    np.testing.assert_array_equal(everything.obs.numpy(), transitions.obs)
    np.testing.assert_array_equal(everything.next_obs.numpy(), transitions.next_obs)
    np.testing.assert_array_equal(everything.actions.numpy(), transitions.actions)
    # Positions, for the coordination graph: (B, N, 2) before and after each step.
    assert batch.positions.shape == (64, 2, 2) and batch.positions.dtype == torch.float32
    np.testing.assert_array_equal(everything.positions.numpy(), transitions.positions)
    np.testing.assert_array_equal(everything.next_positions.numpy(), transitions.next_positions)
    assert prison_data.has_positions and prison_data.spec.view_radius == 0.0
    assert prison_data.spec.to_json()["view_radius"] == 0.0
    assert DataSpec.from_json(prison_data.spec.to_json()).view_radius == 0.0
    assert transitions.truncated[-1].all()
    returns = np.bincount(transitions.episode_index, transitions.rewards.sum(1))
    np.testing.assert_allclose(
        everything.episode_return.numpy(), returns[transitions.episode_index], rtol=1e-6
    )


def test_mixing_team_sizes_pads_agents_and_drops_a_state_that_grows(tiny_paths: dict) -> None:
    data = OfflineData.from_datasets([tiny_paths["prison"], tiny_paths["prison4"]])
    assert data.n_agents == 4 and not data.has_state and data.spec.state_shape is None
    assert [d["n_agents"] for d in data.datasets] == [2, 4]
    small = data.batch(torch.nonzero(data.dataset_index == 0).squeeze(1))
    assert not small.alive[:, 2:].any() and not small.bootstrap[:, 2:].any()
    assert (small.obs[:, 2:] == 0).all() and (small.rewards[:, 2:] == 0).all()
    assert torch.allclose(small.behaviour_probs[:, 2:], torch.full((1,), 1 / 3))
    assert small.action_mask.all()
    assert (small.positions[:, 2:] == 0).all() and (small.next_positions[:, 2:] == 0).all()
    large = data.batch(torch.nonzero(data.dataset_index == 1).squeeze(1))
    assert large.alive.all()
    # Prisoners 2 and 3 live one floor up (cell_width 45 + 1 = 46 units): y = 46.
    assert (large.positions[:, 2:, 1] == 46).all() and (large.positions[:, :2, 1] == 0).all()


def test_entity_rows_pad_rows_and_agents_without_nan(tiny_paths: dict) -> None:
    data = OfflineData.from_datasets([tiny_paths["kaz"], tiny_paths["kaz4"]])
    with Dataset(tiny_paths["kaz"]) as two, Dataset(tiny_paths["kaz4"]) as four:
        rows2 = two.read("observations", 0, 1).shape[2]
        rows4 = four.read("observations", 0, 1).shape[2]
    assert rows4 > rows2
    assert data.spec.obs_shape == (rows4, 5) and data.spec.is_entity_rows
    assert data.spec.obs_mean.shape == (5,)
    batch = data.batch(torch.nonzero(data.dataset_index == 0).squeeze(1))
    assert batch.obs.shape[1:] == (4, rows4, 5)
    assert (batch.obs[:, :, rows2:] == 0).all() and not batch.alive[:, 2:].any()
    for name in ("obs", "rewards", "behaviour_probs"):
        assert torch.isfinite(getattr(batch, name)).all()


def test_images_stay_uint8_with_a_fixed_scale(tiny_paths: dict) -> None:
    data = OfflineData.from_datasets([tiny_paths["prison_image"]])
    batch = data.sample(8, torch.Generator().manual_seed(0))
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape[2:] == (16, 48, 3)
    assert data.spec.obs_dtype == "uint8"
    assert data.spec.obs_mean.tolist() == [0.0] and data.spec.obs_std.tolist() == [255.0]


def test_obs_stats_over_alive_agents_only() -> None:
    observations = np.array([[[1.0, 5.0], [100.0, 100.0]], [[3.0, 5.0], [-100.0, 0.0]]])
    alive = np.array([[True, False], [True, False]])
    mean, std = obs_stats(observations, alive)
    assert mean.tolist() == [2.0, 5.0]
    assert std.tolist() == [1.0, 1.0]  # the second feature is constant: std 0 -> 1


def test_subset_sampling_stays_in_the_subset(prison_data: OfflineData) -> None:
    subset = torch.tensor([3, 7])
    generator = torch.Generator().manual_seed(0)
    batch = prison_data.sample(50, generator, subset)
    allowed = prison_data.batch(subset)
    for row in range(50):
        assert any(torch.equal(batch.obs[row], allowed.obs[k]) for k in range(2))


def test_same_seed_same_batches(prison_data: OfflineData) -> None:
    first = prison_data.sample(16, torch.Generator().manual_seed(5))
    second = prison_data.sample(16, torch.Generator().manual_seed(5))
    third = prison_data.sample(16, torch.Generator().manual_seed(6))
    assert torch.equal(first.obs, second.obs) and not torch.equal(first.actions, third.actions)


def test_datasets_that_cannot_be_mixed(tiny_paths: dict[str, Path]) -> None:
    with pytest.raises(UserError, match="different envs"):
        OfflineData.from_datasets([tiny_paths["prison"], tiny_paths["pursuit"]])
    with pytest.raises(UserError, match="different env options"):
        OfflineData.from_datasets([tiny_paths["prison"], tiny_paths["prison_image"]])
    with pytest.raises(UserError, match="at least one dataset"):
        OfflineData.from_datasets([])


def test_no_behaviour_labels_reach_an_algorithm(prison_data: OfflineData) -> None:
    """The datasets' ground-truth `policy_labels` are dropped after loading: neither the data in
    RAM nor a training batch carries them, so no algorithm can read them."""
    assert not [f.name for f in fields(Batch) if "label" in f.name]
    assert not [name for name in prison_data._arrays if "label" in name]
    batch = prison_data.sample(8, torch.Generator().manual_seed(0))
    assert not [name for name in vars(batch) if "label" in name]
