"""Learning curves and the training budget they set: score against updates on one env's data.

Why: a suite's `updates` is a budget every algorithm gets. Chosen by hand it either stops
behaviour cloning before it has learned, which flatters the value-based methods, or spends hours
after every curve has flattened. The rule measures it instead: train BC (and the baselines to
compare) once per seed with a checkpoint every `checkpoint_every` updates, evaluate each
checkpoint online, and set the budget at the smallest update count where BC's mean normalized
score over seeds is within `TOLERANCE` points of its best mean (`budget_updates`).

What runs, for each seed: the dataset of that seed, collected once through the runner's own
collection code (`benchmark.runner.prepare_datasets`; data seed = training seed, so seeds differ
in data too) at the training team size; then per algorithm one training run (`algos.train.train`,
a checkpoint every `checkpoint_every` updates), whose checkpoints are evaluated from their files
(`benchmark.evaluate.evaluate_run`) at the training team size with the same evaluation seed for
every algorithm and checkpoint (paired comparisons), a seed no dataset is collected with. Each
(algorithm, seed, updates) point is one record of the result store in `<out>/records.jsonl`;
`resume` skips the finished points and continues each run from its checkpoint. `<out>/curves.json`
holds the setting, which a resumed call must share (more seeds, algorithms or updates extend it).

The report (`curves_report`: per update count each algorithm's mean with the 95 % t-interval over
seeds of `benchmark.scores.t_interval`, the budget, `<out>/budget.json` and the plot) is a pure
function of the records: `report_curves` rebuilds it without training.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.runner import (
    RunSummary,
    describe_error,
    job_overrides,
    job_record,
    prepare_datasets,
    progress_display,
)
from benchmark.scores import CELL_STATISTIC, SeedScores
from benchmark.store import RECORDS_FILE, CellRecord, ResultStore
from benchmark.suites import DataSpec, Experiment, Job
from datagen.errors import UserError

#: The algorithm whose curve sets the budget.
BUDGET_ALGO = "bc"
#: Normalized-score points below BC's best mean that still count as flattened.
TOLERANCE = 5.0
#: The budget rule, as budget.json and the report state it.
RULE = (
    f"the smallest update count at which {BUDGET_ALGO}'s mean normalized score over seeds is "
    f"within {TOLERANCE:g} points of its best mean over the update counts"
)
#: Seed of the first evaluation episode of every checkpoint: above every data seed.
EVAL_SEED = 10_000
#: The kind of every record of a curves run (a suite's records are transfer, finetune, ...).
KIND = "curves"
SPEC_FILE = "curves.json"
BUDGET_FILE = "budget.json"


@dataclass(frozen=True)
class CurvesSpec:
    """What a curves run measures.

    Attributes:
        env: env name.
        n_agents: the team size of the data, of training and of evaluation.
        data: the data spec ("expert", "medium", "expert+degenerate@25", ...).
        algos: the algorithms, each trained once per seed.
        n_updates: updates of each training run.
        checkpoint_every: updates between evaluated checkpoints; divides `n_updates`.
        n_seeds: seeds 0 .. n_seeds - 1, each the training seed and its dataset's seed.
        n_eval_episodes: evaluation episodes per checkpoint.
        n_dataset_episodes: episodes of each seed's dataset.
        env_options: env options of collection and evaluation.
        overrides: config overrides (`key=value` strings, converted by the registry), applied
            to every algorithm that has the field, on top of its tuned settings.
        tuned: start every algorithm from its tuned settings (`benchmark.suites.tuned_settings`).
        batch_size: transitions per update.
        eval_seed: seed of the first evaluation episode, the same for every checkpoint.
    """

    env: str
    n_agents: int
    data: str
    algos: tuple[str, ...]
    n_updates: int
    checkpoint_every: int
    n_seeds: int
    n_eval_episodes: int
    n_dataset_episodes: int
    env_options: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    tuned: bool = True
    batch_size: int = 256
    eval_seed: int = EVAL_SEED

    #: Fields a resumed call may change: more algorithms, seeds or updates extend the curves.
    EXTENSIBLE = ("algos", "n_updates", "n_seeds")

    @property
    def seeds(self) -> range:
        return range(self.n_seeds)

    @property
    def update_counts(self) -> list[int]:
        """The evaluated update counts: every checkpoint of a run."""
        return list(range(self.checkpoint_every, self.n_updates + 1, self.checkpoint_every))

    def experiment(self) -> Experiment:
        """The runner's view: a dataset per seed (data seed = training seed), budget and
        config."""
        return Experiment(
            env=self.env,
            train_agents=((self.n_agents,),),
            eval_agents=(self.n_agents,),
            data=(DataSpec.parse(self.data),),
            algos=self.algos,
            env_options=dict(self.env_options),
            seeds=tuple(self.seeds),
            n_dataset_episodes=self.n_dataset_episodes,
            dataset_seed=0,
            dataset_per_seed=True,
            n_updates=self.n_updates,
            batch_size=self.batch_size,
            n_eval_episodes=self.n_eval_episodes,
            eval_seed=self.eval_seed,
            config={"all": dict(self.overrides)},
            tuned=self.tuned,
        )

    def job(self, algo: str, seed: int) -> Job:
        exp = self.experiment()
        return Job(exp, (self.n_agents,), exp.data[0], algo, seed)

    def setting(self) -> dict[str, Any]:
        """The fields a resumed call must share."""
        values = asdict(self)
        values["algos"] = list(self.algos)
        return {key: value for key, value in values.items() if key not in self.EXTENSIBLE}


def check_spec(spec: CurvesSpec) -> None:
    """Validate `spec` before anything runs.

    Raises:
        UserError: an unknown env, algorithm, data spec, option or config key; a count below
            one; `checkpoint_every` not dividing `n_updates`; an evaluation seed that is also a
            data seed; or no reference scores at the team size (no normalized score).
    """
    from algos.registry import overrides_by_algo
    from datagen.envs import check_request
    from datagen.policies.records import reference_scores

    check_request(spec.env, spec.n_agents, spec.env_options)
    DataSpec.parse(spec.data)
    if not spec.algos:
        raise UserError("give at least one --algo")
    duplicates = sorted({a for a in spec.algos if spec.algos.count(a) > 1})
    if duplicates:
        raise UserError(f"--algo {duplicates[0]} is given twice")
    for label, value in (
        ("--updates", spec.n_updates),
        ("--every", spec.checkpoint_every),
        ("--seeds", spec.n_seeds),
        ("--episodes", spec.n_eval_episodes),
        ("--dataset-episodes", spec.n_dataset_episodes),
        ("--batch-size", spec.batch_size),
    ):
        if value < 1:
            raise UserError(f"{label} must be at least 1, got {value}")
    if spec.n_updates % spec.checkpoint_every:
        raise UserError(
            f"--every {spec.checkpoint_every} must divide --updates {spec.n_updates}: "
            "the last checkpoint is the end of the run"
        )
    if spec.eval_seed in spec.experiment().data_seeds():
        raise UserError(
            f"--eval-seed {spec.eval_seed} is also a data seed (seeds 0 to {spec.n_seeds - 1}); "
            "evaluation must start from episodes no dataset holds"
        )
    if reference_scores(spec.env, spec.n_agents) is None:
        raise UserError(
            f"no reference scores for {spec.env} with {spec.n_agents} agents: the curves are "
            "normalized scores (marl-datagen reference)"
        )
    overrides_by_algo(spec.algos, spec.overrides)  # --set: known fields, valid values
    for algo in spec.algos:
        algo_overrides(spec, algo)  # with the tuned settings: valid together


def algo_overrides(spec: CurvesSpec, algo: str) -> dict[str, Any]:
    """`algo`'s config overrides: its tuned settings (with `spec.tuned`), then the `--set`
    fields it has (`benchmark.runner.job_overrides`, as a suite's "all" entry), converted to the
    fields' types.

    Raises:
        UserError: a value of the wrong type or out of range.
    """
    from algos.registry import make_config

    overrides = job_overrides(spec.job(algo, 0))
    config = make_config(algo, overrides)
    return {key: getattr(config, key) for key in overrides}


def record_key(algo: str, seed: int, updates: int) -> str:
    """The result store's key of one point of a curve."""
    return f"{KIND}-{algo}-s{seed}@u{updates}"


def run_dir(out: Path, algo: str, seed: int) -> Path:
    return out / "runs" / f"{algo}-s{seed}"


def _check_resumable(out: Path, spec: CurvesSpec, resume: bool) -> None:
    store = ResultStore(out)
    if store.path.exists() and not resume:
        raise UserError(f"{out} already holds results; pass --resume to continue, or another --out")
    path = out / SPEC_FILE
    if not path.exists():
        return
    saved = json.loads(path.read_text())
    current = spec.setting()
    for key, value in current.items():
        if saved.get(key) != value:
            raise UserError(
                f"{out} was started with {key} = {saved.get(key)!r}, not {value!r}; resume with "
                "the same setting (more --algo, --seeds or --updates extend it), or another --out"
            )


def run_curves(
    spec: CurvesSpec,
    out: Path | str,
    resume: bool = False,
    command: str | None = None,
    progress: bool = True,
    console: Any = None,
) -> RunSummary:
    """Train and evaluate every point of `spec` not recorded yet, appending to
    `<out>/records.jsonl` (see the module docstring).

    A failing run or evaluation is recorded with its error and the others go on.

    Args:
        spec: what to measure.
        out: the output directory (datasets, runs, records, curves.json).
        resume: continue a call in `out` (without it, an `out` holding records is an error).
        command: the command line recorded with every record (default: this process's argv).
        progress: show a progress display.
        console: the rich console to draw on.

    Raises:
        UserError: a bad spec (`check_spec`), an `out` holding records without `resume`, or
            one started with another setting.
    """
    check_spec(spec)
    out = Path(out)
    _check_resumable(out, spec, resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / SPEC_FILE).write_text(json.dumps(asdict(spec), indent=2, sort_keys=True) + "\n")
    command = command or " ".join(["marl-bench", *map(shlex.quote, sys.argv[1:])])
    started = time.perf_counter()
    store = ResultStore(out)
    finished = store.finished_keys()
    pending = {
        (algo, seed): [u for u in spec.update_counts if record_key(algo, seed, u) not in finished]
        for seed in spec.seeds
        for algo in spec.algos
    }
    pending = {run: counts for run, counts in pending.items() if counts}
    n_points = len(spec.algos) * spec.n_seeds * len(spec.update_counts)
    summary = RunSummary(out, n_points, n_points - sum(map(len, pending.values())))
    if not pending:
        return summary
    bar = progress_display(console, progress)
    with bar:
        runs = bar.add_task("runs", total=len(pending), status="")
        points = bar.add_task("checkpoints", total=sum(map(len, pending.values())), status="")
        updates = bar.add_task("updates", total=spec.n_updates, status="")
        for seed in spec.seeds:
            jobs = [spec.job(algo, seed) for algo in spec.algos if (algo, seed) in pending]
            if not jobs:
                continue
            bar.update(runs, status=f"data of seed {seed}")
            prepare_datasets(out, jobs, on_step=lambda text: bar.update(runs, status=text))
            for job in jobs:
                bar.update(runs, status=f"{job.algo} s{seed}")
                bar.reset(updates, total=spec.n_updates, status=f"training {job.algo} s{seed}")

                def tick(algo: Any) -> dict[str, float]:
                    bar.update(updates, completed=algo.n_updates)
                    return {}

                for record in _run_points(spec, out, job, pending[job.algo, seed], command, tick):
                    store.append(record)
                    if record.status == "ok":
                        summary.n_ok += 1
                    else:
                        summary.n_failed += 1
                    bar.update(
                        points,
                        advance=1,
                        status=f"ok {summary.n_ok} failed {summary.n_failed} last: {record.key}",
                    )
                bar.advance(runs)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_points(
    spec: CurvesSpec,
    out: Path,
    job: Job,
    counts: list[int],
    command: str,
    tick: Callable[[Any], dict[str, float]],
) -> Iterator[CellRecord]:
    """Train `job`'s run (or resume it, or find it finished), then yield one record per update
    count of `counts`, each from its checkpoint. Never raises for a failing run or checkpoint:
    the failure becomes the record."""
    from algos.train import load_checkpoint, train
    from benchmark.evaluate import evaluate_run, normalized

    directory = run_dir(out, job.algo, job.seed)
    overrides = algo_overrides(spec, job.algo)
    # The runner's record of the job, in the curves' own run directory, no suite's job.
    record = replace(
        job_record(job, out, overrides, command),
        kind=KIND,
        run_dir=str(directory),
        suite_job=None,
        n_run_updates=spec.n_updates,
        checkpoint_every=spec.checkpoint_every,
    )

    def failed(updates: int, error: str) -> CellRecord:
        return CellRecord.of(
            record,
            key=record_key(job.algo, job.seed, updates),
            eval_agents=spec.n_agents,
            n_updates=updates,
            status="failed",
            error=error,
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )

    try:
        result = train(
            job.algo,
            list(record.datasets),
            job.settings,
            out=directory,
            overrides=overrides,
            resume=True,
            checkpoint_every=spec.checkpoint_every,
            # fit's evaluation hook only advances the progress bar: checkpoints are evaluated
            # after training, from their files, so a resumed run evaluates what it saved.
            eval_fn=tick,
            eval_every=spec.checkpoint_every,
            progress=False,
        )
        bad = [key for key, value in result.last_metrics.items() if not math.isfinite(value)]
        if bad:
            raise FloatingPointError(
                f"non-finite training metric {bad[0]} = {result.last_metrics[bad[0]]}"
            )
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - a failing run is recorded, never fatal
        error = describe_error(err)
        yield from (failed(u, error) for u in counts)
        return
    checkpoints = {
        int(path.stem.removeprefix("step_")): path
        for path in (directory / "checkpoints").glob("step_*.pt")
    }
    for updates in counts:
        began = time.perf_counter()
        try:
            if updates not in checkpoints:
                raise FileNotFoundError(f"{directory} has no checkpoint at {updates} updates")
            (evaluation,) = evaluate_run(
                directory,
                n_agents=spec.n_agents,
                n_episodes=spec.n_eval_episodes,
                seed=spec.eval_seed,
                checkpoint=checkpoints[updates].name,
            )
            returns = [float(r) for r in evaluation.evaluation.returns]
            yield CellRecord.of(
                record,
                key=record_key(job.algo, job.seed, updates),
                eval_agents=spec.n_agents,
                n_updates=updates,
                checkpoint=checkpoints[updates].name,
                status="ok",
                returns=tuple(returns),
                scores=tuple(normalized(spec.env, spec.n_agents, r) for r in returns),
                team_return_mean=evaluation.mean,
                team_return_std=evaluation.std,
                normalized_score=evaluation.normalized_score,
                env_metrics=evaluation.evaluation.metric_means(),
                # The run's training time up to this checkpoint (resumed runs included).
                train_seconds=float(load_checkpoint(checkpoints[updates])["elapsed"]),
                eval_seconds=time.perf_counter() - began,
                finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            )
        except Exception as err:  # noqa: BLE001
            yield failed(updates, describe_error(err))


@dataclass(frozen=True)
class CurvePoint:
    """One algorithm at one update count, across seeds.

    Attributes:
        algo: the algorithm.
        updates: the update count of the checkpoints.
        seeds: the seeds whose checkpoint was evaluated.
        scores: their normalized scores, in seed order.
        mean: the mean of `scores` (NaN without any).
        t_interval: its 95 % Student-t interval over the seeds (`benchmark.scores.t_interval`);
            None with fewer than two seeds.
        n_failed: seeds whose point failed.
    """

    algo: str
    updates: int
    seeds: tuple[int, ...]
    scores: tuple[float, ...]
    mean: float
    t_interval: tuple[float, float] | None
    n_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "mean": None if math.isnan(self.mean) else self.mean,
            "t_interval": None if self.t_interval is None else list(self.t_interval),
            "n_seeds": len(self.seeds),
            "n_failed": self.n_failed,
        }


