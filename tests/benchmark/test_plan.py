"""`marl-bench plan` and `perf eval --save`: counts and hours of a hand-written suite against
hand-computed numbers, the costs file's merge and checks on hand-made rows. Nothing is trained,
collected or timed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.perf import (
    EvalCost,
    merge_cost_rows,
    read_cost_rows,
    save_cost_rows,
)
from benchmark.plan import at_size, plan_suite, training_runs
from benchmark.runner import make_task
from benchmark.suites import load_suite, parse_filters
from datagen.errors import UserError

#: prison: transfer on 2 and on 2+4 agents, on expert data and a mixture, 2 algorithms, 2
#: seeds; fine-tuning bc at 4 and 8 from the transfer run of 2 agents; pursuit: one idqn job.
SUITE = """
description = "plan test suite"

[[experiment]]
kind = "transfer"
env = "prison"
train_agents = [2, [2, 4]]
eval_agents = [2, 8]
data = ["expert", "expert+random@25"]
algos = ["bc", "idqn"]
seeds = [0, 1]
dataset_per_seed = {per_seed}
n_dataset_episodes = 10
n_updates = 1000
n_eval_episodes = 3

[[experiment]]
kind = "finetune"
env = "prison"
train_agents = [2]
eval_agents = [4, 8]
data = ["expert"]
algos = ["bc"]
seeds = [0, 1]
dataset_per_seed = {per_seed}
n_dataset_episodes = 10
n_updates = 1000
n_eval_episodes = 3
n_finetune_episodes = 2
n_finetune_updates = 200

