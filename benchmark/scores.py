"""Aggregate cell records across seeds with rliable: IQM and mean with 95 % stratified bootstrap
confidence intervals, and the probability that each algorithm improves on behaviour cloning.

Each successful record carries the normalized score of one training seed at one evaluation team
size (the mean over its evaluation episodes, normalized against the reference scores at that
size). Records that differ only in their seed form a group; a group's seeds are rliable's runs, and
the group is one task (a score matrix of shape (runs, 1)). Bootstraps use a fixed seed, so a report
is a pure function of its records.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats
from rliable import metrics

from datagen.errors import UserError

#: Bootstrap resamples per interval (rliable's default). The resampling is vectorised with numpy
#: (rliable's own loop costs about a millisecond per resample, minutes for a full report); the
#: point estimates are rliable's functions, and tests check the intervals against rliable's.
DEFAULT_REPS = 50_000
#: The baseline of the probability of improvement in each information class: behaviour cloning
#: that sees what the compared algorithm sees (`algos.base.INFORMATION_CLASSES`).
BASELINES = {"decentralised": "bc", "communicating": "bc-comm"}
#: The decentralised baseline (tables list it first).
BASELINE_ALGO = BASELINES["decentralised"]


def record_information(record: dict[str, Any]) -> str:
    """A record's information class; records written before classes existed get the registry's
    class of their algorithm at its defaults with the record's overrides ("unknown" for an
    algorithm no longer registered)."""
    if "information" in record:
        return record["information"]
    from algos.registry import ALGORITHMS, ALIASES, get_entry, information_class

    if record["algo"] not in ALGORITHMS and record["algo"] not in ALIASES:
        return "unknown"
    with warnings.catch_warnings():  # a former name (iql) in old records is not news
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return information_class(record["algo"], record.get("config_overrides"))
        except UserError:  # overrides of fields the algorithm no longer has
            return get_entry(record["algo"]).information


#: A group's coordinates; `tuned` is whether the experiment ran at the tuned settings, so a suite
#: that runs an algorithm both ways (`tuning-effect`) never pools the two.
GROUP_FIELDS = ("kind", "env", "train_agents", "data", "regime", "tuned", "eval_agents")
#: Each field's value in records written before it existed.
_FIELD_DEFAULTS = {"regime": "offline", "tuned": False}


@dataclass(frozen=True)
class Aggregate:
    """One algorithm in one group, across seeds.

    Attributes:
        group: the values of `GROUP_FIELDS` (train_agents as a tuple).
        algo: the algorithm.
        seeds: the seeds that succeeded.
        scores: their normalized scores, in seed order.
        iqm, iqm_ci: interquartile mean and its 95 % interval (lo, hi).
        mean, mean_ci: mean and its 95 % interval.
        return_mean: mean team return across seeds.
        n_failed: cells of this group and algorithm that failed.
        improvement, improvement_ci: probability of improvement over the baseline of the
            algorithm's information class (`BASELINES`) and its interval (None for a baseline
            itself or when its class's baseline has no scores in the group).
        information: the algorithm's information class (`record_information`).
        untuned: the group asked for tuned settings but the algorithm had none yet (it ran at
            its defaults).
    """

    group: tuple[Any, ...]
    algo: str
    seeds: tuple[int, ...]
    scores: tuple[float, ...]
    iqm: float
    iqm_ci: tuple[float, float]
    mean: float
    mean_ci: tuple[float, float]
    return_mean: float
    n_failed: int = 0
    improvement: float | None = None
    improvement_ci: tuple[float, float] | None = None
    information: str = "unknown"
    untuned: bool = False

    def field(self, name: str) -> Any:
        return self.group[GROUP_FIELDS.index(name)]


def group_of(record: dict[str, Any]) -> tuple[Any, ...]:
    """A record's group: every coordinate but the algorithm and the seed."""
    values = []
    for name in GROUP_FIELDS:
        value = record.get(name, _FIELD_DEFAULTS.get(name))
        values.append(tuple(value) if isinstance(value, list) else value)
    return tuple(values)


