"""Run a suite: collect missing datasets, train every job, evaluate it online at every team size,
and append one record per cell to the result store.

The work of one job (`run_job`) is a plain function of a picklable `JobTask`, so the same code
runs in this process, in a pool of local processes, or as Ray tasks on a local Ray instance or an
existing cluster (`executor="ray"`, the optional `ray` extra): scaling out changes one flag.

Resuming: cells whose latest record succeeded are skipped; a job with some cells left trains
again from its run directory's checkpoint (`fit(..., resume=True)`, a finished run does no more
updates) and evaluates only the missing team sizes. Datasets live under `<out>/datasets`, one
folder per (episodes, seed) recipe, so a suite's results always come from its own recorded data;
with `dataset_per_seed` each training seed has its own recipe (`Experiment.data_seed`).
A pretrained+finetuned job fine-tunes its offline run (`algos.train.train(init_from=...)`).
Every record is a `benchmark.store.CellRecord`: the job's `JobRecord` and one evaluation.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.store import CellRecord, JobRecord, ResultStore
from benchmark.suites import DataSpec, Experiment, Job, Suite, job_matches, tuned_settings
from datagen.collect import CollectRequest, collect
from datagen.dataset.ids import DatasetId
from datagen.dataset.ops import combine
from datagen.errors import UserError
from datagen.paths import git_commit

if TYPE_CHECKING:
    from algos.train import TrainSettings

EXECUTORS = ("local", "ray")


def dataset_root(out: Path, n_episodes: int, seed: int) -> Path:
    """Where a suite keeps its datasets of one collection recipe."""
    return out / "datasets" / f"episodes{n_episodes}-seed{seed}"


def _recipe(exp: Experiment, seed: int, small: bool) -> tuple[int, int]:
    """(episodes, collection seed) of the datasets training seed `seed` of `exp` uses (`small`:
    the fine-tuning ones)."""
    n_episodes = exp.n_finetune_episodes if small else exp.n_dataset_episodes
    return n_episodes, exp.data_seed(seed, small)


def dataset_path(
    out: Path, exp: Experiment, seed: int, n_agents: int, data: DataSpec, small: bool = False
) -> Path:
    """The dataset training seed `seed` of `exp` trains on at `n_agents` (`small`: the
    fine-tuning dataset)."""
    dataset_id = DatasetId(exp.env, n_agents, data.dataset_quality)
    return dataset_id.path("hdf5", root=dataset_root(out, *_recipe(exp, seed, small)))


def _collect_request(
    out: Path, exp: Experiment, seed: int, n_agents: int, tag: str, small: bool = False
) -> CollectRequest:
    quality, _, mode = tag.partition("-")
    n_episodes, data_seed = _recipe(exp, seed, small)
    return CollectRequest(
        env=exp.env,
        n_agents=n_agents,
        quality=quality,
        n_episodes=n_episodes,
        seed=data_seed,
        out=dataset_path(out, exp, seed, n_agents, DataSpec.parse(tag), small),
        resume=True,
        options=dict(exp.env_options),
        degenerate_mode=mode or None,
    )


@dataclass(frozen=True)
class CombineStep:
    """A mixture to make from collected sources (`datagen.dataset.ops.combine`).

    Attributes:
        sources: the sources' paths, in the mixture's order.
        dataset_id: the mixture's dataset id.
        proportions: each source's share of the episodes.
        n_episodes: episodes of the mixture.
        seed: seed of the episodes' draw (the mixture's data seed).
        out: where the mixture goes.
    """

    sources: tuple[str, ...]
    dataset_id: str
    proportions: tuple[float, ...]
    n_episodes: int
    seed: int
    out: Path


def needed_datasets(out: Path, jobs: list[Job]) -> list[CollectRequest | CombineStep]:
    """What `jobs` need, each once: the collections of every source, then the mixtures."""
    steps: dict[Path, CollectRequest | CombineStep] = {}
    for job in jobs:
        exp, seed = job.experiment, job.seed
        sizes = [(n, False) for n in job.train_agents]
        if exp.kind == "finetune":
            sizes += [(n, True) for n in exp.eval_agents]
        for n, small in sizes:
            data = DataSpec.parse("expert") if small else job.data
            for tag in data.tags:
                request = _collect_request(out, exp, seed, n, tag, small)
                steps.setdefault(request.out, request)
            if data.other is not None:
                sources = [
                    dataset_path(out, exp, seed, n, DataSpec.parse(tag), small) for tag in data.tags
                ]
                n_episodes, data_seed = _recipe(exp, seed, small)
                fraction = data.percent / 100
                combined = CombineStep(
                    sources=tuple(str(source) for source in sources),
                    dataset_id=str(DatasetId(exp.env, n, data.dataset_quality)),
                    proportions=(1 - fraction, fraction),
                    n_episodes=n_episodes,
                    seed=data_seed,
                    out=dataset_path(out, exp, seed, n, data, small),
                )
                steps.setdefault(combined.out, combined)
    ordered = [s for s in steps.values() if isinstance(s, CollectRequest)]
    return ordered + [s for s in steps.values() if isinstance(s, CombineStep)]


def prepare_datasets(
    out: Path, jobs: list[Job], on_step: Callable[[str], None] | None = None
) -> None:
    """Collect and combine every dataset `jobs` need that is not on disk yet."""
    for step in needed_datasets(out, jobs):
        if step.out.exists():
            continue
        if isinstance(step, CollectRequest):
            if on_step:
                on_step(f"collect {step.env} n={step.n_agents} {step.behaviour.tag}")
            collect(step)
        else:
            if on_step:
                on_step(f"combine {step.dataset_id}")
            combine(
                list(step.sources),
                step.dataset_id,
                proportions=list(step.proportions),
                n_episodes=step.n_episodes,
                seed=step.seed,
                out=step.out,
            )


@dataclass(frozen=True)
class JobTask:
    """Everything a worker needs to run one job: picklable, for local processes and Ray.

    Attributes:
        name: the job's name (its run directory under `<out>/runs`).
        settings: how it trains.
        record: what every record of the job holds (algorithm, datasets, run directory, env and
            evaluation protocol included).
        eval_agents: the team sizes still to evaluate.
        pretrain: (pretrained+finetuned) the offline run's own task, trained first if needed;
            the job then fine-tunes that run (`algos.train.train(init_from=...)`).
    """

    name: str
    settings: TrainSettings
    record: JobRecord
    eval_agents: tuple[int, ...]
    pretrain: JobTask | None = None


def _train(task: JobTask) -> Any:
    """Train (or resume, or find finished) the task's run; returns the trained algorithm."""
    from algos.train import train
    from benchmark.evaluate import load_run

    init_from = None
    if task.pretrain is not None:
        _train(task.pretrain)
        init_from = task.pretrain.record.run_dir
    result = train(
        task.record.algo,
        list(task.record.datasets),
        task.settings,
        out=task.record.run_dir,
        overrides=task.record.config_overrides,
        init_from=init_from,
        resume=True,
        progress=False,
    )
    metrics = result.last_metrics
    bad = [key for key, value in metrics.items() if not math.isfinite(value)]
    if bad:
        raise FloatingPointError(f"non-finite training metric {bad[0]} = {metrics[bad[0]]}")
    return load_run(task.record.run_dir).algo