[[experiment]]
kind = "transfer"
env = "pursuit"
train_agents = [2]
eval_agents = [2, 4]
data = ["expert"]
algos = ["idqn"]
seeds = [0]
n_dataset_episodes = 5
n_updates = 500
n_eval_episodes = 1
"""


def suite_file(tmp_path: Path, per_seed: bool = False) -> Path:
    path = tmp_path / "plan-test.toml"
    path.write_text(SUITE.format(per_seed=str(per_seed).lower()))
    return path


def row(env: str, n: int, algo: str, per_episode: float, per_1k: float, hidden: int = 256) -> dict:
    return EvalCost(env, n, algo, 4, 100.0, per_episode, 256, per_1k, hidden).as_dict()


#: prison: bc at 2 and 4 agents, idqn at 2 and 8; pursuit: bc alone, at 2 and 8.
COSTS = [
    row("prison", 2, "bc", 0.1, 20.0),
    row("prison", 4, "bc", 0.2, 30.0),
    row("prison", 2, "idqn", 0.3, 50.0),
    row("prison", 8, "idqn", 0.6, 110.0),
    row("pursuit", 2, "bc", 0.5, 40.0),
    row("pursuit", 8, "bc", 1.1, 100.0),
]


def cost_rows(rows: list[dict]) -> list[EvalCost]:
    return [EvalCost.from_dict(r) for r in rows]


def test_at_size_reads_measured_interpolated_and_extrapolated_values() -> None:
    points = {2: 10.0, 4: 20.0, 8: 60.0}
    assert at_size(points, 4) == at_size(points, 4.0)
    assert (at_size(points, 4).value, at_size(points, 4).how) == (20.0, "measured")
    three = at_size(points, 3)
    assert (three.value, three.how, three.between) == (15.0, "interpolated", (2, 4))
    six = at_size(points, 6)
    assert (six.value, six.how, six.between) == (40.0, "interpolated", (4, 8))
    sixteen = at_size(points, 16)  # the line through 4 and 8: 10 per agent
    assert (sixteen.value, sixteen.how, sixteen.between) == (140.0, "extrapolated", (4, 8))
    one = at_size(points, 1)  # the line through 2 and 4: 5 per agent
    assert (one.value, one.how, one.between) == (5.0, "extrapolated", (2, 4))
    assert at_size({2: 1.0, 4: 9.0}, 1).value == 0.0, "never below 0"
    single = at_size({4: 7.0}, 16)
    assert (single.value, single.how, single.between) == (7.0, "one size", (4,))
    with pytest.raises(ValueError):
        at_size({}, 2)


@pytest.mark.parametrize("per_seed", [False, True])
def test_counts_of_a_hand_written_suite(tmp_path: Path, per_seed: bool) -> None:
    plan = plan_suite(load_suite(suite_file(tmp_path, per_seed)))
    prison, pursuit = plan.envs
    # Transfer: 2 sizes x 2 data x 2 algos x 2 seeds = 16 runs of 1,000 updates, 2 cells each.
    # Fine-tuning: 2 targets x 2 regimes x 2 seeds = 8 runs of 200 updates, 1 cell each; their
    # pretraining runs are the transfer runs of bc on 2 agents' expert data (seeds 0 and 1).
    assert (prison.n_runs, prison.n_updates) == (16 + 8, 16 * 1000 + 8 * 200)
    assert (prison.n_shared, prison.n_pretraining) == (2, 0)
    assert (prison.n_cells, prison.n_eval_episodes) == (32 + 8, (32 + 8) * 3)
    if per_seed:
        # Per seed: expert and random at 2 and 4 agents (10 episodes), the fine-tuning data at
        # 4 and 8 (2 episodes), and 2 mixtures, each for seed 0 and seed 1.
        assert prison.datasets == {2: (4, 40), 4: (6, 44), 8: (2, 4)}
        assert prison.n_mixtures == 4
    else:
        assert prison.datasets == {2: (2, 20), 4: (3, 22), 8: (1, 2)}
        assert prison.n_mixtures == 2
    assert (pursuit.n_runs, pursuit.n_updates, pursuit.n_cells, pursuit.n_eval_episodes) == (
        1,
        500,
        2,
        2,
    )
    assert pursuit.datasets == {2: (1, 5)}
    total = plan.total()
    assert (total.n_runs, total.n_cells, total.n_updates) == (25, 42, 18_100)
    assert total.n_datasets == prison.n_datasets + 1
    assert not plan.costed and total.core_hours is None and plan.notes == []


def test_fine_tuning_alone_trains_its_pretraining_runs(tmp_path: Path) -> None:
    suite = load_suite(suite_file(tmp_path))
    plan = plan_suite(suite, only=parse_filters(["kind=finetune"]))
    (prison,) = plan.envs
    assert (prison.n_runs, prison.n_updates) == (8 + 2, 8 * 200 + 2 * 1000)
    assert (prison.n_shared, prison.n_pretraining) == (0, 2)
    assert prison.datasets == {2: (1, 10), 4: (1, 2), 8: (1, 2)}


def test_the_runner_trains_a_shared_pretraining_run_in_the_transfer_jobs_directory(
    tmp_path: Path,
) -> None:
    jobs = load_suite(suite_file(tmp_path)).jobs()
    finetuned = [job for job in jobs if job.regime == "pretrained+finetuned" and job.seed == 0]
    transfer = next(job for job in jobs if job.name == "transfer-prison-n2-expert-bc-s0")
    out = tmp_path / "out"
    transfer_dir = make_task(transfer, out, (2,), "test").record.run_dir
    for job in finetuned:
        pretrain = make_task(job, out, (job.target,), "test").pretrain
        assert pretrain is not None and pretrain.record.run_dir == transfer_dir
    runs = {run.name: run for run in training_runs(jobs)}
    assert runs[transfer.name].pretraining and runs[transfer.name].evaluated


def test_hours_against_hand_computed_costs(tmp_path: Path) -> None:
    suite = load_suite(suite_file(tmp_path))
    plan = plan_suite(suite, cost_rows(COSTS), workers=2)
    prison, pursuit = plan.envs
    algos = {(a.env, a.algo): a for a in plan.algos}
    # bc, s / 1k updates: 20 at 2 agents, 25 at 3 (the mean of 2+4, between 2 and 4), 30 at 4,
    # 50 at 8 (beyond 4: 30 + 5 x 4). Transfer: 4 runs x 1k updates at 2, 4 at 2+4;
    # fine-tuning: 4 runs x 200 updates at 4 and 4 at 8.
    bc_train_s = 4 * 20 + 4 * 25 + 4 * 0.2 * 30 + 4 * 0.2 * 50
    # idqn's own rows: 50 at 2, 60 at 3 (between 2 and 8).
    idqn_train_s = 4 * 50 + 4 * 60
    # s / episode: bc 0.1 at 2, 0.2 at 4, 0.4 at 8 (beyond 4); idqn 0.3 at 2, 0.6 at 8.
    bc_eval_s = 8 * 3 * (0.1 + 0.4) + 4 * 3 * 0.2 + 4 * 3 * 0.4
    idqn_eval_s = 8 * 3 * (0.3 + 0.6)
    assert algos[("prison", "bc")].train_hours == pytest.approx(bc_train_s / 3600)
    assert algos[("prison", "idqn")].train_hours == pytest.approx(idqn_train_s / 3600)
    assert algos[("prison", "bc")].eval_hours == pytest.approx(bc_eval_s / 3600)
    assert algos[("prison", "idqn")].eval_hours == pytest.approx(idqn_eval_s / 3600)
    assert (bc_train_s, idqn_train_s, bc_eval_s + idqn_eval_s) == pytest.approx((244, 440, 40.8))
    # Collection with bc's rows: 20 episodes at 2, 22 at 4, 2 at 8.
    prison_collect_s = 20 * 0.1 + 22 * 0.2 + 2 * 0.4
    assert prison.train_hours == pytest.approx(684 / 3600)
    assert prison.eval_hours == pytest.approx(40.8 / 3600)
    assert prison.collect_hours == pytest.approx(prison_collect_s / 3600)
    assert prison.core_hours == pytest.approx((684 + 40.8 + 7.2) / 3600)
    assert prison.wall_hours(2) == pytest.approx((7.2 + (684 + 40.8) / 2) / 3600)
    # pursuit's idqn has no rows of its own: bc's, 40 s / 1k updates and 0.5 s / episode at 2,
    # 0.7 at 4 (between 2 and 8).
    assert algos[("pursuit", "idqn")].rows_algo == "bc"
    assert algos[("prison", "idqn")].rows_algo == "idqn"
    assert pursuit.train_hours == pytest.approx(500 / 1000 * 40 / 3600)
    assert pursuit.eval_hours == pytest.approx((0.5 + 0.7) / 3600)
    assert pursuit.collect_hours == pytest.approx(5 * 0.5 / 3600)
    total = plan.total()
    assert total.core_hours == pytest.approx((732 + 23.7) / 3600)
    assert total.wall_hours(2) == pytest.approx((369.6 + 13.1) / 3600)
    notes = "\n".join(plan.notes)
    for line in (
        "prison bc s / 1k updates at n=3: interpolated between n=2 and n=4",
        "prison bc s / 1k updates at n=8: extrapolated from n=2 and n=4",
        "prison bc s / episode at n=8: extrapolated from n=2 and n=4",
        "prison idqn s / 1k updates at n=3: interpolated between n=2 and n=8",
        "pursuit bc s / episode at n=4: interpolated between n=2 and n=8",
        "rows ≈ bc: 1 algorithm without rows of their own",
        "collection costed as BC's evaluation episodes",
    ):
        assert line in notes
    assert "no costs for" not in notes and "batches of" not in notes


def test_envs_and_algorithms_without_costs_are_sizes_only(tmp_path: Path) -> None:
    suite = load_suite(suite_file(tmp_path))
    prison_only = [r for r in COSTS if r["env"] == "prison"]
    plan = plan_suite(suite, cost_rows(prison_only))
    prison, pursuit = plan.envs
    assert pursuit.core_hours is None and pursuit.n_runs == 1
    assert plan.total().core_hours == pytest.approx(prison.core_hours)
    assert "no costs for pursuit in the costs file: sizes only" in "\n".join(plan.notes)
    # prison with idqn's rows alone: bc has none of its own nor bc's to fall back on.
    plan = plan_suite(suite, cost_rows([r for r in prison_only if r["algo"] == "idqn"]))
    prison = plan.envs[0]
    assert (prison.train_hours, prison.collect_hours, plan.total().core_hours) == (None,) * 3
    notes = "\n".join(plan.notes)
    assert "no costs for bc in prison" in notes
    assert "no bc rows for prison: its collection not estimated" in notes


def test_batch_sizes_other_than_the_rows_are_said(tmp_path: Path) -> None:
    path = tmp_path / "batch.toml"
    path.write_text(
        SUITE.format(per_seed="false").replace(
            "n_updates = 500", "n_updates = 500\nbatch_size = 64"
        )
    )
    plan = plan_suite(load_suite(path), cost_rows(COSTS))
    assert (
        "pursuit idqn trains on batches of 64; its rows were measured at 256 (not scaled)"
        in plan.notes
    )


def test_rows_of_the_models_hidden_size_cost_it_else_the_nearest_width_is_said(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wide.toml"
    # pursuit's one idqn job (500 updates at 2 agents, 1 episode at 2 and at 4) at hidden 96,
    # costed with bc's rows, at 64 (40 s / 1k updates) and 128 (70): 96 is as near to both, the
    # wider wins.
    path.write_text(
        SUITE.format(per_seed="false") + "\n[experiment.config]\nall = { hidden_size = 96 }\n"
    )
    rows = [
        row("pursuit", 2, "bc", 0.5, 40.0, hidden=64),
        row("pursuit", 2, "bc", 0.8, 70.0, hidden=128),
    ]
    only = parse_filters(["env=pursuit"])
    plan = plan_suite(load_suite(path), cost_rows(rows), only=only)
    (pursuit,) = plan.envs
    assert pursuit.train_hours == pytest.approx(0.5 * 70.0 / 3600)
    assert pursuit.eval_hours == pytest.approx(2 * 0.8 / 3600)
    assert (
        "pursuit bc at hidden size 96: costed with rows measured at 128 (not scaled; "
        "perf eval --set hidden_size=96 measures it)" in plan.notes
    )
    # At a measured width its own rows, and nothing said.
    path.write_text(path.read_text().replace("hidden_size = 96", "hidden_size = 64"))
    plan = plan_suite(load_suite(path), cost_rows(rows), only=only)
    assert plan.envs[0].train_hours == pytest.approx(0.5 * 40.0 / 3600)
    assert not any("hidden size" in note for note in plan.notes)


def test_rows_measured_with_the_jobs_env_options_cost_it_else_those_without_are_said(
    tmp_path: Path,
) -> None:
    path = tmp_path / "options.toml"
    suite = SUITE.format(per_seed="false").replace(
        'env = "pursuit"', 'env = "pursuit"\nenv_options = { obs_range = 5 }'
    )
    path.write_text(suite)
    plain = row("pursuit", 2, "bc", 0.5, 40.0)
    narrow = {**row("pursuit", 2, "bc", 0.3, 20.0), "options": {"obs_range": 5}}
    only = parse_filters(["env=pursuit"])
    plan = plan_suite(load_suite(path), cost_rows([plain, narrow]), only=only)
    (pursuit,) = plan.envs
    # idqn's 500 updates and its 2 episodes, and the 5 collected episodes, all at 2 agents.
    assert pursuit.train_hours == pytest.approx(0.5 * 20.0 / 3600)
    assert pursuit.eval_hours == pytest.approx(2 * 0.3 / 3600)
    assert pursuit.collect_hours == pytest.approx(5 * 0.3 / 3600)
    assert not any("env options" in note for note in plan.notes)
    plan = plan_suite(load_suite(path), cost_rows([plain]), only=only)
    assert plan.envs[0].train_hours == pytest.approx(0.5 * 40.0 / 3600)
    assert (
        'pursuit bc with env options {"obs_range": 5}: costed with rows measured with {} '
        "(not scaled; perf eval --option KEY=VALUE measures them)" in plan.notes
    )


def test_merge_replaces_rows_of_the_same_key_and_sorts() -> None:
    old = [row("prison", 4, "bc", 0.2, 30.0), row("prison", 2, "bc", 0.1, 20.0)]
    new = [row("prison", 2, "bc", 0.15, 25.0), row("prison", 2, "idqn", 0.3, 50.0)]
    merged = merge_cost_rows(old, new)
    assert [(r["env"], r["n_agents"], r["algo"]) for r in merged] == [
        ("prison", 2, "bc"),
        ("prison", 2, "idqn"),
        ("prison", 4, "bc"),
    ]
    assert merged[0]["seconds_per_episode"] == 0.15


def test_save_merges_invocations_into_one_file(tmp_path: Path) -> None:
    path = tmp_path / "costs.json"
    first = {"command": "first", "date": "d1", "cpu_count": 2}
    save_cost_rows(path, cost_rows(COSTS[:2]), first)
    second = {"command": "second", "date": "d2", "cpu_count": 2}
    replaced = EvalCost("prison", 4, "bc", 4, 100.0, 0.25, 256, 35.0, 256)
    rows = save_cost_rows(path, [replaced, *cost_rows(COSTS[2:3])], second)
    assert rows == read_cost_rows(path)
    assert [(r["n_agents"], r["algo"], r["command"]) for r in rows] == [
        (2, "bc", "first"),
        (2, "idqn", "second"),
        (4, "bc", "second"),
    ]
    assert rows[2]["seconds_per_1k_updates"] == 35.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"rows": []}', "holds a JSON list of rows"),
        ("[1]", "row 1 is not an object"),
        (json.dumps([{**COSTS[0], "seconds_per_episode": -1}]), "'seconds_per_episode'"),
        (json.dumps([{**COSTS[0], "n_agents": True}]), "'n_agents'"),
        (json.dumps([{k: v for k, v in COSTS[0].items() if k != "env"}]), "no valid 'env'"),
        (json.dumps([COSTS[0], COSTS[0]]), "row 2 repeats ('prison', 2, 'bc', 256, '{}')"),
        (json.dumps([{**COSTS[0], "hidden_size": 0}]), "no valid 'hidden_size'"),
        (json.dumps([{**COSTS[0], "options": [1]}]), "row 1's 'options' is not an object"),
    ],
)
def test_bad_costs_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "costs.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_cost_rows(path)
    with pytest.raises(UserError):
        save_cost_rows(path, cost_rows(COSTS[:1]), {})
    assert path.read_text() == content, "a bad file is left as it is"


def test_perf_eval_save_writes_every_algorithm_with_how_it_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake(name: str, n: int, workdir: Path, algo: str, *args: object, **kw: object) -> EvalCost:
        return EvalCost(name, n, algo, 2, 150.0, 0.1 * n, 256, 10.0 * n, 256)

    monkeypatch.setattr("benchmark.cli.measure_eval_cost", fake)
    path = tmp_path / "costs.json"
    path.write_text(json.dumps([row("prison", 16, "bc", 1.0, 1.0)]))
    args = ["perf", "eval", "--env", "prison", "--agents", "2", "--agents", "4"]
    result = CliRunner().invoke(
        main, [*args, "--algo", "bc", "--algo", "idqn", "--save", str(path)]
    )
    assert result.exit_code == 0, result.output
    rows = read_cost_rows(path)
    assert [(r["n_agents"], r["algo"]) for r in rows] == [
        (2, "bc"),
        (2, "idqn"),
        (4, "bc"),
        (4, "idqn"),
        (16, "bc"),
    ]
    measured = rows[0]
    assert measured["command"].startswith("marl-bench") and measured["date"]
    assert isinstance(measured["cpu_count"], int)
    assert len(measured["loadavg_start"]) == len(measured["loadavg_end"]) == 3
    assert "command" not in rows[-1], "the earlier row is kept as it was"


def test_perf_eval_refuses_a_bad_costs_file_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def measure(*args: object) -> EvalCost:
        raise AssertionError("measured before checking the costs file")

    monkeypatch.setattr("benchmark.cli.measure_eval_cost", measure)
    path = tmp_path / "costs.json"
    path.write_text("[")
    args = ["perf", "eval", "--env", "prison", "--agents", "2", "--save", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "is not valid JSON" in result.output


def test_plan_prints_the_tables_and_notes(tmp_path: Path) -> None:
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps(COSTS))
    args = ["plan", "--suite", str(suite_file(tmp_path)), "--costs", str(costs), "--workers", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for text in ("Plan of suite plan-test", "wall-hours at 2 workers", "≈ bc", "own"):
        assert text in result.output
    assert "extrapolated from n=2 and n=4" in result.output
    sizes_only = CliRunner().invoke(main, ["plan", "--suite", str(suite_file(tmp_path))])
    assert sizes_only.exit_code == 0 and "core-h" not in sizes_only.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--suite", "no-such-suite"], "unknown suite 'no-such-suite'"),
        (["--costs", "/nonexistent/costs.json"], "cannot read costs file /nonexistent/costs.json"),
        (["--costs", "BAD"], "is not valid JSON"),
        (["--only", "colour=red"], "bad filter 'colour=red'"),
        (["--only", "algo=sac"], "no job of suite 'plan-test' matches"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_plan_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    args = ["plan", "--suite", str(suite_file(tmp_path))]
    args += [str(bad) if word == "BAD" else word for word in extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
