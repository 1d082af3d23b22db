"""Suites, the result store, score aggregation and the report (a pure function of records)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.report import make_report, marl_eval_json, plot
from benchmark.scores import across_tasks, aggregate
from benchmark.store import ResultStore, load_records
from benchmark.suites import DataSpec, load_suite, suite_names
from datagen.errors import UserError
from tests.benchmark.records import cell_record, golden_records

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    ("fmt", "name"), [("md", "report.md"), ("csv", "report.csv"), ("latex", "report.tex")]
)
def test_report_matches_golden(fmt: str, name: str) -> None:
    assert make_report(golden_records(), fmt) == (GOLDEN / name).read_text()


def test_golden_numbers_are_the_hand_computed_ones() -> None:
    """Per cell the mean ± t(0.975, n - 1) · s / sqrt(n) over the seeds; across tasks the
    trimmed means, gaps and win counts below, and the two-run degenerate bootstrap by hand."""
    by_key = {
        (a.field("kind"), a.algo, a.field("eval_agents"), a.field("data")): a
        for a in aggregate(golden_records())
    }
    # bc {40, 50, 60} at n=2: s = 10, t(0.975, 2) = 4.302653: 50 ± 24.841.
    bc = by_key[("transfer", "bc", 2, "expert")]
    assert bc.mean == pytest.approx(50.0)
    assert bc.t_interval == pytest.approx((25.159, 74.841), abs=1e-3)
    # degenerate bc {60, 61}: s = 0.7071, t(0.975, 1) = 12.706205: 60.5 ± 6.353.
    assert by_key[("degenerate", "bc", 4, "expert")].t_interval == pytest.approx(
        (54.147, 66.853), abs=1e-3
    )
    sac = by_key[("transfer", "sac", 8, "expert")]
    assert sac.n_failed == 1 and np.isnan(sac.mean) and sac.t_interval is None
    # Records without a class get the registry's (the former name iql is independent DQN).
    assert by_key[("transfer", "iql", 4, "expert")].information == "decentralised"

    rows = {(r.kind, r.algo): r for r in across_tasks(aggregate(golden_records()))}
    # bc's 9 transfer scores 20 30 30 40 40 40 50 50 60: the 25 % cut drops 2 at each end, so
    # the IQM is the mean of 30 40 40 40 50 = 40; iql's 30 40 50 50 60 70 70 80 90 give 60.
    assert rows[("transfer", "bc")].iqm.value == pytest.approx(40.0)
    assert rows[("transfer", "bc")].optimality_gap.value == pytest.approx(60.0)
    # Each task's runs are {x, x + 10, x + 20}, so a resample's mean is 30 + 10 S / 9 with S a
    # sum of 9 draws from {0, 1, 2}: P(S <= 3) = 211 / 3^9 = 1.1 %, P(S <= 4) = 625 / 3^9 =
    # 3.2 %, so the 2.5 % quantile is S = 4 and, by symmetry, the 97.5 % one S = 14.
    assert rows[("transfer", "bc")].mean.ci == pytest.approx((30 + 40 / 9, 30 + 140 / 9))
    assert rows[("transfer", "iql")].iqm.value == pytest.approx(60.0)
    # iql against bc: 9, 8.5 and 7 of 9 seed pairs at n=2, 4, 8.
    assert rows[("transfer", "iql")].improvement.value == pytest.approx(24.5 / 27)
    # Classes are compared within: gawi communicates and no communicating BC ran.
    gawi = rows[("transfer", "gawi")]
    assert gawi.information == "communicating" and gawi.baseline is None
    sac = rows[("transfer", "sac")]
    assert sac.matrix.scores.shape == (0, 0) and sac.iqm is None and sac.n_failed == 1
    # Degenerate bc: runs {60, 61} on expert, {30, 31} at 50 %. A resample's IQM drops its
    # lowest and highest, so it is (the higher of the 50 % pair + the lower of the expert
    # pair) / 2: 45 with probability 3/16, 45.5 with 10/16, 46 with 3/16.
    degenerate = rows[("degenerate", "bc")]
    assert degenerate.iqm.value == pytest.approx(45.5)
    assert degenerate.iqm.ci == (45.0, 46.0)
    # The mean's resample adds Binomial(4, 1/2) quarter points to 45: 45 has probability 1/16.
    assert degenerate.mean.ci == (45.0, 46.0)
    assert degenerate.optimality_gap.ci == (54.0, 55.0)


def test_report_json_and_marl_eval_export() -> None:
    document = json.loads(make_report(golden_records(), "json"))
    assert document["cells"]["statistic"] == "mean [95% t-interval over seeds]"
    sac = [r for r in document["cells"]["rows"] if r["algo"] == "sac"][0]
    assert sac["mean"] is None and sac["t_interval"] is None and sac["n_failed"] == 1
    across = document["across_tasks"]
    assert across["interval"].startswith("95% stratified bootstrap")
    iql = [r for r in across["rows"] if (r["kind"], r["algo"]) == ("transfer", "iql")][0]
    assert [task["eval_agents"] for task in iql["tasks"]] == [2, 4, 8]
    assert iql["scores"][0] == [70.0, 50.0, 30.0] and iql["seeds"] == [0, 1, 2]
    assert iql["iqm"]["value"] == pytest.approx(60.0) and len(iql["iqm"]["ci"]) == 2
    assert iql["baseline"] == "bc" and iql["n_improvement_tasks"] == 3
    exported = marl_eval_json(golden_records())
    runs = exported["pursuit"]["transfer-n2-expert-eval-n8"]["iql"]
    assert sorted(runs) == ["run_0", "run_1", "run_2"]
    assert runs["run_0"]["absolute_metrics"]["normalized_score"] == [28.0, 32.0]
    assert runs["run_0"]["step_1"]["step_count"] == 100
    assert "sac" not in exported["pursuit"]["transfer-n2-expert-eval-n8"]


def test_default_and_tuned_runs_are_never_pooled_and_their_change_is_tabled() -> None:
    """Suite tuning-effect runs each algorithm twice; its report keeps the two apart and shows
    the mean before -> after; an algorithm without tuned settings is marked, not compared."""
    records = []
    for seed in range(3):
        for algo, default, tuned, params in (
            ("bc", 40.0, 50.0, {"lr": 1e-3}),
            ("iql", 70.0, 60.0, {"lr": 1e-4}),
            ("sac", 30.0, 30.0, {}),
        ):
            records.append(cell_record(algo, seed, 2, default + seed))
            key = f"transfer-pursuit-n2-expert-{algo}-tuned-s{seed}@n2"
            tuned_cell = {"key": key, "tuned": True, "tuned_params": params}
            records.append(cell_record(algo, seed, 2, tuned + seed, **tuned_cell))
    text = make_report(records, "md")
    # Means 41, 71, 31 at defaults and 51, 61, 31 tuned; three seeds a point apart have s = 1,
    # so each interval is the mean ± t(0.975, 2) / sqrt(3) = ± 2.484.
    assert "| bc | decentralised | 41.0 [38.5, 43.5] |" in text
    assert "| bc | decentralised | 51.0 [48.5, 53.5] |" in text
    assert "| sac (not tuned) | decentralised | 31.0 [28.5, 33.5] |" in text
    effect = text.split("what tuning changed")[1]
    assert "| bc | decentralised | 41.0 -> 51.0 (+10.0) |" in effect
    assert "| iql | decentralised | 71.0 -> 61.0 (-10.0) |" in effect
    assert "sac" not in effect
    exported = marl_eval_json(records)["pursuit"]
    assert sorted(exported) == ["transfer-n2-expert-eval-n2", "transfer-n2-expert-tuned-eval-n2"]


def test_one_seed_shows_no_interval_and_one_task_no_across_task_table() -> None:
    text = make_report([cell_record("bc", 0, 2, 50.0), cell_record("bc", 0, 4, 40.0)], "md")
    assert "| bc | decentralised | 50.0 [n/a] | 40.0 [n/a] |" in text
    assert "across tasks" not in text  # two tasks, one run
    text = make_report([cell_record("bc", seed, 2, 50.0 + seed) for seed in range(3)], "md")
    assert "across tasks" not in text  # three runs, one task


def test_transfer_ratios_divide_by_the_ceiling_trained_at_the_evaluation_size() -> None:
    """BC trained at 2 scores 80 at n=2 and 30 at n=4 (means of 2 seeds); trained at 4 it
    scores 60 at n=4 (its ceiling) and 40 at n=2; trained on {2, 4} it scores 45 at n=4."""
    cells = {
        ((2,), 2): (78.0, 82.0),
        ((2,), 4): (28.0, 32.0),
        ((4,), 2): (38.0, 42.0),
        ((4,), 4): (58.0, 62.0),
        ((2, 4), 4): (44.0, 46.0),
    }
    records = []
    for (train, n), scores in cells.items():
        for seed, score in enumerate(scores):
            name = "+".join(map(str, train))
            key = f"transfer-pursuit-n{name}-expert-bc-s{seed}@n{n}"
            records.append(cell_record("bc", seed, n, score, key=key, train_agents=train))
    text = make_report(records, "md")
    ratios = text.split("transfer ratio on expert data")[1].split("###")[0]
    assert "| bc, trained at n=2 | decentralised | 1.00 | 0.50 |" in ratios  # 30 / 60
    assert "| bc, trained at n=4 | decentralised | 0.50 | 1.00 |" in ratios  # 40 / 80
    assert "| bc, trained at n=2+4 | decentralised |  | 0.75 |" in ratios  # 45 / 60; none at 2
    # Without a model trained at the evaluation size there is no ratio table.
    alone = [r for r in records if r.train_agents == (2,)]
    assert "transfer ratio" not in make_report(alone, "md")


def test_plots_are_written(tmp_path: Path) -> None:
    paths = plot(aggregate(golden_records()), tmp_path)
    names = ["transfer-pursuit-n2-expert.png", "profile-degenerate.png", "profile-transfer.png"]
    assert [p.name for p in paths] == names
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_store_skips_a_truncated_last_line_and_keeps_the_latest(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.append(cell_record("bc", 0, 2, 50.0, key="a", status="failed", error="boom"))
    store.append(cell_record("bc", 0, 2, 50.0, key="a"))
    with open(store.path, "a") as handle:
        handle.write('{"key": "b", "sta')  # a kill mid-write
    assert store.finished_keys() == {"a"}
    store.append(cell_record("bc", 1, 2, 50.0, key="c"))  # the next run appends after the fragment
    assert store.finished_keys() == {"a", "c"}
    assert [r.key for r in load_records(tmp_path)] == ["a", "c"]
    assert load_records(tmp_path)[1] == cell_record("bc", 1, 2, 50.0, key="c"), "a round trip"


def test_store_rejects_corruption_in_the_middle(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    line = json.dumps(cell_record("bc", 0, 2, 50.0).to_json())
    store.path.write_text(f"{line}\n{{not json}}\n{line}\n")
    with pytest.raises(UserError, match="line 2 is not a JSON record"):
        store.records()
    store.path.write_text(f'{line}\n{line[:-1]}, "colour": "red"}}\n')
    with pytest.raises(UserError, match="line 2: unknown field 'colour'"):
        store.records()


#: A record as the runner wrote it before counts were named `n_...` and before records held
#: the information class, the tuned settings or the data seed.
OLD_RECORD = {
    "key": "transfer-prison-n2-expert-bc-s0@n4",
    "suite": "quick",
    "suite_job": "transfer-prison-n2-expert-bc-s0",
    "kind": "transfer",
    "env": "prison",
    "env_options": {"include_last_wall": True},
    "train_agents": [2],
    "data": "expert",
    "regime": "offline",
    "algo": "bc",
    "seed": 0,
    "updates": 1000,
    "batch_size": 256,
    "datasets": ["results/quick/datasets/episodes10-seed0/prison/n2/expert.h5"],
    "eval_episodes": 3,
    "eval_seed": 1000,
    "run_dir": "results/quick/runs/transfer-prison-n2-expert-bc-s0",
    "command": "marl-bench run --suite quick",
    "git_commit": "7a70c92",
    "eval_agents": 4,
    "status": "ok",
    "error": None,
    "returns": [29.0, 30.0, 28.0],
    "scores": [99.0, 100.5, 97.5],
    "team_return_mean": 29.0,
    "team_return_std": 0.8,
    "normalized_score": 99.0,
    "env_metrics": {},
    "train_seconds": 12.5,
    "eval_seconds": 0.5,
    "finished_at": "2026-11-24T12:00:00+0000",
}


def test_records_written_before_n_counts_read_with_the_names_of_now(tmp_path: Path) -> None:
    (tmp_path / "records.jsonl").write_text(json.dumps(OLD_RECORD) + "\n")
    (record,) = load_records(tmp_path)
    assert (record.n_updates, record.n_eval_episodes, record.train_agents) == (1000, 3, (2,))
    assert (record.information, record.tuned, record.tuned_params, record.data_seed) == (
        None,
        False,
        {},
        None,
    )
    (cell,) = aggregate([record])
    assert cell.information == "decentralised" and cell.team_return_mean == 29.0
    # Appended again, it is written with the names of now.
    ResultStore(tmp_path / "again").append(record)
    written = json.loads((tmp_path / "again" / "records.jsonl").read_text())
    assert written["n_updates"] == 1000 and "updates" not in written


def test_shipped_suites_load_and_expand() -> None:
    assert {"quick", "scale-up", "degenerate", "full"} <= set(suite_names())
    quick = load_suite("quick")
    assert len({j.algo for j in quick.jobs()}) == 2 and quick.experiments[0].eval_agents == (2, 4)
    full = load_suite("full")
    assert len(full.jobs()) == len(load_suite("scale-up").jobs()) + len(
        load_suite("degenerate").jobs()
    )
    finetune = [j for j in load_suite("scale-up").jobs() if j.experiment.kind == "finetune"]
    assert {j.regime for j in finetune} == {"pretrained+finetuned", "small-only"}
    for suite in ("scale-up", "degenerate"):
        for exp in load_suite(suite).experiments:
            if exp.kind == "transfer":
                largest = max(n for group in exp.train_agents for n in group)
                assert max(exp.eval_agents) >= 4 * largest


def test_data_specs() -> None:
    spec = DataSpec.parse("expert+degenerate@25")
    assert (spec.base, spec.other, spec.percent) == ("expert", "degenerate", 25)
    assert spec.dataset_quality == "expert-degenerate25"
    assert DataSpec.parse("degenerate-saboteur").tags == ("degenerate-saboteur",)
    with pytest.raises(UserError, match="valid qualities"):
        DataSpec.parse("excellent")
    with pytest.raises(UserError, match="a mixture reads"):
        DataSpec.parse("expert+degenerate")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[[experiment]]\nenv = 'pursuit'\n", "missing key 'train_agents'"),
        (
            "[[experiment]]\nenv='pursuit'\ntrain_agents=[2]\neval_agents=[2]\ndata=['expert']\n"
            "algos=['bc']\nsedes=[0]\n",
            "unknown key 'sedes'; valid keys:",
        ),
        (
            "[[experiment]]\nenv='pursuit'\ntrain_agents=[2]\neval_agents=[999]\ndata=['expert']\n"
            "algos=['bc']\n",
            "pursuit supports 1 to 64 agents, got 999",
        ),
        (
            "[[experiment]]\nenv='pursuit'\ntrain_agents=[2]\neval_agents=[2]\ndata=['expert']\n"
            "algos=['nope']\n",
            "unknown algorithm 'nope'; valid algorithms: bc",
        ),
        ("description = 'x'\n", "at least one"),
        (
            "[[experiment]]\nenv='pursuit'\ntrain_agents=[2]\neval_agents=[2]\ndata=['expert']\n"
            "algos=['bc']\nupdates=10\nn_updates=10\n",
            "'updates' is the former name of 'n_updates'",
        ),
        (
            "[[experiment]]\nkind='finetune'\nenv='pursuit'\ntrain_agents=[2]\neval_agents=[4]\n"
            "data=['expert']\nalgos=['bc']\nseeds=[0, 1, 2]\ndataset_seed=998\n"
            "dataset_per_seed=true\n",
            "experiment 1: eval_seed 1000 is also a data seed \\(the datasets use seeds 998, "
            "999, 1000, 100998, 100999, 101000\\)",
        ),
    ],
)
def test_bad_suites_are_one_line_errors(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(UserError, match=message):
        load_suite(path, known_algos=["bc", "iql"])


def test_suites_written_before_n_counts_read_as_now(tmp_path: Path) -> None:
    table = (
        "[[experiment]]\nkind='finetune'\nenv='pursuit'\ntrain_agents=[2]\neval_agents=[4]\n"
        "data=['expert']\nalgos=['bc']\n{}=7\n{}=8\n{}=9\n{}=3\n{}=11\n"
    )
    old = tmp_path / "old.toml"
    old.write_text(
        table.format(
            "dataset_episodes", "updates", "eval_episodes", "finetune_episodes", "finetune_updates"
        )
    )
    new = tmp_path / "new.toml"
    new.write_text(
        table.format(
            "n_dataset_episodes",
            "n_updates",
            "n_eval_episodes",
            "n_finetune_episodes",
            "n_finetune_updates",
        )
    )
    (exp,) = load_suite(old).experiments
    assert exp == load_suite(new).experiments[0]
    assert (exp.n_dataset_episodes, exp.n_updates, exp.n_eval_episodes) == (7, 8, 9)
    assert (exp.n_finetune_episodes, exp.n_finetune_updates) == (3, 11)


def test_unknown_suite_names_the_valid_ones() -> None:
    with pytest.raises(UserError, match=r"unknown suite 'quik' \(did you mean 'quick'\?\)"):
        load_suite("quik")
