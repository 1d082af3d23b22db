"""fit(): the run directory, logging, checkpoints, and resuming to the exact same parameters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from algos.data import OfflineData
from algos.registry import build_algorithm
from algos.train import (
    TrainSettings,
    fit,
    load_checkpoint,
    read_metrics,
    read_run_config,
    train,
)
from datagen.dataset import Dataset
from datagen.errors import UserError

SMALL = {"hidden_size": 16}
FORMAT1 = Path(__file__).resolve().parent.parent / "fixtures" / "format1"


def parameters(run_dir: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    return state["algorithm"]["networks"]


def run(data: OfflineData, run_dir: Path, n_updates: int, resume: bool = False, **kwargs) -> None:
    algo = build_algorithm("idqn", data.spec, SMALL, seed=3)
    fit(
        algo,
        data,
        TrainSettings(n_updates, batch_size=16, seed=5),
        run_dir,
        log_every=kwargs.pop("log_every", 5),
        checkpoint_every=kwargs.pop("checkpoint_every", 10),
        resume=resume,
        progress=False,
        **kwargs,
    )


def assert_same(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_run_directory(prison_data: OfflineData, tiny_paths: dict, tmp_path: Path) -> None:
    evaluations = []

    def eval_fn(algo) -> dict[str, float]:
        evaluations.append(algo.n_updates)
        return {"score": float(algo.n_updates)}

    run(prison_data, tmp_path / "run", 20, eval_fn=eval_fn, eval_every=15)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    with Dataset(tiny_paths["prison"]) as dataset:
        checksum = dataset.metadata["content_checksum"]
    assert config["algo"] == "idqn" and config["config"]["hidden_size"] == 16
    assert config["datasets"][0]["content_checksum"] == checksum
    assert config["env"]["name"] == "prison" and config["env"]["options"]["include_last_wall"]
    assert config["env"]["n_agents"] == [2]
    assert config["seed"] == 5 and config["n_updates"] == 20 and config["batch_size"] == 16
    assert config["spec"]["obs_shape"] == [2] and len(config["spec"]["obs_mean"]) == 2
    assert "git_commit" in config
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["latest.pt", "step_00000010.pt", "step_00000020.pt"]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["step"] == 20
    rows = read_metrics(tmp_path / "run")
    steps = sorted({row["step"] for row in rows if row["name"] == "loss/td"})
    assert steps == [5, 10, 15, 20]
    assert {"loss/td", "loss/cql", "perf/updates_per_s"} <= {row["name"] for row in rows}
    assert evaluations == [15, 20]
    scores = [(row["step"], row["value"]) for row in rows if row["name"] == "eval/score"]
    assert scores == [(15, 15.0), (20, 20.0)]


def test_resumed_run_ends_with_the_parameters_of_an_uninterrupted_one(
    prison_data: OfflineData, tmp_path: Path
) -> None:
    run(prison_data, tmp_path / "whole", 30)
    run(prison_data, tmp_path / "split", 10)
    run(prison_data, tmp_path / "split", 30, resume=True)
    assert_same(parameters(tmp_path / "whole"), parameters(tmp_path / "split"))
    steps = [row["step"] for row in read_metrics(tmp_path / "split") if row["name"] == "loss/td"]
    assert steps == [5, 10, 15, 20, 25, 30]


def test_a_run_saved_before_neighbourhoods_resumes_and_reads_as_trained(tmp_path: Path) -> None:
    """config.json written before `graph_neighbours`, `graph_neighbourhood` and the spec's
    `view_radius` existed (its data had no positions): the decentralised run resumes to the
    uninterrupted parameters, and a communicating one reads as the whole team (0), which it
    heard."""
    data = OfflineData.from_datasets([FORMAT1 / "pursuit-n2-random-v1.h5"])
    run(data, tmp_path / "whole", 30)
    run(data, tmp_path / "old", 10)
    path = tmp_path / "old" / "config.json"
    config = json.loads(path.read_text())
    for key in ("graph_neighbours", "graph_neighbourhood"):
        del config["config"][key]
    del config["spec"]["view_radius"]
    path.write_text(json.dumps(config))
    run(data, tmp_path / "old", 30, resume=True)
    assert_same(parameters(tmp_path / "whole"), parameters(tmp_path / "old"))
    config["config"]["graph_rounds"] = 1
    path.write_text(json.dumps(config))
    read = read_run_config(tmp_path / "old")
    assert read["config"]["graph_neighbours"] == 0 and read["spec"]["view_radius"] is None
    assert read["config"]["graph_neighbourhood"] == "nearest"


def test_crash_after_the_last_checkpoint_resumes_from_it(
    prison_data: OfflineData, tmp_path: Path
) -> None:
    run(prison_data, tmp_path / "whole", 30)
    # A run killed at step 27: its last checkpoint is step 20, metrics were logged up to 25.
    crashed = tmp_path / "crashed"
    run(prison_data, crashed, 25, checkpoint_every=20)
    shutil.copy(crashed / "checkpoints" / "step_00000020.pt", crashed / "checkpoints" / "latest.pt")
    run(prison_data, crashed, 30, resume=True)
    assert_same(parameters(tmp_path / "whole"), parameters(crashed))
    steps = [row["step"] for row in read_metrics(crashed) if row["name"] == "loss/td"]
    assert steps == [5, 10, 15, 20, 25, 30]  # the rows after step 20 were dropped, then redone


def test_interrupt_saves_a_checkpoint_to_resume_from(
    prison_data: OfflineData, tmp_path: Path
) -> None:
    run(prison_data, tmp_path / "whole", 30)

    def interrupt(algo) -> dict[str, float]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(prison_data, tmp_path / "stopped", 30, eval_fn=interrupt, eval_every=13)
    assert load_checkpoint(tmp_path / "stopped" / "checkpoints" / "latest.pt")["step"] == 13
    run(prison_data, tmp_path / "stopped", 30, resume=True)
    assert_same(parameters(tmp_path / "whole"), parameters(tmp_path / "stopped"))


def test_existing_or_different_runs_are_refused(prison_data: OfflineData, tmp_path: Path) -> None:
    run(prison_data, tmp_path / "run", 10)
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        run(prison_data, tmp_path / "run", 10)
    other = build_algorithm("idqn", prison_data.spec, {"hidden_size": 8}, seed=3)
    with pytest.raises(UserError, match="cannot resume, its config differs"):
        fit(
            other,
            prison_data,
            TrainSettings(20, batch_size=16, seed=5),
            tmp_path / "run",
            resume=True,
            progress=False,
        )
    with pytest.raises(UserError, match="n_updates must be at least 1"):
        run(prison_data, tmp_path / "new", 0)


def test_train_checks_the_config_before_loading_data(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown config key 'gama' for idqn"):
        train("idqn", ["no-such-dataset"], TrainSettings(10), tmp_path, overrides={"gama": "0.9"})
    with pytest.raises(UserError, match="unknown algorithm 'sac2'"):
        train("sac2", ["no-such-dataset"], TrainSettings(10), tmp_path)


def test_fine_tuning_starts_from_a_finished_run_and_counts_its_own_updates(
    prison_data: OfflineData, tiny_paths: dict, tmp_path: Path
) -> None:
    """`init_from`: the finished run's parameters, optimisers, generator and normalisation, a
    fresh update counter, the run it started from in config.json; resumed, it continues from its
    own checkpoint to the parameters of an uninterrupted fine-tuning."""
    pretrained = tmp_path / "pretrained"
    run(prison_data, pretrained, 20)
    small_paths = [str(tiny_paths["prison4"])]  # random play of 4 prisoners: other statistics
    small = OfflineData.from_datasets(small_paths)
    settings = TrainSettings(10, batch_size=16, seed=5)
    # What fine-tuning is: the pretrained algorithm as it finished, its counter at 0.
    by_hand = build_algorithm("idqn", prison_data.spec, SMALL, seed=3)
    by_hand.load_state_dict(load_checkpoint(pretrained / "checkpoints" / "latest.pt")["algorithm"])
    by_hand.n_updates = 0
    fit(by_hand, small, settings, tmp_path / "by-hand", progress=False)

    whole = train(
        "idqn",
        small_paths,
        settings,
        tmp_path / "whole",
        SMALL,
        pretrained,
        checkpoint_every=5,
        progress=False,
    )
    assert (whole.start_step, whole.n_updates) == (0, 10)
    assert_same(parameters(tmp_path / "by-hand"), parameters(tmp_path / "whole"))
    config = read_run_config(tmp_path / "whole")
    assert config["init_from"] == str(pretrained) and config["n_updates"] == 10
    assert config["spec"] == read_run_config(pretrained)["spec"], "the pretrained normalisation"
    assert config["spec"] != small.spec.to_json()
    state = load_checkpoint(tmp_path / "whole" / "checkpoints" / "step_00000005.pt")
    assert state["step"] == state["algorithm"]["n_updates"] == 5

    split = tmp_path / "split"
    train(
        "idqn",
        small_paths,
        TrainSettings(5, 16, 5),
        split,
        SMALL,
        pretrained,
        progress=False,
    )
    resumed = train(
        "idqn",
        small_paths,
        settings,
        split,
        SMALL,
        pretrained,
        resume=True,
        progress=False,
    )
    assert (resumed.start_step, resumed.n_updates) == (5, 10)
    assert_same(parameters(tmp_path / "whole"), parameters(split))

    with pytest.raises(UserError, match="cannot start from .*pretrained: its config differs"):
        train(
            "idqn",
            small_paths,
            settings,
            tmp_path / "other",
            {"hidden_size": 8},
            pretrained,
            progress=False,
        )