def _resample(matrix: np.ndarray, rng: np.random.Generator, reps: int) -> np.ndarray:
    """Stratified bootstrap samples of a (runs, tasks) matrix: runs drawn with replacement within
    each task, as rliable's `StratifiedBootstrap` does. Returns (reps, runs, tasks)."""
    n_runs, n_tasks = matrix.shape
    index = rng.integers(0, n_runs, size=(reps, n_runs, n_tasks))
    return np.take_along_axis(np.broadcast_to(matrix, (reps, n_runs, n_tasks)), index, axis=1)


def _iqm_batch(samples: np.ndarray) -> np.ndarray:
    """rliable's `aggregate_iqm` (a 25 % trimmed mean over runs and tasks) of each sample."""
    return scipy.stats.trim_mean(samples.reshape(len(samples), -1), 0.25, axis=1)


def _improvement_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """rliable's `probability_of_improvement` of each sample pair: per task P(X > Y) + P(X = Y) / 2
    over all run pairs (the Mann-Whitney U statistic over m * n), averaged over tasks."""
    xs, ys = x[:, :, None, :], y[:, None, :, :]  # (S, Rx, 1, T), (S, 1, Ry, T)
    wins = (xs > ys).mean(axis=(1, 2)) + 0.5 * (xs == ys).mean(axis=(1, 2))  # (S, T)
    return wins.mean(axis=1)


def _percentile_interval(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


def aggregate(
    records: list[dict[str, Any]], reps: int = DEFAULT_REPS, seed: int = 0
) -> list[Aggregate]:
    """Aggregate records (the latest per cell) into one `Aggregate` per group and algorithm.

    Failed records count in `n_failed`; a group and algorithm with no successful seed gets NaN
    scores. The output is sorted by group, then algorithm.
    """
    ok: dict[tuple, dict[str, list[dict]]] = {}
    failed: dict[tuple, dict[str, int]] = {}
    information_of: dict[str, str] = {}
    for record in records:
        group = group_of(record)
        information_of.setdefault(record["algo"], record_information(record))
        if record["status"] == "ok":
            ok.setdefault(group, {}).setdefault(record["algo"], []).append(record)
        else:
            counts = failed.setdefault(group, {})
            counts[record["algo"]] = counts.get(record["algo"], 0) + 1
    out = []
    for group in sorted(set(ok) | set(failed), key=_sort_key):
        by_algo = ok.get(group, {})
        matrices = {
            algo: np.array([[r["normalized_score"]] for r in sorted(rs, key=lambda r: r["seed"])])
            for algo, rs in by_algo.items()
        }
        rng = np.random.default_rng(seed)
        samples = {algo: _resample(m, rng, reps) for algo, m in matrices.items()}
        algos = sorted(set(by_algo) | set(failed.get(group, {})))
        for algo in algos:
            n_failed = failed.get(group, {}).get(algo, 0)
            information = information_of[algo]
            if algo not in matrices:
                nan = float("nan")
                out.append(
                    Aggregate(
                        group,
                        algo,
                        (),
                        (),
                        nan,
                        (nan, nan),
                        nan,
                        (nan, nan),
                        nan,
                        n_failed,
                        information=information,
                    )
                )
                continue
            rs = sorted(by_algo[algo], key=lambda r: r["seed"])
            matrix, sample = matrices[algo], samples[algo]
            improvement = improvement_ci = None
            baseline = BASELINES.get(information)
            if baseline in matrices and algo != baseline:
                improvement = float(metrics.probability_of_improvement(matrix, matrices[baseline]))
                improvement_ci = _percentile_interval(_improvement_batch(sample, samples[baseline]))
            out.append(
                Aggregate(
                    group=group,
                    algo=algo,
                    seeds=tuple(r["seed"] for r in rs),
                    scores=tuple(float(r["normalized_score"]) for r in rs),
                    iqm=float(metrics.aggregate_iqm(matrix)),
                    iqm_ci=_percentile_interval(_iqm_batch(sample)),
                    mean=float(metrics.aggregate_mean(matrix)),
                    mean_ci=_percentile_interval(sample.mean(axis=(1, 2))),
                    return_mean=float(np.mean([r["team_return_mean"] for r in rs])),
                    n_failed=n_failed,
                    improvement=improvement,
                    improvement_ci=improvement_ci,
                    information=information,
                    untuned=bool(group[GROUP_FIELDS.index("tuned")])
                    and not any(r.get("tuned_params") for r in rs),
                )
            )
    return out


def _sort_key(group: tuple[Any, ...]) -> tuple:
    return tuple("" if value is None else value for value in group)
