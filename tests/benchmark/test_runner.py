"""The suite runner: real datasets, real training, real online evaluation, on tiny budgets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from algos.train import load_checkpoint
from benchmark.cli import main
from benchmark.runner import CombineStep, make_task, needed_datasets, run_suite
from benchmark.store import ResultStore
from benchmark.suites import job_matches, load_suite, parse_filters
from datagen.collect import CollectRequest
from datagen.errors import UserError

TINY = """
description = "tiny test suite"

[[experiment]]
kind = "transfer"
env = "prison"
env_options = {{ include_last_wall = true }}
train_agents = [2]
eval_agents = {eval_agents}
data = ["expert"]
algos = {algos}
seeds = {seeds}
n_dataset_episodes = 2
n_updates = 30
batch_size = 32
n_eval_episodes = 1

[experiment.config]
all = {{ hidden_size = 32 }}
"""


def tiny_suite(
    tmp_path: Path, eval_agents: str = "[2, 4]", algos: str = '["bc", "idqn"]', seeds: str = "[0]"
) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(eval_agents=eval_agents, algos=algos, seeds=seeds))
    return path


def test_run_records_every_cell_and_resume_skips_them(tmp_path: Path) -> None:
    suite = load_suite(tiny_suite(tmp_path))
    out = tmp_path / "out"
    summary = run_suite(suite, out, progress=False, command="test")
    assert (summary.n_cells, summary.n_ok, summary.n_failed) == (4, 4, 0)
    records = ResultStore(out).records()
    assert sorted(r.key for r in records) == sorted(k for j in suite.jobs() for k in j.cell_keys())
    for record in records:
        assert record.status == "ok" and record.suite == "tiny"
        assert len(record.returns) == 1 and record.command == "test"
        assert record.normalized_score == pytest.approx(record.scores[0])
        assert (record.data_seed, record.n_dataset_episodes, record.n_updates) == (0, 2, 30)
    # The evaluation seeds are shared: both algorithms met the same start positions.
    assert {(r.eval_seed, r.n_eval_episodes) for r in records} == {(1000, 1)}
    config = json.loads(
        (out / "runs" / "transfer-prison-n2-expert-bc-s0" / "config.json").read_text()
    )
    assert config["config"]["hidden_size"] == 32, "the suite's config overrides reach training"
    with pytest.raises(UserError, match="already holds results"):
        run_suite(suite, out, progress=False)
    again = run_suite(suite, out, resume=True, progress=False)
    assert (again.n_skipped, again.n_ok) == (4, 0)
    assert len(ResultStore(out).records()) == 4


def test_a_failing_cell_is_recorded_and_the_suite_goes_on(tmp_path: Path) -> None:
    # Prison has reference scores at its ladder (2, 4, 8, 16), at 32 and at the tuning suite's 3
    # and 6 only: n = 5 cannot be normalized.
    path = tiny_suite(tmp_path, eval_agents="[2, 5]", algos='["bc"]')
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--suite", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1, result.output
    latest = ResultStore(tmp_path / "o").latest()
    failed = latest["transfer-prison-n2-expert-bc-s0@n5"]
    assert failed.status == "failed" and "no reference scores for prison with 5" in failed.error
    assert latest["transfer-prison-n2-expert-bc-s0@n2"].status == "ok"
    assert "1 failed" in result.output
    report = runner.invoke(main, ["report", str(tmp_path / "o")])
    assert report.exit_code == 0 and "— (1 failed)" in report.output


def test_a_nan_loss_fails_its_cell(tmp_path: Path) -> None:
    path = tiny_suite(tmp_path, eval_agents="[2]", algos='["idqn"]')
    path.write_text(path.read_text().replace("all = { hidden_size = 32 }", "idqn = { lr = 1e30 }"))
    summary = run_suite(load_suite(path), tmp_path / "o", progress=False)
    assert (summary.n_ok, summary.n_failed) == (0, 1)
    (record,) = ResultStore(tmp_path / "o").records()
    assert record.status == "failed" and "non-finite training metric loss/" in record.error


def test_finetune_pretrains_then_fine_tunes_against_small_data_alone(tmp_path: Path) -> None:
    path = tiny_suite(tmp_path, eval_agents="[4]", algos='["bc"]')
    text = path.read_text().replace('kind = "transfer"', 'kind = "finetune"')
    path.write_text(
        text.replace(
            "n_eval_episodes = 1",
            "n_eval_episodes = 1\nn_finetune_episodes = 1\nn_finetune_updates = 10",
        )
    )
    out = tmp_path / "o"
    summary = run_suite(load_suite(path), out, progress=False)
    assert (summary.n_ok, summary.n_failed) == (2, 0)
    records = {r.regime: r for r in ResultStore(out).records()}
    assert set(records) == {"pretrained+finetuned", "small-only"}
    assert all(r.eval_agents == 4 for r in records.values())
    # The fine-tuned run started from the offline run at n = 2 and trained on 1 episode at n = 4.
    pretrained = out / "runs" / "transfer-prison-n2-expert-bc-s0"
    assert (pretrained / "checkpoints" / "latest.pt").exists()
    small = records["small-only"].datasets
    assert records["pretrained+finetuned"].datasets == small and "/n4/" in small[0]
    # The fine-tuning datasets' seed is one more than the pretraining ones'.
    assert (records["small-only"].data_seed, records["small-only"].n_updates) == (1, 10)
    tuned = json.loads((Path(records["pretrained+finetuned"].run_dir) / "config.json").read_text())
    assert (tuned["n_updates"], tuned["init_from"]) == (10, str(pretrained))
    own = load_checkpoint(
        Path(records["pretrained+finetuned"].run_dir) / "checkpoints" / "latest.pt"
    )
    assert own["step"] == own["algorithm"]["n_updates"] == 10, "one update counter, from 0"


def test_mixtures_are_combined_from_collected_sources(tmp_path: Path) -> None:
    path = tmp_path / "mix.toml"
    path.write_text(
        TINY.format(eval_agents="[2]", algos='["bc"]', seeds="[0]")
        .replace('data = ["expert"]', 'data = ["expert+degenerate@50"]')
        .replace('kind = "transfer"', 'kind = "degenerate"')
    )
    suite = load_suite(path)
    steps = needed_datasets(tmp_path / "o", suite.jobs())
    assert [type(step) for step in steps] == [CollectRequest, CollectRequest, CombineStep]
    run_suite(suite, tmp_path / "o", progress=False)
    from datagen.dataset import open_dataset

    with open_dataset(steps[-1].out) as dataset:
        assert len(dataset) == 2
        assert dataset.metadata["policy"]["name"] == "combined"
        # One episode of each source: both behaviours' labels are in the data.
        labels = dataset.metadata["policy"]["labels"]
        used = {labels[i] for i in set(dataset.read("policy_labels").ravel().tolist())}
    assert used == {"expert", "adversarial"}


def test_a_dataset_per_seed_is_collected_mixed_and_recorded_per_seed(tmp_path: Path) -> None:
    path = tmp_path / "per-seed.toml"
    path.write_text(
        TINY.format(eval_agents="[4]", algos='["bc"]', seeds="[0, 1]")
        .replace('data = ["expert"]', 'data = ["expert+random@50"]')
        .replace(
            'kind = "transfer"', 'kind = "finetune"\ndataset_seed = 10\ndataset_per_seed = true'
        )
    )
    suite = load_suite(path)
    out = tmp_path / "o"
    steps = needed_datasets(out, suite.jobs())
    collected = {(s.n_agents, s.behaviour.tag, s.seed) for s in steps if type(s) is CollectRequest}
    # Seed s trains on data collected with 10 + s and fine-tunes on data collected with
    # 100,010 + s: no seed's fine-tuning data repeats another seed's training data.
    assert collected == {
        (2, "expert", 10),
        (2, "random", 10),
        (2, "expert", 11),
        (2, "random", 11),
        (4, "expert", 100_010),
        (4, "expert", 100_011),
    }
    mixtures = [s for s in steps if type(s) is CombineStep]
    assert [(m.seed, m.out.parent.parent.parent.name) for m in mixtures] == [
        (10, "episodes2-seed10"),
        (11, "episodes2-seed11"),
    ]
    assert all(f"seed{m.seed}" in source for m in mixtures for source in m.sources)
    tasks = {(j.regime, j.seed): make_task(j, out, j.eval_agents, "test") for j in suite.jobs()}
    pretrain = tasks["pretrained+finetuned", 1].pretrain.record
    assert (pretrain.data_seed, pretrain.datasets) == (11, (str(mixtures[1].out),))
    small = tasks["small-only", 1].record
    assert (small.data_seed, small.n_dataset_episodes) == (100_011, 5)
    assert "/episodes5-seed100011/" in small.datasets[0]
    # Without the option every seed shares the datasets of dataset_seed (and + 1 to fine-tune).
    path.write_text(path.read_text().replace("dataset_per_seed = true", ""))
    shared = needed_datasets(out, load_suite(path).jobs())
    assert {s.seed for s in shared if type(s) is CollectRequest} == {10, 11}


def test_killed_run_resumes_without_redoing_cells(tmp_path: Path) -> None:
    path = tiny_suite(tmp_path, eval_agents="[2]", algos='["bc"]', seeds="[0, 1, 2, 3]")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "benchmark.cli",
        "run",
        "--suite",
        str(path),
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    store = ResultStore(out)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (store.path.exists() and store.records()):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = [r.key for r in store.records()]
    assert 1 <= len(before) < 4, "the kill should land after the first cell and before the last"
    result = subprocess.run(
        [*command, "--resume", "--no-report"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    keys = [r.key for r in store.records()]
    assert sorted(set(keys)) == sorted(keys), "a finished cell was recorded twice"
    assert len(keys) == 4 and keys[: len(before)] == before


def test_ray_executor_runs_the_same_cells(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    suite = load_suite(tiny_suite(tmp_path, eval_agents="[2]"))
    summary = run_suite(suite, tmp_path / "ray", executor="ray", workers=2, progress=False)
    assert (summary.n_ok, summary.n_failed) == (2, 0)
    local = run_suite(suite, tmp_path / "local", progress=False)
    assert local.n_ok == 2
    scores = {
        name: {r.key: r.returns for r in ResultStore(tmp_path / name).records()}
        for name in ("ray", "local")
    }
    assert scores["ray"] == scores["local"], (
        "the same seeds give the same returns on either executor"
    )


def test_only_filters_select_jobs(tmp_path: Path) -> None:
    suite = load_suite(tiny_suite(tmp_path, seeds="[0, 1]"))
    assert [job_matches(j, parse_filters(["algo=bc", "seed=1"])) for j in suite.jobs()] == [
        False,
        True,
        False,
        False,
    ]
    with pytest.raises(UserError, match="expected KEY=VALUE with KEY one of kind, env"):
        parse_filters(["colour=red"])
    with pytest.raises(UserError, match="no job of suite 'tiny' matches"):
        run_suite(suite, tmp_path / "o", only=parse_filters(["algo=sac"]), progress=False)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--suite", "quik"])
    assert result.exit_code == 2 and "did you mean 'quick'" in result.output
    result = runner.invoke(main, ["run", "--suite", "quick", "--address", "x:1"])
    assert result.exit_code == 2 and "--address only applies to --executor ray" in result.output
    result = runner.invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no results in" in result.output
    assert "Traceback" not in result.output


def test_report_command_writes_formats_plots_and_export(tmp_path: Path) -> None:
    from tests.benchmark.records import golden_records

    store = ResultStore(tmp_path)
    for record in golden_records():
        store.append(record)
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "report",
            str(tmp_path),
            "--format",
            "csv",
            "--output",
            str(tmp_path / "r.csv"),
            "--plots",
            str(tmp_path / "plots"),
            "--marl-eval",
            str(tmp_path / "me.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.csv").read_text() == (
        Path(__file__).parent / "golden" / "report.csv"
    ).read_text()
    assert list((tmp_path / "plots").glob("*.png"))
    assert "pursuit" in json.loads((tmp_path / "me.json").read_text())