def budget_updates(means: dict[int, float], tolerance: float = TOLERANCE) -> int | None:
    """The budget rule on BC's curve: the smallest update count whose mean is within `tolerance`
    points of the best mean (inclusive), or None when no mean is finite.

    Args:
        means: BC's mean normalized score over seeds at each update count.
        tolerance: normalized-score points below the best that still count as flattened.
    """
    finite = {u: m for u, m in means.items() if math.isfinite(m)}
    if not finite:
        return None
    best = max(finite.values())
    # A margin of a rounding error, so that a mean exactly `tolerance` below the best counts.
    return min(u for u, m in finite.items() if best - m <= tolerance + 1e-9)


@dataclass(frozen=True)
class CurvesReport:
    """The curves of one env, team size and data, and the budget they set.

    Attributes:
        env, env_options, n_agents, data: the setting.
        curves: each algorithm's points in update order, BC first, then by name.
        information: each algorithm's information class.
        budget: the budget (`budget_updates` of BC's curve); None without BC or any BC score.
        bc_best, bc_best_updates: BC's best mean and where it is (None without BC).
        no_budget: why there is no budget (None when there is one).
    """

    env: str
    env_options: dict[str, Any]
    n_agents: int
    data: str
    curves: dict[str, tuple[CurvePoint, ...]]
    information: dict[str, str]
    budget: int | None
    bc_best: float | None
    bc_best_updates: int | None
    no_budget: str | None

    @property
    def update_counts(self) -> list[int]:
        return sorted({p.updates for points in self.curves.values() for p in points})

    @property
    def best_at_last(self) -> bool:
        """BC's best mean is at the last update count measured: its curve may still rise."""
        return self.bc_best_updates is not None and self.bc_best_updates == max(
            p.updates for p in self.curves[BUDGET_ALGO]
        )

    def budget_json(self) -> dict[str, Any]:
        """The content of budget.json."""
        return {
            "env": self.env,
            "env_options": self.env_options,
            "n_agents": self.n_agents,
            "data": self.data,
            "budget_updates": self.budget,
            "rule": RULE,
            "tolerance": TOLERANCE,
            "bc_best": self.bc_best,
            "bc_best_updates": self.bc_best_updates,
            "bc_best_at_last_count": self.best_at_last,
            "no_budget": self.no_budget,
            "statistic": CELL_STATISTIC,
            "per_update_means": {
                algo: [p.as_dict() for p in points] for algo, points in self.curves.items()
            },
            "records": RECORDS_FILE,
        }


