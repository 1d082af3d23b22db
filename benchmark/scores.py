"""Scores of a suite's records: per cell a mean with an interval that covers what it claims, and
rliable's aggregates only across tasks, where trimming and stratifying mean something.

Each successful record carries the normalized score of one training seed at one evaluation team
size: the mean over its evaluation episodes, normalized against the reference scores at that
size. Records that differ only in their seed form a group, one cell of the tables.

Per cell: the mean over the seeds with a 95 % Student-t interval over the seeds' scores
(`t_interval`). A seed's score is already a mean over its episodes, so the seeds are
independent, near-normal draws whose spread includes the episode noise; the t-interval is exact
for normal draws at any number of seeds, and covered the true mean in 946 of 1,000 simulated
experiments of 5 seeds (`tests/benchmark/test_intervals.py`). What it replaces did not: a
percentile bootstrap of the same 5 seeds covered it 829 times, one of 3 seeds is their [min, max]
(about 75 %), a 25 % trimmed mean of 3 values trims nothing, and a stratified bootstrap of one task
has nothing to stratify. With one seed a cell has a mean and no interval.

Across tasks (Agarwal et al. 2021, rliable): the tasks of one kind at one setting (default or
tuned) are its groups, env × training sizes × data × regime × evaluation size. Each algorithm
gets a (runs, tasks) matrix: the tasks where it has results, and as runs the seeds that succeeded
in every one of them. From it: IQM, mean and optimality gap (γ = 100, the expert), each with a 95 %
stratified bootstrap interval (runs resampled within each task), the probability of improvement
over the BC of the algorithm's information class on the tasks both ran (each side's runs by the
same rule), and performance profiles. Only with at least `MIN_TASKS` tasks and `MIN_RUNS` runs.
Bootstraps use fixed seeds, so a report is a pure function of its records.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats
from rliable import metrics

from benchmark.store import CellRecord
from datagen.errors import UserError

#: What a cell shows, as tables and exports name it.
CELL_STATISTIC = "mean [95% t-interval over seeds]"
#: The interval of the across-task aggregates, as tables and exports name it.
ACROSS_TASKS_INTERVAL = "95% stratified bootstrap CI, runs resampled within tasks"
#: Bootstrap resamples per across-task interval (rliable's default). The resampling is vectorised
#: with numpy (rliable's own loop costs about a millisecond per resample, minutes for a full
#: report); the point estimates are rliable's functions, and tests check the intervals against
#: the exact bootstrap distribution and rliable's.
DEFAULT_REPS = 50_000
#: Resamples per performance-profile band (rliable's `create_performance_profile` default): a
#: band on a plot, evaluated at a hundred thresholds.
PROFILE_REPS = 2_000
#: The optimality gap's threshold: 100 on the normalized scale is the expert.
GAMMA = 100.0
#: Across-task aggregates need this many tasks and runs: below that a trimmed mean trims nothing
#: and a stratified bootstrap has nothing to resample.
MIN_TASKS = 2
MIN_RUNS = 2
#: The baseline of the probability of improvement in each information class: behaviour cloning
#: that sees what the compared algorithm sees (`algos.base.INFORMATION_CLASSES`).
BASELINES = {"decentralised": "bc", "communicating": "bc-comm"}


def record_information(record: CellRecord) -> str:
    """A record's information class; records written before classes existed get the registry's
    class of their algorithm at its defaults with the record's overrides ("unknown" for an
    algorithm no longer registered)."""
    if record.information is not None:
        return record.information
    from algos.registry import ALGORITHMS, ALIASES, get_entry, information_class

    if record.algo not in ALGORITHMS and record.algo not in ALIASES:
        return "unknown"
    with warnings.catch_warnings():  # a former name (iql) in old records is not news
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return information_class(record.algo, record.config_overrides)
        except UserError:  # overrides of fields the algorithm no longer has
            return get_entry(record.algo).information


#: A group's coordinates; `tuned` is whether the experiment ran at the tuned settings, so a suite
#: that runs an algorithm both ways (`tuning-effect`) never pools the two.
GROUP_FIELDS = ("kind", "env", "train_agents", "data", "regime", "tuned", "eval_agents")
#: A task of the across-task aggregates: a group's coordinates but its kind and setting.
TASK_FIELDS = ("env", "train_agents", "data", "regime", "eval_agents")


@dataclass(frozen=True)
class Aggregate:
    """One algorithm in one group (a cell), across seeds.

    Attributes:
        group: the values of `GROUP_FIELDS` (train_agents as a tuple).
        algo: the algorithm.
        seeds: the seeds that succeeded.
        scores: their normalized scores, in seed order.
        mean: the mean of `scores` (NaN without any).
        t_interval: its 95 % Student-t interval (lo, hi) over the seeds (`t_interval`); None
            with fewer than two seeds.
        team_return_mean: mean team return across seeds.
        n_failed: cells of this group and algorithm that failed.
        information: the algorithm's information class (`record_information`).
        untuned: the group asked for tuned settings but the algorithm had none yet (it ran at
            its defaults).
    """

    group: tuple[Any, ...]
    algo: str
    seeds: tuple[int, ...]
    scores: tuple[float, ...]
    mean: float
    t_interval: tuple[float, float] | None
    team_return_mean: float
    n_failed: int = 0
    information: str = "unknown"
    untuned: bool = False

    def field(self, name: str) -> Any:
        return self.group[GROUP_FIELDS.index(name)]

    def task(self) -> tuple[Any, ...]:
        """The values of `TASK_FIELDS`."""
        return tuple(self.field(name) for name in TASK_FIELDS)


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its 95 % interval (lo, hi)."""

    value: float
    ci: tuple[float, float]


