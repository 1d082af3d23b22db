"""Size a suite before it runs: what it trains, evaluates and collects, and what that costs.

Counts are exact: they are what `benchmark.runner` does for the same jobs (`--only` included).

- Training runs: one per run directory. A pretrained+finetuned job first trains its offline
  run (`Job.pretraining`), whose directory is that of the suite's transfer job of the same env,
  team sizes, data, algorithm, tuning and seed when there is one; every fine-tuning target of a
  seed starts from the same run. Each directory trains once, up to the largest update count
  asked of it (resumed with fewer, a finished run does no more updates).
- Cells and evaluation episodes: every (job, evaluation size), `n_eval_episodes` each; a
  pretraining run is not evaluated.
- Datasets: `runner.needed_datasets`, each collected once; a mixture is drawn from collected
  sources, not collected.

Costs are estimates from the rows `marl-bench perf eval --save` writes (`benchmark.perf.EvalCost`:
per env, team size, algorithm, hidden size and env options, seconds per evaluation episode and per
1,000 updates), all on one core, in core-hours:

- training: updates x seconds per 1,000 updates of the run's algorithm at its team size (a run on
  several sizes at once: at the mean of its sizes);
- evaluation: episodes x seconds per episode of the job's algorithm at the evaluation size;
- collection: episodes x seconds per episode of BC (its widest measured model) at the collection
  size. An approximation: the behaviour policies are not BC, and collection plays its episodes one
  at a time, not as a batch;
- a size between two measured sizes reads the line between them; beyond them, the line through
  the nearest two (never below 0); an env and algorithm measured at one size only costs that
  size everywhere. The output says each time it does one of these;
- an algorithm without rows of its own in an env costs as BC in that env, unscaled ("≈ bc");
- the rows measured with the job's env options (else without options) and at the hidden size
  its model is built with (tuned settings and the suite's config included; else the nearest
  measured width), unscaled where they differ, and the output says so (`marl-bench perf eval
  --option KEY=VALUE --set hidden_size=...` measures them).

Not modelled: other config overrides, a batch size other than the rows' (said when it happens),
a trained policy's episode lengths (the rows' model is BC after a few updates on one random
episode) and the evaluation batch size (the rows' is a few episodes).

Wall-hours at W workers: the runner collects every dataset first, in its own process, one after
another, then runs the jobs (training and evaluation) on W workers; wall = collection +
(training + evaluation) / W, a lower bound that assumes the jobs share the workers evenly.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import mean
from typing import Any

from benchmark.perf import EvalCost, options_key
from benchmark.runner import CombineStep, job_overrides, needed_datasets
from benchmark.suites import Job, Suite, job_matches
from datagen.collect import CollectRequest
from datagen.dataset.ids import DatasetId
from datagen.errors import UserError

#: The algorithm whose rows stand in for an algorithm without its own, and cost collection.
REFERENCE_ALGO = "bc"


@dataclass(frozen=True)
class TrainingRun:
    """One run directory the runner trains.

    Attributes:
        name: the run directory's name (`Job.name` of the job it trains for).
        env: env name.
        algo: algorithm.
        sizes: the team sizes of its data.
        n_updates: gradient updates (the largest asked of this directory).
        hidden_size: the width of its model's layers.
        options: the env options of its data.
        pretraining: whether fine-tuning jobs start from it.
        evaluated: whether a job is evaluated from it (False: a pretraining run alone).
    """

    name: str
    env: str
    algo: str
    sizes: tuple[int, ...]
    n_updates: int
    hidden_size: int
    options: dict[str, Any] = field(default_factory=dict)
    pretraining: bool = False
    evaluated: bool = True


def hidden_size(job: Job) -> int:
    """The hidden size `job`'s model is built with (its tuned settings and config included)."""
    from algos.registry import make_config

    return make_config(job.algo, job_overrides(job)).hidden_size


def _run_of(job: Job, pretraining: bool = False) -> TrainingRun:
    sizes = (job.target,) if job.small else job.train_agents
    n_updates = job.settings.n_updates
    return TrainingRun(
        job.name,
        job.experiment.env,
        job.algo,
        sizes,
        n_updates,
        hidden_size(job),
        dict(job.experiment.env_options),
        pretraining,
        not pretraining,
    )