def _algo_order(algo: str) -> tuple[bool, str]:
    return algo != BUDGET_ALGO, algo


def curves_report(records: list[CellRecord]) -> CurvesReport:
    """The curves and the budget of a curves run's records (the latest record of each point).

    Raises:
        UserError: no records, or records of more than one env, team size, env options or data.
    """
    if not records:
        raise UserError("no curve records")
    settings = {
        (r.env, json.dumps(r.env_options, sort_keys=True), r.eval_agents, r.data) for r in records
    }
    if len(settings) > 1:
        raise UserError(
            f"the records mix {len(settings)} settings (env, env options, team size, data); "
            "a curves directory holds one"
        )
    env, options, n_agents, data = settings.pop()
    by_point: dict[tuple[str, int], list[dict[str, Any]]] = {}
    information = {}
    for record in records:
        by_point.setdefault((record.algo, record.n_updates), []).append(record)
        information.setdefault(record.algo, record.information or "unknown")
    curves: dict[str, list[CurvePoint]] = {}
    for (algo, updates), group in sorted(by_point.items()):
        ok = sorted((r for r in group if r.status == "ok"), key=lambda r: r.seed)
        seeds = SeedScores.of(ok)
        curves.setdefault(algo, []).append(
            CurvePoint(
                algo=algo,
                updates=updates,
                seeds=seeds.seeds,
                scores=seeds.scores,
                mean=seeds.mean,
                t_interval=seeds.t_interval,
                n_failed=len(group) - len(ok),
            )
        )
    ordered = {algo: tuple(curves[algo]) for algo in sorted(curves, key=_algo_order)}
    budget = best = best_updates = no_budget = None
    if BUDGET_ALGO not in ordered:
        no_budget = (
            f"the rule reads {BUDGET_ALGO}'s curve, and {BUDGET_ALGO} is not among the "
            f"algorithms ({', '.join(ordered)}); add --algo {BUDGET_ALGO}"
        )
    else:
        means = {p.updates: p.mean for p in ordered[BUDGET_ALGO]}
        budget = budget_updates(means)
        if budget is None:
            no_budget = f"no checkpoint of {BUDGET_ALGO} was evaluated successfully"
        else:
            best_updates = max((u for u in means if math.isfinite(means[u])), key=means.get)
            best = means[best_updates]
    return CurvesReport(
        env=env,
        env_options=json.loads(options),
        n_agents=n_agents,
        data=data,
        curves=ordered,
        information=information,
        budget=budget,
        bc_best=best,
        bc_best_updates=best_updates,
        no_budget=no_budget,
    )


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.1f}"


