"""Run a suite: collect missing datasets, train every job, evaluate it online at every team size,
and append one record per cell to the result store.

The work of one job (`run_job`) is a plain function of a picklable `JobTask`, so the same code
runs in this process, in a pool of local processes, or as Ray tasks on a local Ray instance or an
existing cluster (`executor="ray"`, the optional `ray` extra): scaling out changes one flag.

Resuming: cells whose latest record succeeded are skipped; a job with some cells left trains
again from its run directory's checkpoint (`fit(..., resume=True)`, a finished run does no more
updates) and evaluates only the missing team sizes. Datasets live under `<out>/datasets`, one
folder per (episodes, seed) recipe, so a suite's results always come from its own recorded data.
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
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmark.store import ResultStore
from benchmark.suites import DataSpec, Experiment, Job, Suite, job_matches, tuned_settings
from datagen.collect import CollectRequest, collect
from datagen.dataset.ids import DatasetId
from datagen.dataset.ops import combine
from datagen.errors import UserError
from datagen.paths import git_commit

EXECUTORS = ("local", "ray")


def dataset_root(out: Path, n_episodes: int, seed: int) -> Path:
    """Where a suite keeps its datasets of one collection recipe."""
    return out / "datasets" / f"episodes{n_episodes}-seed{seed}"


def _recipe(exp: Experiment, small: bool) -> tuple[int, int]:
    """(episodes, collection seed) of an experiment's datasets (`small`: the fine-tuning ones)."""
    if small:
        return exp.finetune_episodes, exp.dataset_seed + 1
    return exp.dataset_episodes, exp.dataset_seed


def dataset_path(
    out: Path, exp: Experiment, n_agents: int, data: DataSpec, small: bool = False
) -> Path:
    """The dataset a job of `exp` trains on at `n_agents` (`small`: the fine-tuning dataset)."""
    dataset_id = DatasetId(exp.env, n_agents, data.dataset_quality)
    return dataset_id.path("hdf5", root=dataset_root(out, *_recipe(exp, small)))


def _collect_request(
    out: Path, exp: Experiment, n_agents: int, tag: str, small: bool = False
) -> CollectRequest:
    quality, _, mode = tag.partition("-")
    n_episodes, seed = _recipe(exp, small)
    return CollectRequest(
        env=exp.env,
        n_agents=n_agents,
        quality=quality,
        n_episodes=n_episodes,
        seed=seed,
        out=dataset_path(out, exp, n_agents, DataSpec.parse(tag), small),
        resume=True,
        options=dict(exp.env_options),
        degenerate_mode=mode or None,
    )


def needed_datasets(out: Path, jobs: list[Job]) -> list[tuple[str, Any]]:
    """What `jobs` need, in order: ("collect", CollectRequest) for sources, then
    ("combine", (sources, out_id, proportions, n_episodes, seed, path)) for mixtures."""
    steps: dict[Path, tuple[str, Any]] = {}
    for job in jobs:
        exp = job.experiment
        sizes = [(n, False) for n in job.train_agents]
        if exp.kind == "finetune":
            sizes += [(n, True) for n in exp.eval_agents]
        for n, small in sizes:
            data = DataSpec.parse("expert") if small else job.data
            for tag in data.tags:
                request = _collect_request(out, exp, n, tag, small)
                steps.setdefault(request.out, ("collect", request))
            if data.other is not None:
                sources = [str(dataset_path(out, exp, n, DataSpec.parse(t))) for t in data.tags]
                target = dataset_path(out, exp, n, data)
                fraction = data.percent / 100
                plan = (
                    sources,
                    str(DatasetId(exp.env, n, data.dataset_quality)),
                    [1 - fraction, fraction],
                    exp.dataset_episodes,
                    exp.dataset_seed,
                    target,
                )
                steps.setdefault(target, ("combine", plan))
    ordered = [s for s in steps.values() if s[0] == "collect"]
    return ordered + [s for s in steps.values() if s[0] == "combine"]