def training_runs(jobs: list[Job]) -> list[TrainingRun]:
    """The runs `jobs` train, each run directory once, in the jobs' order (a pretraining run
    before its first fine-tuning)."""
    runs: dict[str, TrainingRun] = {}
    for job in jobs:
        asked = [_run_of(job)]
        if job.regime == "pretrained+finetuned":
            asked.insert(0, _run_of(job.pretraining(), pretraining=True))
        for run in asked:
            prior = runs.get(run.name)
            if prior is not None:
                run = replace(
                    prior,
                    n_updates=max(prior.n_updates, run.n_updates),
                    pretraining=prior.pretraining or run.pretraining,
                    evaluated=prior.evaluated or run.evaluated,
                )
            runs[run.name] = run
    return list(runs.values())


@dataclass(frozen=True)
class Estimate:
    """A cost read off measured rows at one team size.

    Attributes:
        value: the cost.
        how: "measured", "interpolated", "extrapolated" or "one size" (the only measured size's
            value, used at every size).
        between: the measured sizes the value comes from.
    """

    value: float
    how: str
    between: tuple[int, ...]


def at_size(points: Mapping[int, float], n: float) -> Estimate:
    """The value at team size `n` of a cost measured at the sizes of `points`: measured, else
    linear between the two sizes around `n`, else linear through the nearest two (never below 0).

    Raises:
        ValueError: `points` is empty.
    """
    if not points:
        raise ValueError("no measured sizes")
    sizes = sorted(points)
    if n in points:
        return Estimate(points[n], "measured", (int(n),))  # type: ignore[index]
    if len(sizes) == 1:
        return Estimate(points[sizes[0]], "one size", (sizes[0],))
    index = bisect.bisect(sizes, n)
    inside = 0 < index < len(sizes)
    index = min(max(index, 1), len(sizes) - 1)
    low, high = sizes[index - 1], sizes[index]
    slope = (points[high] - points[low]) / (high - low)
    value = max(0.0, points[low] + slope * (n - low))
    return Estimate(value, "interpolated" if inside else "extrapolated", (low, high))