def _cell(point: CurvePoint | None) -> str:
    if point is None:
        return ""
    if not point.scores:
        return f"— ({point.n_failed} failed)"
    interval = "[n/a]"
    if point.t_interval is not None:
        interval = f"[{_fmt(point.t_interval[0])}, {_fmt(point.t_interval[1])}]"
    failed = f" ({point.n_failed} failed)" if point.n_failed else ""
    return f"{_fmt(point.mean)} {interval}{failed}"


def curves_table(report: CurvesReport) -> Any:
    """A rich table: a row per update count, a column per algorithm, cells `mean [lo, hi]`."""
    from rich.table import Table

    n_seeds = max(len(p.seeds) + p.n_failed for ps in report.curves.values() for p in ps)
    table = Table(
        title=f"{report.env}, n = {report.n_agents}, {report.data} data: normalized score "
        f"against updates, {CELL_STATISTIC} ({n_seeds} seeds)",
    )
    table.add_column("updates", justify="right")
    for algo in report.curves:
        table.add_column(f"{algo} ({report.information[algo]})", justify="right")
    points = {algo: {p.updates: p for p in ps} for algo, ps in report.curves.items()}
    for updates in report.update_counts:
        label = f"{updates} (budget)" if updates == report.budget else str(updates)
        table.add_row(label, *(_cell(points[algo].get(updates)) for algo in report.curves))
    return table