@dataclass(frozen=True, eq=False)  # an array field: identity is equality
class TaskMatrix:
    """One algorithm's scores as rliable's (runs, tasks) matrix.

    Attributes:
        tasks: the tasks (values of `TASK_FIELDS`) where the algorithm has results, sorted.
        seeds: the runs: the seeds that succeeded in every one of those tasks.
        scores: (runs, tasks) normalized scores.
    """

    tasks: tuple[tuple[Any, ...], ...]
    seeds: tuple[int, ...]
    scores: np.ndarray

    @classmethod
    def of(cls, cells: Iterable[Aggregate]) -> TaskMatrix:
        """The matrix of one algorithm's cells, each a different task."""
        cells = sorted((c for c in cells if c.scores), key=lambda c: _sort_key(c.task()))
        seeds = sorted(set.intersection(*(set(c.seeds) for c in cells))) if cells else []
        score_of = [dict(zip(c.seeds, c.scores, strict=True)) for c in cells]
        scores = np.array([[cell[s] for cell in score_of] for s in seeds], dtype=float)
        # (runs, tasks), also when no seed is shared
        scores = scores.reshape(len(seeds), len(cells))
        return cls(tuple(c.task() for c in cells), tuple(seeds), scores)

    @property
    def enough(self) -> bool:
        """At least `MIN_TASKS` tasks and `MIN_RUNS` runs."""
        n_runs, n_tasks = self.scores.shape
        return n_tasks >= MIN_TASKS and n_runs >= MIN_RUNS


@dataclass(frozen=True)
class AcrossTasks:
    """One algorithm across the tasks of one kind at one setting.

    Attributes:
        kind, tuned: the experiments pooled.
        algo, information: the algorithm and its information class.
        matrix: its (runs, tasks) matrix.
        iqm, mean, optimality_gap: rliable's aggregates of the matrix with their stratified
            bootstrap intervals; None unless the matrix has `MIN_TASKS` tasks and `MIN_RUNS` runs.
        baseline: the BC of the algorithm's class when it ran in these experiments (None for a
            baseline itself).
        improvement: probability of improvement over `baseline` on the tasks both ran; None
            when they share fewer than `MIN_TASKS` tasks or either has fewer than `MIN_RUNS` runs
            on them.
        n_improvement_tasks: the tasks both ran.
        n_failed: failed cells of the algorithm in these experiments.
        untuned: at tuned settings, some of its cells ran at its defaults (no tuned settings yet).
    """

    kind: str
    tuned: bool
    algo: str
    information: str
    matrix: TaskMatrix
    iqm: Estimate | None
    mean: Estimate | None
    optimality_gap: Estimate | None
    baseline: str | None
    improvement: Estimate | None
    n_improvement_tasks: int
    n_failed: int
    untuned: bool


def group_of(record: CellRecord) -> tuple[Any, ...]:
    """A record's group: every coordinate but the algorithm and the seed."""
    return tuple(getattr(record, name) for name in GROUP_FIELDS)