def run_job(task: JobTask) -> list[CellRecord]:
    """Train one job and evaluate it at each pending team size: one record per cell.

    Never raises for a failing cell: an exception (or a non-finite loss) becomes a failed record
    holding the error, so the suite goes on.
    """
    import torch

    from benchmark.evaluate import evaluate_algorithm, normalized

    shared = task.record
    records = []
    started = time.perf_counter()
    try:
        algo = _train(task)
    except Exception as err:  # noqa: BLE001 - a failing cell is recorded, never fatal
        error = describe_error(err)
        return [_failed(task, n, error) for n in task.eval_agents]
    train_seconds = time.perf_counter() - started
    for n in task.eval_agents:
        began = time.perf_counter()
        try:
            with torch.no_grad():
                evaluation, score = evaluate_algorithm(
                    algo,
                    shared.env,
                    n,
                    shared.n_eval_episodes,
                    shared.eval_seed,
                    shared.env_options,
                )
            if score is None:
                raise UserError(f"no reference scores for {shared.env} with {n} agents")
            returns = [float(r) for r in evaluation.returns]
            records.append(
                CellRecord.of(
                    shared,
                    key=f"{task.name}@n{n}",
                    eval_agents=n,
                    status="ok",
                    returns=tuple(returns),
                    scores=tuple(normalized(shared.env, n, r) for r in returns),
                    team_return_mean=evaluation.mean,
                    team_return_std=evaluation.std,
                    normalized_score=score,
                    env_metrics=evaluation.metric_means(),
                    train_seconds=train_seconds,
                    eval_seconds=time.perf_counter() - began,
                    finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                )
            )
        except Exception as err:  # noqa: BLE001
            records.append(_failed(task, n, describe_error(err)))
    return records