def budget_lines(report: CurvesReport) -> list[str]:
    """What the budget is and why, in plain lines (after the table)."""
    if report.budget is None:
        return [f"no budget: {report.no_budget}"]
    lines = [
        f"budget: {report.budget} updates — {RULE} ({BUDGET_ALGO}'s best: "
        f"{report.bc_best:.1f} at {report.bc_best_updates} updates)"
    ]
    if report.best_at_last:
        lines.append(
            f"note: {BUDGET_ALGO}'s best mean is at the last update count measured, so its curve "
            "may still be rising; more updates (--updates with --resume) show whether it has "
            "flattened"
        )
    return lines


def plot_curves(report: CurvesReport, path: Path | str) -> Path:
    """A PNG of mean normalized score against updates: one line per algorithm with its
    t-interval band, and a vertical line at the budget. Returns the file written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    figure, axes = plt.subplots(figsize=(6, 4))
    for algo, points in report.curves.items():
        updates = [p.updates for p in points]
        style = "--" if report.information[algo] == "communicating" else "-"
        (line,) = axes.plot(updates, [p.mean for p in points], style, marker="o", label=f"{algo}")
        # (points, 2); a point of one seed has no interval and leaves a gap in the band
        bands = np.array([p.t_interval or (np.nan, np.nan) for p in points], dtype=float)
        axes.fill_between(updates, bands[:, 0], bands[:, 1], color=line.get_color(), alpha=0.2)
    if report.budget is not None:
        axes.axvline(
            report.budget, color="black", linestyle=":", label=f"budget: {report.budget} updates"
        )
        axes.axhline(
            report.bc_best - TOLERANCE,
            color="grey",
            linestyle=":",
            linewidth=1,
            label=f"{BUDGET_ALGO}'s best − {TOLERANCE:g}",
        )
    if len(report.update_counts) <= 12:
        axes.set_xticks(report.update_counts)
    axes.set_xlabel("updates")
    axes.set_ylabel(f"normalized score, {CELL_STATISTIC}", fontsize=8)
    axes.set_title(
        f"{report.env}, n = {report.n_agents}, {report.data} data: learning curves", fontsize=10
    )
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def report_curves(out: Path | str, plot: Path | str | None = None) -> CurvesReport:
    """Rebuild the report of a curves run from `<out>/records.jsonl` alone (no training): write
    `<out>/budget.json` and, with `plot`, the PNG.

    Raises:
        UserError: no records in `out`, or records of several settings.
    """
    out = Path(out)
    store = ResultStore(out)
    if not store.path.exists():
        raise UserError(
            f"no curve records in {out}: {RECORDS_FILE} not found (run marl-bench curves)"
        )
    report = curves_report(list(store.latest().values()))
    text = json.dumps(report.budget_json(), indent=2, sort_keys=True) + "\n"
    (out / BUDGET_FILE).write_text(text)
    if plot is not None:
        plot_curves(report, plot)
    return report