@dataclass(frozen=True)
class SeedScores:
    """The per-cell statistic of successful records of one cell (or one curve point): their
    seeds and normalized scores in the given order, the mean, and its t-interval (None with
    fewer than two seeds; the mean is NaN without any)."""

    seeds: tuple[int, ...]
    scores: tuple[float, ...]
    mean: float
    t_interval: tuple[float, float] | None

    @classmethod
    def of(cls, records: list[CellRecord]) -> SeedScores:
        scores = np.array([r.normalized_score for r in records], dtype=float)  # (seeds,)
        interval = None
        if len(records) >= 2:
            lo, hi = t_interval(scores)
            interval = (float(lo), float(hi))
        return cls(
            seeds=tuple(r.seed for r in records),
            scores=tuple(float(v) for v in scores),
            mean=float(scores.mean()) if records else float("nan"),
            t_interval=interval,
        )


def t_interval(seed_scores: np.ndarray, level: float = 0.95) -> np.ndarray:
    """The Student-t interval for the mean of seed scores: mean ± t(n - 1) · s / sqrt(n).

    Args:
        seed_scores: (..., n_seeds), each seed's score (a mean over its evaluation episodes).
        level: the coverage the interval claims.

    Returns:
        (..., 2): each row's (lo, hi).

    Raises:
        ValueError: with fewer than two seeds (no spread to estimate).
    """
    n = seed_scores.shape[-1]
    if n < 2:
        raise ValueError(f"a t-interval needs at least two seeds, got {n}")
    mean = seed_scores.mean(axis=-1)
    half = scipy.stats.t.ppf(0.5 + level / 2, n - 1) * seed_scores.std(axis=-1, ddof=1) / n**0.5
    return np.stack([mean - half, mean + half], axis=-1)


def aggregate(records: list[CellRecord]) -> list[Aggregate]:
    """Aggregate records (the latest per cell) into one `Aggregate` per group and algorithm.

    Failed records count in `n_failed`; a group and algorithm with no successful seed gets NaN
    scores. The output is sorted by group, then algorithm.
    """
    ok: dict[tuple, dict[str, list[CellRecord]]] = {}
    failed: dict[tuple, dict[str, int]] = {}
    information_of: dict[str, str] = {}
    for record in records:
        group = group_of(record)
        information_of.setdefault(record.algo, record_information(record))
        if record.status == "ok":
            ok.setdefault(group, {}).setdefault(record.algo, []).append(record)
        else:
            counts = failed.setdefault(group, {})
            counts[record.algo] = counts.get(record.algo, 0) + 1
    out = []
    for group in sorted(set(ok) | set(failed), key=_sort_key):
        by_algo = ok.get(group, {})
        for algo in sorted(set(by_algo) | set(failed.get(group, {}))):
            rs = sorted(by_algo.get(algo, []), key=lambda r: r.seed)
            seeds = SeedScores.of(rs)
            out.append(
                Aggregate(
                    group=group,
                    algo=algo,
                    seeds=seeds.seeds,
                    scores=seeds.scores,
                    mean=seeds.mean,
                    t_interval=seeds.t_interval,
                    team_return_mean=(
                        float(np.mean([r.team_return_mean for r in rs])) if rs else float("nan")
                    ),
                    n_failed=failed.get(group, {}).get(algo, 0),
                    information=information_of[algo],
                    untuned=bool(group[GROUP_FIELDS.index("tuned")])
                    and bool(rs)
                    and not any(r.tuned_params for r in rs),
                )
            )
    return out


def _experiments(
    aggregates: list[Aggregate],
) -> dict[tuple[str, bool], dict[str, list[Aggregate]]]:
    """The cells of each kind and setting (kind, tuned), by algorithm, both sorted."""
    cells: dict[tuple[str, bool], dict[str, list[Aggregate]]] = {}
    for agg in aggregates:
        experiments = cells.setdefault((agg.field("kind"), agg.field("tuned")), {})
        experiments.setdefault(agg.algo, []).append(agg)
    return {key: dict(sorted(by_algo.items())) for key, by_algo in sorted(cells.items())}


def task_matrices(aggregates: list[Aggregate]) -> dict[tuple[str, bool], dict[str, TaskMatrix]]:
    """Per kind and setting (kind, tuned), each algorithm's (runs, tasks) matrix."""
    return {
        key: {algo: TaskMatrix.of(aggs) for algo, aggs in by_algo.items()}
        for key, by_algo in _experiments(aggregates).items()
    }


