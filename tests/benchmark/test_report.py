"""Suites, the result store, score aggregation and the report (a pure function of records)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from rliable import library as rly
from rliable import metrics

from benchmark.report import make_report, marl_eval_json, plot
from benchmark.scores import aggregate
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
    """IQM of three seeds trims nothing (rliable's 25 % cut of 3 runs is 0 runs), and the
    probability of improvement counts wins and half ties over the 9 seed pairs."""
    by_key = {
        (a.algo, a.field("eval_agents"), a.field("data")): a for a in aggregate(golden_records())
    }
    assert by_key[("bc", 2, "expert")].iqm == pytest.approx(50.0)
    assert by_key[("iql", 8, "expert")].iqm == pytest.approx(40.0)
    # iql {50, 60, 70} against bc {30, 40, 50} at n=4: 8.5 of 9 pairs.
    assert by_key[("iql", 4, "expert")].improvement == pytest.approx(8.5 / 9)
    assert by_key[("sac", 8, "expert")].n_failed == 1
    assert np.isnan(by_key[("sac", 8, "expert")].iqm)
    # Classes are compared within: gawi communicates and no communicating BC ran.
    gawi = by_key[("gawi", 4, "expert")]
    assert gawi.information == "communicating" and gawi.improvement is None
    # Records without a class get the registry's (the former name iql is independent DQN).
    assert by_key[("iql", 4, "expert")].information == "decentralised"


def _exact_bootstrap(values: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Every distinct bootstrap resample of `values` (a multiset of run indices) and its
    probability under drawing len(values) runs with replacement: the multinomial weights."""
    n = len(values)
    samples, weights = [], []
    for combo in itertools.combinations_with_replacement(range(n), n):
        counts = np.bincount(combo, minlength=n)
        ways = math.factorial(n) / np.prod([math.factorial(c) for c in counts])
        samples.append(values[list(combo)])
        weights.append(ways / n**n)
    return samples, np.array(weights)


def _quantile(support: np.ndarray, weights: np.ndarray, p: float) -> float:
    """The smallest support value whose cumulative probability reaches p."""
    order = np.argsort(support)
    cdf = np.cumsum(weights[order])
    return float(support[order][np.searchsorted(cdf, p - 1e-12)])


def _assert_in_window(interval: tuple[float, float], support: np.ndarray, w: np.ndarray) -> None:
    """A Monte Carlo 95 % percentile interval must fall between the exact bootstrap
    distribution's 1.5 and 3.5 % quantiles (resp. 96.5 and 98.5 %). The window is ±4.5
    standard errors of the empirical quantile's level at rliable's 5,000 replicates (a miss
    about once in 10^5 checks) and ±14 at our 50,000."""
    lo, hi = interval
    assert _quantile(support, w, 0.015) <= lo <= _quantile(support, w, 0.035)
    assert _quantile(support, w, 0.965) <= hi <= _quantile(support, w, 0.985)


def test_intervals_agree_with_rliable_and_the_exact_bootstrap() -> None:
    """With five seeds the stratified bootstrap can be enumerated exactly (126 distinct
    resamples), so our intervals and rliable's are both checked against the exact distribution
    rather than against each other: rliable's own draws are not reproducible run to run, even
    with a fixed random_state, and a 25 % trimmed mean of five runs is lumpy enough that two
    Monte Carlo intervals can differ by several points while both are right."""
    rng = np.random.default_rng(3)
    scores = {"bc": rng.normal(40, 10, 5), "iql": rng.normal(50, 10, 5)}
    records = [
        {
            "key": f"{algo}{seed}",
            "status": "ok",
            "kind": "transfer",
            "env": "pursuit",
            "train_agents": [2],
            "eval_agents": 2,
            "data": "expert",
            "algo": algo,
            "seed": seed,
            "normalized_score": float(value),
            "team_return_mean": 0.0,
        }
        for algo, values in scores.items()
        for seed, value in enumerate(values)
    ]
    ours = {a.algo: a for a in aggregate(records)}
    matrices = {algo: values[:, None] for algo, values in scores.items()}
    point, interval = rly.get_interval_estimates(matrices, metrics.aggregate_iqm, reps=5_000)
    for algo, values in scores.items():
        assert ours[algo].iqm == pytest.approx(point[algo])
        samples, weights = _exact_bootstrap(values)
        support = np.array([scipy.stats.trim_mean(s, 0.25) for s in samples])
        _assert_in_window(ours[algo].iqm_ci, support, weights)
        _assert_in_window(tuple(np.ravel(interval[algo])), support, weights)

    _, p_interval = rly.get_interval_estimates(
        {"iql": (matrices["iql"], matrices["bc"])}, metrics.probability_of_improvement, reps=5_000
    )
    xs, wx = _exact_bootstrap(scores["iql"])
    ys, wy = _exact_bootstrap(scores["bc"])
    x, y = np.array(xs), np.array(ys)  # (126, 5) each
    pairs = (x[:, None, :, None] > y[None, :, None, :]).mean(axis=(2, 3))
    pairs += 0.5 * (x[:, None, :, None] == y[None, :, None, :]).mean(axis=(2, 3))
    support, weights = pairs.ravel(), np.outer(wx, wy).ravel()
    _assert_in_window(ours["iql"].improvement_ci, support, weights)
    _assert_in_window(tuple(np.ravel(p_interval["iql"])), support, weights)


def test_report_json_and_marl_eval_export() -> None:
    rows = json.loads(make_report(golden_records(), "json"))
    sac = [r for r in rows if r["algo"] == "sac"][0]
    assert sac["iqm"] is None and sac["n_failed"] == 1
    exported = marl_eval_json(golden_records())
    runs = exported["pursuit"]["transfer-n2-expert-eval-n8"]["iql"]
    assert sorted(runs) == ["run_0", "run_1", "run_2"]
    assert runs["run_0"]["absolute_metrics"]["normalized_score"] == [28.0, 32.0]
    assert runs["run_0"]["step_1"]["step_count"] == 100
    assert "sac" not in exported["pursuit"]["transfer-n2-expert-eval-n8"]


def test_default_and_tuned_runs_are_never_pooled_and_their_change_is_tabled() -> None:
    """Suite tuning-effect runs each algorithm twice; its report keeps the two apart and shows
    IQM before -> after; an algorithm without tuned settings is marked, not compared."""
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
    # IQM of 3 seeds is their mean: 41, 71, 31 at defaults; 51, 61, 31 tuned.
    assert "| bc | decentralised | 41.0 [40.0, 42.0] |" in text
    assert "| bc | decentralised | 51.0 [50.0, 52.0] |" in text
    assert "| sac (not tuned) | decentralised | 31.0 [30.0, 32.0] |" in text
    effect = text.split("what tuning changed")[1]
    assert "| bc | decentralised | 41.0 -> 51.0 (+10.0) |" in effect
    assert "| iql | decentralised | 71.0 -> 61.0 (-10.0) |" in effect
    assert "sac" not in effect
    exported = marl_eval_json(records)["pursuit"]
    assert sorted(exported) == ["transfer-n2-expert-eval-n2", "transfer-n2-expert-tuned-eval-n2"]


def test_plots_are_written(tmp_path: Path) -> None:
    paths = plot(aggregate(golden_records()), tmp_path)
    assert [p.name for p in paths] == ["transfer-pursuit-n2-expert.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_store_skips_a_truncated_last_line_and_keeps_the_latest(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.append({"key": "a", "status": "failed", "error": "boom"})
    store.append({"key": "a", "status": "ok"})
    with open(store.path, "a") as handle:
        handle.write('{"key": "b", "sta')  # a kill mid-write
    assert store.finished_keys() == {"a"}
    store.append({"key": "c", "status": "ok"})  # the next run appends after the fragment
    assert store.finished_keys() == {"a", "c"}
    assert [r["key"] for r in load_records(tmp_path)] == ["a", "c"]


def test_store_rejects_corruption_in_the_middle(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.path.write_text(
        '{"key": "a", "status": "ok"}\n{not json}\n{"key": "b", "status": "ok"}\n'
    )
    with pytest.raises(UserError, match="line 2 is not a JSON record"):
        store.records()


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
    ],
)
def test_bad_suites_are_one_line_errors(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(UserError, match=message):
        load_suite(path, known_algos=["bc", "iql"])


def test_unknown_suite_names_the_valid_ones() -> None:
    with pytest.raises(UserError, match=r"unknown suite 'quik' \(did you mean 'quick'\?\)"):
        load_suite("quik")