def prepare_datasets(
    out: Path, jobs: list[Job], on_step: Callable[[str], None] | None = None
) -> None:
    """Collect and combine every dataset `jobs` need that is not on disk yet."""
    for kind, plan in needed_datasets(out, jobs):
        if kind == "collect":
            if plan.out.exists():
                continue
            if on_step:
                on_step(f"collect {plan.env} n={plan.n_agents} {plan.behaviour.tag}")
            collect(plan)
        else:
            sources, out_id, proportions, n_episodes, seed, target = plan
            if target.exists():
                continue
            if on_step:
                on_step(f"combine {out_id}")
            combine(
                sources,
                out_id,
                proportions=proportions,
                n_episodes=n_episodes,
                seed=seed,
                out=target,
            )


@dataclass(frozen=True)
class JobTask:
    """Everything a worker needs to run one job: picklable, for local processes and Ray.

    Attributes:
        name: the job's name (its run directory under `<out>/runs`).
        algo: the algorithm.
        seed: training seed.
        datasets: the training datasets' paths.
        n_updates, batch_size: the training budget.
        run_dir: the run directory.
        env, env_options: the env evaluations play.
        eval_agents: the team sizes still to evaluate.
        eval_episodes, eval_seed: the evaluation.
        base_record: the cell coordinates every record of the job starts from.
        pretrained_dir: (pretrained+finetuned) the offline run to start from.
        pretrain: (pretrained+finetuned) the offline run's own task, trained first if needed.
        overrides: the algorithm's config overrides.
    """

    name: str
    algo: str
    seed: int
    datasets: tuple[str, ...]
    n_updates: int
    batch_size: int
    run_dir: str
    env: str
    env_options: dict[str, Any]
    eval_agents: tuple[int, ...]
    eval_episodes: int
    eval_seed: int
    base_record: dict[str, Any] = field(default_factory=dict)
    pretrain: JobTask | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def _train(task: JobTask) -> Any:
    """Train (or resume, or find finished) the task's run; returns the trained algorithm."""
    from algos.data import OfflineData
    from algos.train import fit, train
    from benchmark.evaluate import load_run

    if task.pretrain is None:
        result = train(
            task.algo,
            list(task.datasets),
            task.n_updates,
            out=task.run_dir,
            seed=task.seed,
            batch_size=task.batch_size,
            overrides=task.overrides,
            resume=True,
            progress=False,
        )
    else:
        _train(task.pretrain)
        data = OfflineData.from_datasets(list(task.datasets))
        # Start from the pretrained parameters and normalisation (a resumed fine-tuning run
        # replaces them with its own checkpoint).
        algo = load_run(task.pretrain.run_dir).algo
        algo.n_updates = 0
        result = fit(
            algo,
            data,
            task.n_updates,
            task.run_dir,
            seed=task.seed,
            batch_size=task.batch_size,
            resume=True,
            progress=False,
        )
    metrics = result.last_metrics
    bad = [key for key, value in metrics.items() if not math.isfinite(value)]
    if bad:
        raise FloatingPointError(f"non-finite training metric {bad[0]} = {metrics[bad[0]]}")
    return load_run(task.run_dir).algo


def run_job(task: JobTask) -> list[dict[str, Any]]:
    """Train one job and evaluate it at each pending team size: one record per cell.

    Never raises for a failing cell: an exception (or a non-finite loss) becomes a failed record
    holding the error, so the suite goes on.
    """
    import torch

    from benchmark.evaluate import evaluate_algorithm, normalized

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
                    algo, task.env, n, task.eval_episodes, task.eval_seed, task.env_options
                )
            if score is None:
                raise UserError(f"no reference scores for {task.env} with {n} agents")
            returns = [float(r) for r in evaluation.returns]
            records.append(
                {
                    **task.base_record,
                    "key": f"{task.name}@n{n}",
                    "eval_agents": n,
                    "status": "ok",
                    "error": None,
                    "returns": returns,
                    "scores": [normalized(task.env, n, r) for r in returns],
                    "team_return_mean": evaluation.mean,
                    "team_return_std": evaluation.std,
                    "normalized_score": score,
                    "env_metrics": evaluation.metric_means(),
                    "train_seconds": train_seconds,
                    "eval_seconds": time.perf_counter() - began,
                    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            )
        except Exception as err:  # noqa: BLE001
            records.append(_failed(task, n, describe_error(err)))
    return records


def describe_error(err: BaseException) -> str:
    """An exception in one line, with where it was raised (a failed record's error)."""
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(err).__name__}: {err}{where}"