class CostTable:
    """Cost rows by env, algorithm, hidden size and env options, read at any team size;
    remembers every size it read between or beyond the measured ones, and every model it costed
    with rows of another width or other options (`notes`)."""

    QUANTITIES = {"seconds_per_1k_updates": "s / 1k updates", "seconds_per_episode": "s / episode"}

    def __init__(self, rows: list[EvalCost]) -> None:
        #: {(env, algo): {(hidden size, options_key): {team size: row}}}
        self.rows: dict[tuple[str, str], dict[tuple[int, str], dict[int, EvalCost]]] = {}
        for row in rows:
            variants = self.rows.setdefault((row.env, row.algo), {})
            variant = (row.hidden_size, options_key(row.options))
            variants.setdefault(variant, {})[row.n_agents] = row
        #: {(env, algo, quantity, how, measured sizes): sizes read that way}, in reading order.
        self.estimated: dict[tuple[str, str, str, str, tuple[int, ...]], set[float]] = {}
        #: {(env, algo, wanted (width, options)): the measured (width, options) used instead}
        self.substituted: dict[tuple[str, str, tuple[int, str]], tuple[int, str]] = {}

    @property
    def envs(self) -> set[str]:
        return {env for env, _ in self.rows}

    def rows_algo(self, env: str, algo: str) -> str | None:
        """Whose rows cost `algo` in `env`: its own, else bc's, else None."""
        for candidate in (algo, REFERENCE_ALGO):
            if (env, candidate) in self.rows:
                return candidate
        return None

    def batch_sizes(self, env: str, algo: str) -> set[int]:
        return {
            row.batch_size
            for by_size in self.rows[(env, algo)].values()
            for row in by_size.values()
        }

    def widest(self, env: str, algo: str) -> int:
        return max(width for width, _ in self.rows[(env, algo)])

    def variant(
        self, env: str, algo: str, hidden_size: int, options: Mapping[str, Any]
    ) -> tuple[int, str]:
        """The measured (hidden size, options) of `algo`'s rows in `env` that cost a model of
        `hidden_size` in an env made with `options`: rows measured with those options, else
        without options, else any; of them, the width `hidden_size` itself, else the nearest
        (the wider of two as near)."""
        variants = list(self.rows[(env, algo)])
        wanted = options_key(options)
        for key in (wanted, options_key({})):
            if any(measured == key for _, measured in variants):
                variants = [variant for variant in variants if variant[1] == key]
                break
        return min(variants, key=lambda v: (abs(v[0] - hidden_size), -v[0]))

    def cost(
        self,
        env: str,
        algo: str,
        quantity: str,
        n: float,
        hidden_size: int,
        options: Mapping[str, Any] | None = None,
    ) -> float:
        """`quantity` (a key of `QUANTITIES`) of `algo`'s rows in `env` at team size `n`, from
        the rows that cost a model of `hidden_size` with env `options` (`variant`)."""
        options = options or {}
        variant = self.variant(env, algo, hidden_size, options)
        wanted = (hidden_size, options_key(options))
        if variant != wanted:
            self.substituted[(env, algo, wanted)] = variant
        rows = self.rows[(env, algo)][variant]
        estimate = at_size({size: getattr(row, quantity) for size, row in rows.items()}, n)
        if estimate.how != "measured":
            key = (env, algo, quantity, estimate.how, estimate.between)
            self.estimated.setdefault(key, set()).add(n)
        return estimate.value

    def notes(self) -> list[str]:
        """One line per model costed with rows of another width or other env options, and per
        env, algorithm, quantity and way of reading sizes not measured."""
        lines = []
        for (env, algo, (width, options)), (measured_width, measured) in self.substituted.items():
            if measured_width != width:
                lines.append(
                    f"{env} {algo} at hidden size {width}: costed with rows measured at "
                    f"{measured_width} (not scaled; perf eval --set hidden_size={width} measures "
                    "it)"
                )
            if measured != options:
                lines.append(
                    f"{env} {algo} with env options {options}: costed with rows measured with "
                    f"{measured} (not scaled; perf eval --option KEY=VALUE measures them)"
                )
        for (env, algo, quantity, how, between), sizes in self.estimated.items():
            read = f"{env} {algo} {self.QUANTITIES[quantity]} at n=" + ", ".join(
                f"{n:g}" for n in sorted(sizes)
            )
            measured = " and ".join(f"n={size}" for size in between)
            if how == "one size":
                lines.append(f"{read}: the value at {measured}, the only size measured")
            else:
                source = "between" if how == "interpolated" else "from"
                lines.append(f"{read}: {how} {source} {measured}")
        return lines


@dataclass
class AlgoPlan:
    """The training and evaluation of one algorithm in one env.

    Attributes:
        env, algo: the env and algorithm.
        n_runs: training runs.
        n_updates: their gradient updates.
        n_cells: cells.
        n_eval_episodes: evaluation episodes.
        rows_algo: whose cost rows cost it (the algorithm's own, or "bc"; None: no rows).
        train_hours, eval_hours: estimated core-hours (None: not estimated).
    """

    env: str
    algo: str
    n_runs: int = 0
    n_updates: int = 0
    n_cells: int = 0
    n_eval_episodes: int = 0
    rows_algo: str | None = None
    train_hours: float | None = None
    eval_hours: float | None = None