def across_tasks(
    aggregates: list[Aggregate], reps: int = DEFAULT_REPS, seed: int = 0
) -> list[AcrossTasks]:
    """rliable's aggregates of each algorithm across the tasks of each kind and setting, sorted
    by kind, setting, then algorithm. Every algorithm of the cells gets one, with None
    estimates where its matrix is too small (see `AcrossTasks`)."""
    out = []
    for (kind, tuned), by_algo in _experiments(aggregates).items():
        rng = np.random.default_rng(seed)
        ran = {algo: {c.task(): c for c in aggs if c.scores} for algo, aggs in by_algo.items()}
        for algo, aggs in by_algo.items():
            information = aggs[0].information
            matrix = TaskMatrix.of(aggs)
            iqm = mean = gap = None
            if matrix.enough:
                iqm, mean, gap = _score_estimates(matrix.scores, rng, reps)
            baseline = BASELINES.get(information)
            if baseline == algo or baseline not in ran:
                baseline = None
            improvement, shared = None, []
            if baseline is not None:
                shared = sorted(set(ran[algo]) & set(ran[baseline]), key=_sort_key)
                x = TaskMatrix.of(ran[algo][task] for task in shared)
                y = TaskMatrix.of(ran[baseline][task] for task in shared)
                if x.enough and y.enough:
                    improvement = _improvement_estimate(x.scores, y.scores, rng, reps)
            out.append(
                AcrossTasks(
                    kind=kind,
                    tuned=tuned,
                    algo=algo,
                    information=information,
                    matrix=matrix,
                    iqm=iqm,
                    mean=mean,
                    optimality_gap=gap,
                    baseline=baseline,
                    improvement=improvement,
                    n_improvement_tasks=len(shared),
                    n_failed=sum(c.n_failed for c in aggs),
                    untuned=any(c.untuned for c in aggs),
                )
            )
    return out


def performance_profile(
    scores: np.ndarray, taus: np.ndarray, reps: int = PROFILE_REPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """rliable's score distribution (`create_performance_profile` with its defaults): the
    fraction of a (runs, tasks) matrix's scores above each threshold, with a 95 % stratified
    bootstrap band.

    Returns:
        The profile, (len(taus),), and its band, (2, len(taus)): lower row, upper row.
    """
    profile = _profile_batch(scores[None], taus)[0]
    samples = _resample(scores, np.random.default_rng(seed), reps)
    return profile, np.percentile(_profile_batch(samples, taus), [2.5, 97.5], axis=0)


def _score_estimates(
    scores: np.ndarray, rng: np.random.Generator, reps: int
) -> tuple[Estimate, Estimate, Estimate]:
    """IQM, mean and optimality gap of a (runs, tasks) matrix with their intervals."""
    samples = _resample(scores, rng, reps)
    gaps = GAMMA - np.minimum(samples, GAMMA).mean(axis=(1, 2))
    return (
        Estimate(float(metrics.aggregate_iqm(scores)), _percentile_interval(_iqm_batch(samples))),
        Estimate(
            float(metrics.aggregate_mean(scores)),
            _percentile_interval(samples.mean(axis=(1, 2))),
        ),
        Estimate(
            float(metrics.aggregate_optimality_gap(scores, GAMMA)), _percentile_interval(gaps)
        ),
    )


def _improvement_estimate(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, reps: int
) -> Estimate:
    """P(X > Y) of two (runs, tasks) matrices on the same tasks, each resampled on its own, as
    rliable's `StratifiedIndependentBootstrap` does."""
    batch = _improvement_batch(_resample(x, rng, reps), _resample(y, rng, reps))
    return Estimate(float(metrics.probability_of_improvement(x, y)), _percentile_interval(batch))


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
    over all run pairs (the Mann-Whitney U statistic over m * n), averaged over tasks. One task
    at a time, so memory stays at (samples, runs x, runs y)."""
    wins = np.zeros(len(x))
    for task in range(x.shape[2]):
        xs, ys = x[:, :, None, task], y[:, None, :, task]  # (S, Rx, 1), (S, 1, Ry)
        wins += (xs > ys).mean(axis=(1, 2)) + 0.5 * (xs == ys).mean(axis=(1, 2))
    return wins / x.shape[2]


def _profile_batch(samples: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """The fraction of each sample's scores above each threshold: (S, runs, tasks) -> (S, taus)."""
    flat = samples.reshape(len(samples), -1)  # (S, runs * tasks)
    return (flat[:, :, None] > taus).mean(axis=1)


def _percentile_interval(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


def _sort_key(values: tuple[Any, ...]) -> tuple:
    return tuple("" if value is None else value for value in values)