def _failed(task: JobTask, n: int, error: str) -> dict[str, Any]:
    return {
        **task.base_record,
        "key": f"{task.name}@n{n}",
        "eval_agents": n,
        "status": "failed",
        "error": error,
        "normalized_score": None,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def make_task(job: Job, out: Path, pending: tuple[int, ...], command: str) -> JobTask:
    """The task of `job`, evaluating only the `pending` team sizes."""
    exp = job.experiment
    if job.regime == "offline":
        datasets = tuple(str(dataset_path(out, exp, n, job.data)) for n in job.train_agents)
        n_updates = exp.updates
    else:
        expert = DataSpec.parse("expert")
        datasets = (str(dataset_path(out, exp, job.target, expert, small=True)),)
        n_updates = exp.finetune_updates
    from algos.registry import information_class

    overrides = job_overrides(job)
    pretrain = None
    if job.regime == "pretrained+finetuned":
        pretrain = make_task(job.pretraining(), out, (), command)
    run_dir = str(out / "runs" / job.name)
    base = {
        "suite_job": job.name,
        "kind": exp.kind,
        "env": exp.env,
        "env_options": dict(exp.env_options),
        "train_agents": list(job.train_agents),
        "data": job.data.label,
        "regime": job.regime,
        "algo": job.algo,
        "information": information_class(job.algo, overrides),
        "tuned": exp.tuned,
        "tuned_params": (tuned_settings(job.algo) or {}) if exp.tuned else {},
        "seed": job.seed,
        "updates": n_updates,
        "batch_size": exp.batch_size,
        "config_overrides": overrides,
        "datasets": list(datasets),
        "eval_episodes": exp.eval_episodes,
        "eval_seed": exp.eval_seed,
        "run_dir": run_dir,
        "command": command,
        "git_commit": git_commit(),
    }
    return JobTask(
        name=job.name,
        algo=job.algo,
        seed=job.seed,
        datasets=datasets,
        n_updates=n_updates,
        batch_size=exp.batch_size,
        run_dir=run_dir,
        env=exp.env,
        env_options=dict(exp.env_options),
        eval_agents=pending,
        eval_episodes=exp.eval_episodes,
        eval_seed=exp.eval_seed,
        base_record=base,
        pretrain=pretrain,
        overrides=overrides,
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
    """What `run_suite` did.

    Attributes:
        out: the output directory.
        n_cells: cells of the suite.
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


def _execute_local(tasks: list[JobTask], workers: int) -> Iterator[list[dict[str, Any]]]:
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
) -> Iterator[list[dict[str, Any]]]:
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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=not progress,
    )
    with bar:
        data_task = bar.add_task("datasets", total=None, status="")
        prepare_datasets(
            out,
            [job for job, _ in todo],
            on_step=lambda text: bar.update(data_task, status=text),
        )
        bar.update(data_task, total=1, completed=1, status="ready")
        cells = bar.add_task(f"{suite.name} cells", total=sum(len(p) for _, p in todo), status="")
        tasks = [make_task(job, out, pending, command) for job, pending in todo]
        if executor == "ray":
            results = _execute_ray(tasks, workers, address)
        else:
            results = _execute_local(tasks, workers)
        for records in results:
            for record in records:
                record["suite"] = suite.name
                store.append(record)
                if record["status"] == "ok":
                    summary.n_ok += 1
                else:
                    summary.n_failed += 1
            last = records[-1] if records else {}
            bar.update(
                cells,
                advance=len(records),
                status=f"ok {summary.n_ok} failed {summary.n_failed} last: {last.get('suite_job')}",
            )
    summary.seconds = time.perf_counter() - started
    return summary


def failed_cells(
    out: Path | str, suite: Suite, only: dict[str, set[str]] | None = None
) -> list[dict[str, Any]]:
    """The latest records of `suite`'s cells (those matching `only`) that failed."""
    latest = ResultStore(out).latest()
    jobs = [job for job in suite.jobs() if job_matches(job, only or {})]
    keys = {key for job in jobs for key in job.cell_keys()}
    return [r for k, r in latest.items() if k in keys and r["status"] == "failed"]