@dataclass
class EnvPlan:
    """Everything a suite does in one env (or, as `Plan.total`, in all).

    Attributes:
        env: env name.
        n_runs: training runs (each run directory once).
        n_pretraining: runs that only fine-tuning jobs start from (no job is evaluated from them).
        n_shared: runs that fine-tuning jobs start from and a transfer job is evaluated from.
        n_cells: cells.
        n_updates: gradient updates of all runs.
        n_eval_episodes: evaluation episodes of all cells.
        datasets: {team size: (datasets to collect, their episodes)}.
        n_mixtures: mixtures drawn from collected datasets.
        train_hours, eval_hours, collect_hours: estimated core-hours (None: not estimated).
    """

    env: str
    n_runs: int = 0
    n_pretraining: int = 0
    n_shared: int = 0
    n_cells: int = 0
    n_updates: int = 0
    n_eval_episodes: int = 0
    datasets: dict[int, tuple[int, int]] = field(default_factory=dict)
    n_mixtures: int = 0
    train_hours: float | None = None
    eval_hours: float | None = None
    collect_hours: float | None = None

    @property
    def n_datasets(self) -> int:
        return sum(count for count, _ in self.datasets.values())

    @property
    def n_dataset_episodes(self) -> int:
        return sum(episodes for _, episodes in self.datasets.values())

    @property
    def core_hours(self) -> float | None:
        if self.train_hours is None or self.eval_hours is None or self.collect_hours is None:
            return None
        return self.train_hours + self.eval_hours + self.collect_hours

    def wall_hours(self, workers: int) -> float | None:
        """Collection in the runner's own process, then the jobs on `workers` workers."""
        if self.train_hours is None or self.eval_hours is None or self.collect_hours is None:
            return None
        return self.collect_hours + (self.train_hours + self.eval_hours) / workers


@dataclass
class Plan:
    """A suite's compute, per env.

    Attributes:
        suite: the suite's name.
        workers: jobs run in parallel.
        envs: one plan per env, in the suite's order.
        algos: one plan per (env, algorithm), in the suite's order.
        costed: whether cost rows were given.
        notes: what the estimates assumed (interpolations, fallbacks, envs without costs).
    """

    suite: str
    workers: int
    envs: list[EnvPlan]
    algos: list[AlgoPlan]
    costed: bool
    notes: list[str]

    def total(self) -> EnvPlan:
        """The sum over envs; its hours sum the envs that have all three (None if none has)."""
        total = EnvPlan("total")
        counts = ("n_runs", "n_pretraining", "n_shared", "n_cells", "n_updates")
        for env in self.envs:
            for name in (*counts, "n_eval_episodes", "n_mixtures"):
                setattr(total, name, getattr(total, name) + getattr(env, name))
            for n, (count, episodes) in env.datasets.items():
                before = total.datasets.get(n, (0, 0))
                total.datasets[n] = (before[0] + count, before[1] + episodes)
        total.datasets = dict(sorted(total.datasets.items()))
        costed = [env for env in self.envs if env.core_hours is not None]
        if costed:
            total.train_hours = sum(env.train_hours or 0.0 for env in costed)
            total.eval_hours = sum(env.eval_hours or 0.0 for env in costed)
            total.collect_hours = sum(env.collect_hours or 0.0 for env in costed)
        return total


def plan_suite(
    suite: Suite,
    cost_rows: list[EvalCost] | None = None,
    workers: int = 1,
    only: dict[str, set[str]] | None = None,
) -> Plan:
    """What `marl-bench run` does for the jobs of `suite` matching `only`, and with
    `cost_rows` what that costs (the model: this module's docstring).

    Args:
        suite: the suite.
        cost_rows: rows of a costs file (`benchmark.perf.read_cost_rows`); None: sizes only.
        workers: jobs run in parallel (`marl-bench run --workers`).
        only: filters (`benchmark.suites.parse_filters`), as `marl-bench run --only`.

    Raises:
        UserError: fewer than 1 worker, or no job matching `only`.
    """
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    jobs = [job for job in suite.jobs() if job_matches(job, only or {})]
    if not jobs:
        raise UserError(f"no job of suite {suite.name!r} matches the filters {only}")
    envs: dict[str, EnvPlan] = {}
    algos: dict[tuple[str, str], AlgoPlan] = {}
    for job in jobs:
        env_name = job.experiment.env
        env = envs.setdefault(env_name, EnvPlan(env_name))
        algo = algos.setdefault((env_name, job.algo), AlgoPlan(env_name, job.algo))
        for part in (env, algo):
            part.n_cells += len(job.eval_agents)
            part.n_eval_episodes += len(job.eval_agents) * job.experiment.n_eval_episodes
    runs = training_runs(jobs)
    for run in runs:
        env, algo = envs[run.env], algos[(run.env, run.algo)]
        for part in (env, algo):
            part.n_runs += 1
            part.n_updates += run.n_updates
        env.n_pretraining += run.pretraining and not run.evaluated
        env.n_shared += run.pretraining and run.evaluated
    steps = needed_datasets(Path("plan"), jobs)
    collections = [step for step in steps if isinstance(step, CollectRequest)]
    for step in collections:
        env = envs[step.env]
        count, episodes = env.datasets.get(step.n_agents, (0, 0))
        env.datasets[step.n_agents] = (count + 1, episodes + (step.n_episodes or 0))
    for step in steps:
        if isinstance(step, CombineStep):
            envs[DatasetId.parse(step.dataset_id).env].n_mixtures += 1
    for env in envs.values():
        env.datasets = dict(sorted(env.datasets.items()))
    notes: list[str] = []
    if cost_rows is not None:
        notes = _estimate(CostTable(cost_rows), jobs, runs, collections, envs, algos, workers)
    return Plan(
        suite.name, workers, list(envs.values()), list(algos.values()), cost_rows is not None, notes
    )


