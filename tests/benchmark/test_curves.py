"""`marl-bench curves`: real datasets, training and checkpoint evaluation on tiny budgets; the
budget rule, the report and the plot on hand-made records."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.curves import (
    EVAL_SEED,
    CurvesSpec,
    budget_updates,
    curves_report,
    report_curves,
    run_curves,
)
from benchmark.store import CellRecord, ResultStore
from datagen.errors import UserError

TINY = CurvesSpec(
    env="prison",
    n_agents=2,
    data="expert",
    algos=("bc",),
    n_updates=40,
    checkpoint_every=20,
    n_seeds=2,
    n_eval_episodes=2,
    n_dataset_episodes=2,
    env_options={"max_cycles": 30},
    overrides={"hidden_size": "16"},
)
#: The same run on the command line.
TINY_ARGS = [
    "curves",
    "--env",
    "prison",
    "--agents",
    "2",
    "--option",
    "max_cycles=30",
    "--dataset-episodes",
    "2",
    "--algo",
    "bc",
    "--set",
    "hidden_size=16",
    "--updates",
    "40",
    "--every",
    "20",
    "--seeds",
    "2",
    "--episodes",
    "2",
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_every_point_is_recorded_and_resume_redoes_none(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_curves(replace(TINY, n_seeds=1), out, progress=False, command="test")
    assert (first.n_cells, first.n_ok, first.n_failed) == (2, 2, 0)
    with pytest.raises(UserError, match="already holds results"):
        run_curves(TINY, out, progress=False)
    # A partial run (one seed of two) resumed: seed 0's points are not redone.
    second = run_curves(TINY, out, resume=True, progress=False, command="test")
    assert (second.n_cells, second.n_skipped, second.n_ok) == (4, 2, 2)
    records = ResultStore(out).records()
    assert sorted(r.key for r in records) == [
        "curves-bc-s0@u20",
        "curves-bc-s0@u40",
        "curves-bc-s1@u20",
        "curves-bc-s1@u40",
    ]
    for record in records:
        assert record.status == "ok" and record.command == "test"
        assert (record.env, record.env_options) == ("prison", {"max_cycles": 30})
        assert (record.train_agents, record.eval_agents) == ((2,), 2)
        assert record.data_seed == record.seed, "each seed trains on its own data"
        assert (record.eval_seed, record.n_eval_episodes) == (EVAL_SEED, 2)
        assert (record.n_run_updates, record.checkpoint_every) == (40, 20)
        assert record.config_overrides["hidden_size"] == 16
        assert record.information == "decentralised" and record.tuned is True
        assert record.checkpoint == f"step_{record.n_updates:08d}.pt"
        assert len(record.returns) == 2 and record.train_seconds > 0
        assert record.normalized_score == pytest.approx(np.mean(record.scores))
        assert record.team_return_mean == pytest.approx(np.mean(record.returns))
    datasets = {r.seed: r.datasets for r in records}
    assert datasets[0] != datasets[1] and "seed1" in datasets[1][0]
    config = json.loads((out / "runs" / "bc-s1" / "config.json").read_text())
    assert config["config"]["hidden_size"] == 16 and config["seed"] == 1

    # Killed after its last training but before its last record: resume evaluates the missing
    # checkpoint without training again, and gets the same returns from the same checkpoint.
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    lost = json.loads(lines[-1])
    (out / "records.jsonl").write_text("".join(lines[:-1]))
    checkpoint = out / "runs" / "bc-s1" / "checkpoints" / "step_00000040.pt"
    written = checkpoint.stat().st_mtime_ns
    third = run_curves(TINY, out, resume=True, progress=False, command="test")
    assert (third.n_skipped, third.n_ok) == (3, 1)
    assert checkpoint.stat().st_mtime_ns == written
    again = ResultStore(out).latest()[lost["key"]]
    assert list(again.returns) == lost["returns"]
    assert len(ResultStore(out).records()) == 4

    with pytest.raises(UserError, match="started with n_eval_episodes = 2, not 3"):
        run_curves(replace(TINY, n_eval_episodes=3), out, resume=True, progress=False)


def test_cli_prints_the_curves_and_writes_budget_and_plot(tmp_path: Path) -> None:
    out, plot = tmp_path / "out", tmp_path / "plots" / "curves.png"
    runner = CliRunner()
    result = runner.invoke(main, [*TINY_ARGS, "--out", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "4 points, 0 already done, 4 ok and 0 failed now" in result.output
    budget = json.loads((out / "budget.json").read_text())
    report = curves_report(list(ResultStore(out).latest().values()))
    assert budget["budget_updates"] == report.budget in (20, 40)
    assert f"{report.budget} (budget)" in result.output
    assert f"budget: {report.budget} updates" in result.output
    assert [p["updates"] for p in budget["per_update_means"]["bc"]] == [20, 40]
    assert {r.eval_seed for r in ResultStore(out).records()} == {EVAL_SEED}
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    records = (out / "records.jsonl").read_text()
    plot.unlink()
    (out / "budget.json").unlink()
    # The report is a function of the records alone: rebuilt without training.
    rebuilt = runner.invoke(
        main, ["curves", "--out", str(out), "--report-only", "--plot", str(plot)]
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads((out / "budget.json").read_text()) == budget
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    assert "already done" not in rebuilt.output, "nothing trained"
    assert (out / "records.jsonl").read_text() == records


@pytest.mark.parametrize(
    ("means", "budget"),
    [
        ({1000: 10.0, 2000: 50.0, 3000: 58.0, 4000: 60.0}, 3000),
        ({4000: 60.0, 1000: 10.0, 3000: 58.0, 2000: 50.0}, 3000),  # any order
        ({1000: 10.0, 2000: 55.0, 3000: 60.0}, 2000),  # exactly 5 below the best: within
        ({1000: 10.0, 2000: 54.9, 3000: 60.0}, 3000),  # 5.1 below: not
        ({1000: 1.0, 2000: 3.3, 3000: 8.3}, 2000),  # 8.3 - 3.3 is 5.000000000000001 in floats
        ({1000: 30.0, 2000: 40.0, 3000: 20.0}, 2000),  # the best need not be the last
        ({1000: float("nan"), 2000: 40.0}, 2000),  # a count without a score is skipped
        ({1000: float("nan")}, None),
        ({}, None),
    ],
)
def test_budget_rule(means: dict[int, float], budget: int | None) -> None:
    assert budget_updates(means) == budget


def point(algo: str, seed: int, updates: int, score: float | None, **extra: Any) -> CellRecord:
    """A hand-made record of one point (not produced by a run)."""
    record = {
        "key": f"curves-{algo}-s{seed}@u{updates}",
        "status": "ok" if score is not None else "failed",
        "error": None if score is not None else "RuntimeError: boom",
        "kind": "curves",
        "env": "pursuit",
        "train_agents": (2,),
        "eval_agents": 2,
        "data": "expert",
        "algo": algo,
        "information": "decentralised",
        "seed": seed,
        "n_updates": updates,
        "normalized_score": score,
    }
    return CellRecord(**(record | extra))


def hand_records() -> list[CellRecord]:
    # BC's mean over its two seeds: 10, 50, 58, 60 (budget at 3000); implicit-ql 20 ... 80.
    records = []
    for updates, bc, iql in [(1000, 10, 20), (2000, 50, 40), (3000, 58, 60), (4000, 60, 80)]:
        records += [point("bc", 0, updates, bc - 10.0), point("bc", 1, updates, bc + 10.0)]
        records += [point("implicit-ql", s, updates, float(iql)) for s in (0, 1)]
    return records + [point("bc", 2, 4000, None)]


def test_report_of_hand_made_records(tmp_path: Path) -> None:
    report = curves_report(hand_records())
    assert list(report.curves) == ["bc", "implicit-ql"]
    assert (report.budget, report.bc_best, report.bc_best_updates) == (3000, 60.0, 4000)
    assert report.best_at_last
    first = report.curves["bc"][0]
    assert (first.updates, first.scores, first.mean) == (1000, (0.0, 20.0), 10.0)
    # mean ± t(0.975, 1) · s / sqrt(2) with s = sqrt(200): 10 ± 12.7062 · 10
    assert first.t_interval == pytest.approx((10 - 127.062, 10 + 127.062), abs=1e-3)
    last = report.curves["bc"][-1]
    assert (last.seeds, last.n_failed) == ((0, 1), 1), "a failed seed is counted, not averaged"
    flat = report.curves["implicit-ql"][0]
    assert flat.t_interval == pytest.approx((20.0, 20.0))

    store = ResultStore(tmp_path)
    for record in hand_records():
        store.append(record)
    plot = tmp_path / "curves.png"
    report_curves(tmp_path, plot)
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    budget = json.loads((tmp_path / "budget.json").read_text())
    assert (budget["env"], budget["n_agents"], budget["data"]) == ("pursuit", 2, "expert")
    assert (budget["budget_updates"], budget["bc_best"]) == (3000, 60.0)
    assert "within 5 points" in budget["rule"]
    means = {p["updates"]: p["mean"] for p in budget["per_update_means"]["bc"]}
    assert means == {1000: 10.0, 2000: 50.0, 3000: 58.0, 4000: 60.0}

    result = CliRunner().invoke(main, ["curves", "--out", str(tmp_path), "--report-only"])
    assert result.exit_code == 0, result.output
    assert "3000 (budget)" in result.output and "10.0 [-117.1, 137.1]" in result.output
    assert "60.0 [-67.1, 187.1] (1 failed)" in result.output


def test_without_bc_the_curves_print_and_the_budget_is_not_set(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    for record in hand_records():
        if record.algo != "bc":
            store.append(record)
    result = CliRunner().invoke(main, ["curves", "--out", str(tmp_path), "--report-only"])
    assert result.exit_code == 0, result.output
    assert "80.0 [80.0, 80.0]" in result.output
    assert "no budget: the rule reads bc's curve" in result.output
    assert json.loads((tmp_path / "budget.json").read_text())["budget_updates"] is None


def test_records_of_two_settings_are_refused() -> None:
    records = hand_records() + [point("bc", 0, 1000, 5.0, env="prison", key="other")]
    with pytest.raises(UserError, match="mix 2 settings"):
        curves_report(records)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--env": "chess"}, "unknown env 'chess'"),
        ({"--algo": "dqn9"}, "unknown algorithm 'dqn9'"),
        ({"--every": "15"}, "--every 15 must divide --updates 40"),
        ({"--seeds": "0"}, "--seeds must be at least 1, got 0"),
        ({"--updates": "0"}, "--updates must be at least 1, got 0"),
        ({"--agents": "5"}, "no reference scores for prison with 5 agents"),
        ({"--set": "nonsense=1"}, "no algorithm of bc has the config field 'nonsense'"),
        ({"--eval-seed": "1"}, "--eval-seed 1 is also a data seed"),
        ({"--data": "superb"}, "unknown data quality 'superb'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    args = list(TINY_ARGS)
    for option, value in change.items():
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message in lines[0]
    assert not (tmp_path / "out").exists(), "nothing ran"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["curves", "--algo", "bc", "--updates", "40"], "--env is required"),
        (["curves", "--report-only"], "--report-only reads --out"),
        (["curves", "--env", "prison", "--agents", "2", "--updates", "40"], "--algo is required"),
    ],
)
def test_missing_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert message in result.output


def test_report_only_without_records_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["curves", "--out", str(tmp_path), "--report-only"])
    assert result.exit_code == 2
    assert "no curve records in" in result.output and len(result.output.strip().splitlines()) == 1