def describe_error(err: BaseException) -> str:
    """An exception in one line, with where it was raised (a failed record's error)."""
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(err).__name__}: {err}{where}"


def _failed(task: JobTask, n: int, error: str) -> CellRecord:
    return CellRecord.of(
        task.record,
        key=f"{task.name}@n{n}",
        eval_agents=n,
        status="failed",
        error=error,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def make_task(
    job: Job, out: Path, pending: tuple[int, ...], command: str, suite: str | None = None
) -> JobTask:
    """The task of `job` of suite `suite`, evaluating only the `pending` team sizes."""
    pretrain = None
    if job.regime == "pretrained+finetuned":
        pretrain = make_task(job.pretraining(), out, (), command, suite)
    record = job_record(job, out, job_overrides(job), command, suite)
    return JobTask(job.name, job.settings, record, pending, pretrain)


def job_record(
    job: Job, out: Path, overrides: dict[str, Any], command: str, suite: str | None = None
) -> JobRecord:
    """What every record of `job` holds, trained under `out` with the config `overrides`."""
    from algos.registry import information_class

    exp = job.experiment
    if job.small:
        sizes, data = (job.target,), DataSpec.parse("expert")
    else:
        sizes, data = job.train_agents, job.data
    n_episodes, data_seed = _recipe(exp, job.seed, job.small)
    settings = job.settings
    return JobRecord(
        kind=exp.kind,
        env=exp.env,
        env_options=dict(exp.env_options),
        train_agents=job.train_agents,
        data=job.data.label,
        regime=job.regime,
        algo=job.algo,
        information=information_class(job.algo, overrides),
        tuned=exp.tuned,
        tuned_params=(tuned_settings(job.algo) or {}) if exp.tuned else {},
        config_overrides=overrides,
        seed=job.seed,
        data_seed=data_seed,
        datasets=tuple(str(dataset_path(out, exp, job.seed, n, data, job.small)) for n in sizes),
        n_dataset_episodes=n_episodes,
        n_updates=settings.n_updates,
        batch_size=settings.batch_size,
        n_eval_episodes=exp.n_eval_episodes,
        eval_seed=exp.eval_seed,
        run_dir=str(out / "runs" / job.name),
        suite=suite,
        suite_job=job.name,
        command=command,
        git_commit=git_commit(),
    )


def job_overrides(job: Job) -> dict[str, Any]:
    """The config overrides of a job's algorithm: its tuned settings when the experiment asks
    for them (`benchmark.tune.tuned_settings`), then the experiment's "all" entry (fields the
    algorithm has), then its own entry."""
    from algos.registry import get_entry

    fields_of_algo = get_entry(job.algo).defaults()
    tuned = (tuned_settings(job.algo) or {}) if job.experiment.tuned else {}
    shared = job.experiment.config.get("all", {})
    overrides = {key: value for key, value in shared.items() if key in fields_of_algo}
    return tuned | overrides | dict(job.experiment.config.get(job.algo, {}))


@dataclass
class RunSummary:
    """What `run_suite` (or `benchmark.curves.run_curves`) did.

    Attributes:
        out: the output directory.
        n_cells: cells of the suite (curves: its (algorithm, seed, updates) points).
        n_skipped: cells already finished (resume).
        n_ok, n_failed: cells recorded by this call.
        seconds: wall time.
    """

    out: Path
    n_cells: int
    n_skipped: int
    n_ok: int = 0
    n_failed: int = 0
    seconds: float = 0.0


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _execute_local(tasks: list[JobTask], workers: int) -> Iterator[list[CellRecord]]:
    if workers <= 1:
        for task in tasks:
            yield run_job(task)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_worker_init, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(run_job, task) for task in tasks]
        for future in as_completed(futures):
            yield future.result()