def _estimate(
    table: CostTable,
    jobs: list[Job],
    runs: list[TrainingRun],
    collections: list[CollectRequest],
    envs: dict[str, EnvPlan],
    algos: dict[tuple[str, str], AlgoPlan],
    workers: int,
) -> list[str]:
    """Fill in the hours of `envs` and `algos` from `table`; returns the notes to print."""
    notes = []
    for (env_name, algo_name), algo in algos.items():
        rows_algo = algo.rows_algo = table.rows_algo(env_name, algo_name)
        if rows_algo is None:
            continue
        own_runs = [run for run in runs if (run.env, run.algo) == (env_name, algo_name)]
        own_jobs = [job for job in jobs if (job.experiment.env, job.algo) == (env_name, algo_name)]
        train_s = sum(
            run.n_updates
            / 1000
            * table.cost(
                env_name,
                rows_algo,
                "seconds_per_1k_updates",
                mean(run.sizes),
                run.hidden_size,
                run.options,
            )
            for run in own_runs
        )
        widths = {job.name: hidden_size(job) for job in own_jobs}
        eval_s = sum(
            job.experiment.n_eval_episodes
            * table.cost(
                env_name,
                rows_algo,
                "seconds_per_episode",
                n,
                widths[job.name],
                job.experiment.env_options,
            )
            for job in own_jobs
            for n in job.eval_agents
        )
        algo.train_hours, algo.eval_hours = train_s / 3600, eval_s / 3600
        trained = sorted({job.experiment.batch_size for job in own_jobs})
        measured = sorted(table.batch_sizes(env_name, rows_algo))
        if trained != measured:
            notes.append(
                f"{env_name} {algo_name} trains on batches of {', '.join(map(str, trained))}; "
                f"its rows were measured at {', '.join(map(str, measured))} (not scaled)"
            )
    lacking = [name for name in envs if name not in table.envs]
    for env in envs.values():
        env_algos = [algo for algo in algos.values() if algo.env == env.env]
        if env.env in lacking:
            continue
        without = [algo.algo for algo in env_algos if algo.rows_algo is None]
        if without:
            notes.append(
                f"no costs for {', '.join(without)} in {env.env} (no rows of its own nor of "
                f"{REFERENCE_ALGO}): {env.env}'s training and evaluation not estimated"
            )
        else:
            env.train_hours = sum(algo.train_hours or 0.0 for algo in env_algos)
            env.eval_hours = sum(algo.eval_hours or 0.0 for algo in env_algos)
        if (env.env, REFERENCE_ALGO) not in table.rows:
            notes.append(f"no {REFERENCE_ALGO} rows for {env.env}: its collection not estimated")
            continue
        reference_width = table.widest(env.env, REFERENCE_ALGO)
        env.collect_hours = (
            sum(
                (step.n_episodes or 0)
                * table.cost(
                    env.env,
                    REFERENCE_ALGO,
                    "seconds_per_episode",
                    step.n_agents,
                    reference_width,
                    step.options,
                )
                for step in collections
                if step.env == env.env
            )
            / 3600
        )
    if lacking:
        notes.append(
            f"no costs for {', '.join(lacking)} in the costs file: sizes only, left out of the "
            "total's hours"
        )
    fallbacks = [algo for algo in algos.values() if algo.rows_algo not in (None, algo.algo)]
    if fallbacks:
        notes.append(
            f"rows ≈ {REFERENCE_ALGO}: {len(fallbacks)} algorithm"
            f"{'s' * (len(fallbacks) > 1)} without rows of their own in an env, costed with "
            f"{REFERENCE_ALGO}'s rows of that env, unscaled"
        )
    notes.extend(table.notes())
    notes.append(
        "collection costed as BC's evaluation episodes at the collection size: an approximation "
        "(the behaviour policies are not BC, and collection plays episodes one at a time)"
    )
    notes.append(
        f"wall-hours at {workers} worker{'s' if workers > 1 else ''} = collection (first, in the "
        f"runner's process) + (training + evaluation) / {workers}: a lower bound, jobs shared "
        "evenly"
    )
    return notes


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def plan_renderables(plan: Plan) -> list[Any]:
    """The plan as rich tables and lines: per env and in total; with costs, per algorithm; the
    datasets per env and team size; the notes."""
    from rich.table import Table

    total = plan.total()
    rows = [*plan.envs, total]
    title = f"Plan of suite {plan.suite}"
    if plan.costed:
        title += f" (core-hours; wall-hours at {plan.workers} worker{'s' * (plan.workers > 1)})"
    per_env = Table(title=title)
    columns = ["env", "training runs", "cells", "updates", "eval episodes", "datasets (episodes)"]
    if plan.costed:
        columns += ["train core-h", "eval core-h", "collect core-h", "core-h", "wall-h"]
    for column in columns:
        per_env.add_column(column, justify="left" if column == "env" else "right")
    for index, env in enumerate(rows):
        cells = [
            env.env,
            f"{env.n_runs:,}",
            f"{env.n_cells:,}",
            f"{env.n_updates:,}",
            f"{env.n_eval_episodes:,}",
            f"{env.n_datasets:,} ({env.n_dataset_episodes:,})",
        ]
        if plan.costed:
            cells += [
                _hours(env.train_hours),
                _hours(env.eval_hours),
                _hours(env.collect_hours),
                _hours(env.core_hours),
                _hours(env.wall_hours(plan.workers)),
            ]
        per_env.add_row(*cells, end_section=index == len(rows) - 2)
    renderables: list[Any] = [per_env]
    if plan.costed:
        per_algo = Table(title="Training and evaluation by algorithm (core-hours)")
        for column in ("env", "algo", "rows", "runs", "updates", "train core-h", "eval core-h"):
            per_algo.add_column(column, justify="left" if column in ("env", "algo") else "right")
        for algo in plan.algos:
            if algo.rows_algo is None:
                rows_text = "none"
            else:
                rows_text = "own" if algo.rows_algo == algo.algo else f"≈ {algo.rows_algo}"
            per_algo.add_row(
                algo.env,
                algo.algo,
                rows_text,
                f"{algo.n_runs:,}",
                f"{algo.n_updates:,}",
                _hours(algo.train_hours),
                _hours(algo.eval_hours),
            )
        renderables.append(per_algo)
    datasets = Table(title="Datasets to collect")
    for column in ("env", "agents", "datasets", "episodes"):
        datasets.add_column(column, justify="left" if column == "env" else "right")
    for env in plan.envs:
        for n, (count, episodes) in env.datasets.items():
            datasets.add_row(env.env, str(n), f"{count:,}", f"{episodes:,}")
    renderables.append(datasets)
    lines = [
        f"{env.env}: {env.n_mixtures} mixture{'s' * (env.n_mixtures != 1)}, drawn from these "
        "datasets (not collected)"
        for env in plan.envs
        if env.n_mixtures
    ]
    if total.n_shared or total.n_pretraining:
        lines.append(
            f"fine-tuning starts from {total.n_shared + total.n_pretraining} pretraining "
            f"run{'s' * (total.n_shared + total.n_pretraining != 1)}, counted once: "
            f"{total.n_shared} also a transfer job's run, {total.n_pretraining} trained for "
            "fine-tuning alone"
        )
    renderables.extend(lines + plan.notes)
    return renderables
