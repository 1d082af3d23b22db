"""The one training loop: `fit` owns sampling, steps, logging, evaluation cadence, checkpoints and
resuming, for every algorithm.

A run directory holds:

- `config.json`: the algorithm and its config, the data spec (observation shape, action count,
  normalisation), every dataset's id, path and content checksum, the env name and options, the
  `TrainSettings` (seed, batch size, number of updates), the run it started from (`init_from`,
  fine-tuning), git commit and torch version;
- `metrics.csv`: one row per logged value, columns `step,wall_time,name,value` (long format, so new
  metric names and resumed runs append without rewriting a header); training metrics are means over
  the last `log_every` updates;
- `checkpoints/latest.pt` and `checkpoints/step_<n>.pt` every `checkpoint_every` updates:
  `torch.save` of our own state dicts (algorithm, optimisers, counters, the algorithm's and the
  sampler's generator states), written to a temporary file and renamed, loaded with
  `weights_only=True`;
- `tensorboard/` when the `tensorboard` package is importable.

Resuming restores everything in the checkpoint and drops metric rows logged after it, so a run
interrupted at any point and resumed ends with exactly the parameters of an uninterrupted run.
Fine-tuning (`init_from`) starts from a finished run's last checkpoint, with an update counter of
its own from 0 (its steps, checkpoints and the algorithm's `n_updates` agree); resumed, it
continues from its own checkpoint.
A run saved before bounded neighbourhoods reads as it was trained
(`run_config_before_neighbourhoods`), so it resumes and evaluates unchanged.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from algos.base import Algorithm, CommunicatingConfig
from algos.data import DataSpec, OfflineData
from datagen.errors import UserError
from datagen.paths import git_commit

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
LATEST = "latest.pt"
CHECKPOINT_FORMAT = 1

#: Keys of config.json that a resumed run must share with the run it continues.
IDENTITY_KEYS = ("algo", "config", "spec", "datasets", "seed", "batch_size")

EvalFn = Callable[[Algorithm], dict[str, float]]


@dataclass(frozen=True)
class TrainSettings:
    """How a run trains, as a suite's job, `marl-bench train` and `fit` all state it.

    Attributes:
        n_updates: total updates of the run (a resumed run continues up to this count).
        batch_size: transitions per update.
        seed: seed of batch sampling and, where `train` builds the algorithm, of its
            initialisation.
    """

    n_updates: int
    batch_size: int = 256
    seed: int = 0


def run_config(
    algo: Algorithm,
    data: OfflineData,
    settings: TrainSettings,
    init_from: Path | str | None = None,
) -> dict[str, Any]:
    """The content of config.json for a run of `algo` on `data`."""
    return {
        "algo": algo.name,
        "config": algo.config.as_dict(),
        "spec": algo.spec.to_json(),
        "datasets": data.datasets,
        "env": {
            "name": data.env_name,
            "options": data.env_options,
            "n_agents": sorted({d["n_agents"] for d in data.datasets}),
        },
        "seed": settings.seed,
        "batch_size": settings.batch_size,
        "n_updates": settings.n_updates,
        "init_from": None if init_from is None else str(init_from),
        "git_commit": git_commit(),
        "torch": torch.__version__,
    }


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, record: dict[str, Any]) -> None:
    _write_atomic(path, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))


def read_run_config(run_dir: Path | str) -> dict[str, Any]:
    """config.json of a run (as `run_config_before_neighbourhoods` reads older ones).

    Raises:
        UserError: when `run_dir` is not a run directory.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise UserError(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    return run_config_before_neighbourhoods(json.loads(path.read_text()))


def run_config_before_neighbourhoods(record: dict[str, Any]) -> dict[str, Any]:
    """config.json of a run saved before bounded neighbourhoods, as it reads now: its spec has no
    `view_radius` (unknown: None), and a config with `graph_rounds` has no `graph_neighbours`
    nor `graph_neighbourhood`. A communicating run (rounds > 0) heard every alive teammate: the
    whole team, `graph_neighbours` 0; a decentralised one never read either field, which take
    their defaults. Newer runs are returned unchanged."""
    spec, config = record["spec"], record["config"]
    if "graph_rounds" in config and "graph_neighbours" not in config:
        defaults = {f.name: f.default for f in fields(CommunicatingConfig)}
        config = {
            **config,
            "graph_neighbours": 0 if config["graph_rounds"] > 0 else defaults["graph_neighbours"],
            "graph_neighbourhood": defaults["graph_neighbourhood"],
        }
    return {**record, "spec": {"view_radius": None, **spec}, "config": config}


def save_checkpoint(
    path: Path, algo: Algorithm, sampler: torch.Generator, step: int, elapsed: float = 0.0
) -> None:
    """Write a checkpoint atomically (see the module docstring for its content)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "elapsed": elapsed,
        "algorithm": algo.state_dict(),
        "sampler": sampler.get_state(),
    }
    _write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by `fit`, loaded with `weights_only=True`.

    Raises:
        UserError: a missing file or one that is not a checkpoint of this format.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint")
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not a checkpoint of format {CHECKPOINT_FORMAT}")
    return state


class MetricsLog:
    """Appends rows to metrics.csv (and TensorBoard when importable)."""

    def __init__(self, run_dir: Path, keep_until: int | None) -> None:
        self.path = run_dir / METRICS_FILE
        if keep_until is None or not self.path.exists():
            rows: list[list[str]] = []
        else:  # resuming: drop what was logged after the checkpoint
            with self.path.open(newline="") as handle:
                rows = [row for row in csv.reader(handle)][1:]
            rows = [row for row in rows if int(row[0]) <= keep_until]
        with self.path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", "wall_time", "name", "value"])
            writer.writerows(rows)
        self.tensorboard = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, step: int, wall_time: float, values: dict[str, float]) -> None:
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            for name, value in values.items():
                writer.writerow([step, f"{wall_time:.3f}", name, repr(float(value))])
        if self.tensorboard is not None:
            for name, value in values.items():
                self.tensorboard.add_scalar(name, value, step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """metrics.csv rows as dicts with `step` (int), `wall_time`, `name` and `value` (floats)."""
    with (Path(run_dir) / METRICS_FILE).open(newline="") as handle:
        return [
            {
                "step": int(row["step"]),
                "wall_time": float(row["wall_time"]),
                "name": row["name"],
                "value": float(row["value"]),
            }
            for row in csv.DictReader(handle)
        ]


@dataclass
class FitResult:
    """What `fit` did.

    Attributes:
        run_dir: the run directory.
        n_updates: the algorithm's update count at the end.
        start_step: where this call started (0, or the step of the checkpoint it resumed).
        last_metrics: the last logged training metrics (means over the last window).
        last_eval: the last evaluation's metrics (empty without `eval_fn`).
    """

    run_dir: Path
    n_updates: int
    start_step: int
    last_metrics: dict[str, float] = field(default_factory=dict)
    last_eval: dict[str, float] = field(default_factory=dict)


def _check_identity(saved: dict[str, Any], current: dict[str, Any], run_dir: Path) -> None:
    for key in IDENTITY_KEYS:
        if saved.get(key) != current.get(key):
            raise UserError(
                f"{run_dir}: cannot resume, its {key} differs from this run's "
                f"(start a new run with another --out)"
            )


def _start_from(algo: Algorithm, init_from: Path) -> None:
    """Give `algo` the last state of the finished run `init_from` (parameters, normalisation,
    optimisers, generator, reward scale) but its own update counter.

    Raises:
        UserError: `init_from` is not a run, has no checkpoint, or is another algorithm, config
            or data spec than `algo`.
    """
    saved = read_run_config(init_from)
    current = {"algo": algo.name, "config": algo.config.as_dict(), "spec": algo.spec.to_json()}
    for key, value in current.items():
        if saved[key] != value:
            raise UserError(
                f"cannot start from {init_from}: its {key} differs from this run's (build the "
                "algorithm with that run's config and spec, as `train(init_from=...)` does)"
            )
    state = load_checkpoint(init_from / "checkpoints" / LATEST, algo.device)["algorithm"]
    algo.load_state_dict({**state, "n_updates": algo.n_updates})


def fit(
    algo: Algorithm,
    data: OfflineData,
    settings: TrainSettings,
    run_dir: Path | str,
    init_from: Path | str | None = None,
    log_every: int = 100,
    checkpoint_every: int = 1000,
    eval_fn: EvalFn | None = None,
    eval_every: int = 0,
    resume: bool = False,
    progress: bool = True,
) -> FitResult:
    """Train `algo` on `data` for `settings.n_updates` updates in total, writing the run directory.

    Args:
        algo: a freshly built algorithm (with `resume`, its state is replaced by the checkpoint).
        data: the training data; batches are drawn with a generator seeded by `settings.seed`.
        settings: updates, batch size and sampling seed (the algorithm was seeded when built).
        run_dir: the run directory (created).
        init_from: fine-tune: start from this finished run's last checkpoint (`algo` built with
            its algorithm, config and spec), counting updates from 0; a resumed run continues
            from its own checkpoint instead.
        log_every: updates between rows of metrics.csv.
        checkpoint_every: updates between checkpoints (latest.pt is also written at the end).
        eval_fn: called with the algorithm every `eval_every` updates and at the end; its values
            are logged under `eval/`.
        eval_every: updates between evaluations (0: only at the end).
        resume: continue from `run_dir/checkpoints/latest.pt` (from scratch when there is none).
        progress: show a progress bar.

    Raises:
        UserError: bad counts, an existing run without `resume`, a resumed run whose algorithm,
            config, data, seed or batch size differ, or an `init_from` run that `algo` is not.
    """
    n_updates = settings.n_updates
    for label, value in (("n_updates", n_updates), ("batch_size", settings.batch_size)):
        if value < 1:
            raise UserError(f"{label} must be at least 1, got {value}")
    for label, value in (("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        if value < 1:
            raise UserError(f"{label} must be at least 1, got {value}")
    run_dir = Path(run_dir)
    checkpoints = run_dir / "checkpoints"
    latest = checkpoints / LATEST
    config = run_config(algo, data, settings, init_from)
    sampler = torch.Generator(device=data.device).manual_seed(settings.seed)
    start_step, elapsed = 0, 0.0
    if latest.exists() or (run_dir / CONFIG_FILE).exists():
        if not resume:
            raise UserError(f"{run_dir} already holds a run; pass --resume or another --out")
        _check_identity(read_run_config(run_dir), config, run_dir)
    if resume and latest.exists():
        state = load_checkpoint(latest, algo.device)
        algo.load_state_dict(state["algorithm"])
        sampler.set_state(state["sampler"])
        start_step = int(state["step"])
        elapsed = float(state.get("elapsed", 0.0))
    elif init_from is not None:
        _start_from(algo, Path(init_from))
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG_FILE, config)
    log = MetricsLog(run_dir, keep_until=start_step if start_step else None)
    subset = algo.attach(data)
    if subset is not None:
        subset = subset.to(data.device)
    result = FitResult(run_dir, algo.n_updates, start_step)
    sums: dict[str, float] = {}
    window_start, window_steps = time.perf_counter(), 0
    run_start = time.perf_counter() - elapsed

    def evaluate(step: int) -> None:
        values = {f"eval/{name}": float(v) for name, v in eval_fn(algo).items()}
        log.write(step, time.perf_counter() - run_start, values)
        result.last_eval = values

    def checkpoint(step: int, periodic: bool) -> None:
        elapsed_now = time.perf_counter() - run_start
        save_checkpoint(latest, algo, sampler, step, elapsed_now)
        if periodic:
            save_checkpoint(checkpoints / f"step_{step:08d}.pt", algo, sampler, step, elapsed_now)

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[loss]}"),
    )
    bar = Progress(*columns, disable=not progress, transient=False)
    step = start_step
    try:
        with bar:
            task = bar.add_task(
                f"{algo.name}", total=n_updates, completed=start_step, rate="", loss=""
            )
            while step < n_updates:
                batch = data.sample(settings.batch_size, sampler, subset)
                if batch.obs.device != algo.device:
                    batch = batch.to(algo.device)
                metrics = algo.update(batch)
                step += 1
                window_steps += 1
                for name, value in metrics.items():
                    sums[name] = sums.get(name, 0.0) + value
                if step % log_every == 0 or step == n_updates:
                    now = time.perf_counter()
                    means = {name: total / window_steps for name, total in sums.items()}
                    means["perf/updates_per_s"] = window_steps / max(now - window_start, 1e-9)
                    log.write(step, now - run_start, means)
                    result.last_metrics = means
                    losses = [f"{k}={v:.4g}" for k, v in means.items() if k.startswith("loss/")]
                    bar.update(
                        task,
                        completed=step,
                        rate=f"{means['perf/updates_per_s']:,.0f} upd/s",
                        loss=" ".join(losses[:2]),
                    )
                    sums, window_start, window_steps = {}, now, 0
                if eval_fn is not None and eval_every and step % eval_every == 0:
                    evaluate(step)
                if step % checkpoint_every == 0:
                    checkpoint(step, periodic=True)
            if eval_fn is not None and not (eval_every and step % eval_every == 0):
                evaluate(step)
            checkpoint(step, periodic=False)
    except KeyboardInterrupt:
        # The last update finished: save it so that --resume continues from here.
        checkpoint(step, periodic=False)
        raise
    finally:
        log.close()
    result.n_updates = algo.n_updates
    return result


def default_run_dir(algo_name: str, dataset_ids: list[str], seed: int) -> Path:
    """runs/<algo>-<first dataset id>[+k]-s<seed> under the working directory."""
    extra = f"+{len(dataset_ids) - 1}" if len(dataset_ids) > 1 else ""
    return Path("runs") / f"{algo_name}-{dataset_ids[0]}{extra}-s{seed}"


def train(
    algo_name: str,
    datasets: list[str],
    settings: TrainSettings,
    out: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
    init_from: Path | str | None = None,
    resume: bool = False,
    log_every: int = 100,
    checkpoint_every: int = 1000,
    eval_fn: EvalFn | None = None,
    eval_every: int = 0,
    progress: bool = True,
    device: str = "cpu",
) -> FitResult:
    """Load `datasets`, build algorithm `algo_name` with `overrides`, and `fit` it.

    What `marl-bench train` runs. The run directory defaults to `default_run_dir`. With
    `init_from` (fine-tuning), the algorithm is built on that run's data spec, so it keeps the
    normalisation it was trained with, and starts from its parameters (`fit`).

    Raises:
        UserError: an unknown algorithm or config key, a bad value, unknown or unmixable
            datasets, a run directory that already holds another run, or an `init_from` run of
            another algorithm or config.
    """
    from algos.registry import build_algorithm, make_config

    config = make_config(algo_name, overrides)  # fails before loading any data
    data = OfflineData.from_datasets(datasets, device=device)
    spec = data.spec
    if init_from is not None:
        spec = DataSpec.from_json(read_run_config(init_from)["spec"])
    algo = build_algorithm(algo_name, spec, config, seed=settings.seed, device=device)
    ids = [info["dataset_id"] for info in data.datasets]
    run_dir = Path(out) if out is not None else default_run_dir(algo_name, ids, settings.seed)
    return fit(
        algo,
        data,
        settings,
        run_dir,
        init_from=init_from,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        eval_fn=eval_fn,
        eval_every=eval_every,
        resume=resume,
        progress=progress,
    )