def _execute_ray(
    tasks: list[JobTask], workers: int, address: str | None
) -> Iterator[list[CellRecord]]:
    try:
        import ray
    except ImportError as err:
        raise UserError(
            "the ray executor needs the ray extra: pip install 'marl-offline-coordination[ray]'"
        ) from err
    started_here = not ray.is_initialized()
    if started_here:
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            init["address"] = address
        else:
            init["num_cpus"] = max(1, workers)
        try:
            ray.init(**init)
        except ConnectionError as err:
            raise UserError(f"cannot reach the Ray cluster at {address}: {err}") from err
    try:
        remote = ray.remote(num_cpus=1)(run_job)
        pending = [remote.remote(task) for task in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()


def progress_display(console: Any = None, enabled: bool = True) -> Any:
    """The live display of long benchmark work (suites, curves): one bar per task with its
    count, elapsed time, ETA and a status field (`status=` in `add_task`/`update`)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=not enabled,
    )


def run_suite(
    suite: Suite,
    out: Path | str,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    resume: bool = False,
    command: str | None = None,
    progress: bool = True,
    console: Any = None,
    only: dict[str, set[str]] | None = None,
) -> RunSummary:
    """Run every cell of `suite` not finished yet, appending records to `<out>/records.jsonl`.

    Args:
        suite: the suite.
        out: its output directory (datasets, runs, records).
        executor: "local" (this process, or `workers` local processes) or "ray".
        workers: parallel jobs (local processes, or the CPUs of a local Ray instance).
        address: an existing Ray cluster's address (ray executor only).
        resume: continue a run in `out` (without it, an `out` holding records is an error).
        command: the command line recorded with every record (default: this process's argv).
        progress: show a live progress display with ETA.
        console: the rich console to draw on.
        only: run only the jobs matching these filters (`benchmark.suites.parse_filters`).

    Raises:
        UserError: a bad executor or worker count, an `out` holding another run without
            `resume`, or an unreachable Ray cluster.
    """
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if address and executor != "ray":
        raise UserError("--address only applies to --executor ray")
    out = Path(out)
    store = ResultStore(out)
    if store.path.exists() and not resume:
        raise UserError(f"{out} already holds results; pass --resume to continue, or another --out")
    command = command or " ".join(["marl-bench", *map(shlex.quote, sys.argv[1:])])
    started = time.perf_counter()
    jobs = [job for job in suite.jobs() if job_matches(job, only or {})]
    if not jobs:
        raise UserError(f"no job of suite {suite.name!r} matches the filters {only}")
    finished = store.finished_keys()
    todo = []
    for job in jobs:
        pending = tuple(n for n in job.eval_agents if job.cell_key(n) not in finished)
        if pending:
            todo.append((job, pending))
    n_cells = sum(len(job.eval_agents) for job in jobs)
    summary = RunSummary(out, n_cells, n_cells - sum(len(p) for _, p in todo))
    if not todo:
        return summary
    bar = progress_display(console, progress)
    with bar:
        data_task = bar.add_task("datasets", total=None, status="")
        prepare_datasets(
            out,
            [job for job, _ in todo],
            on_step=lambda text: bar.update(data_task, status=text),
        )
        bar.update(data_task, total=1, completed=1, status="ready")
        cells = bar.add_task(f"{suite.name} cells", total=sum(len(p) for _, p in todo), status="")
        tasks = [make_task(job, out, pending, command, suite.name) for job, pending in todo]
        if executor == "ray":
            results = _execute_ray(tasks, workers, address)
        else:
            results = _execute_local(tasks, workers)
        for records in results:
            for record in records:
                store.append(record)
                if record.status == "ok":
                    summary.n_ok += 1
                else:
                    summary.n_failed += 1
            last = records[-1].suite_job if records else None
            bar.update(
                cells,
                advance=len(records),
                status=f"ok {summary.n_ok} failed {summary.n_failed} last: {last}",
            )
    summary.seconds = time.perf_counter() - started
    return summary


def failed_cells(
    out: Path | str, suite: Suite, only: dict[str, set[str]] | None = None
) -> list[CellRecord]:
    """The latest records of `suite`'s cells (those matching `only`) that failed."""
    latest = ResultStore(out).latest()
    jobs = [job for job in suite.jobs() if job_matches(job, only or {})]
    keys = {key for job in jobs for key in job.cell_keys()}
    return [r for k, r in latest.items() if k in keys and r.status == "failed"]
