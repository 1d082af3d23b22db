"""Throughput measurements: how fast the environments run under a random policy.

Figures are only comparable within one run on one machine (machines here are shared and noisy), so
the table reports each count's agent-steps/s as a ratio to the smallest count of the same env, and
an env that has an implementation of ours besides PettingZoo's (pursuit's `implementation` option)
is measured both ways in the same run, ours also as a batch of episodes stepped together, with
the speed-up over PettingZoo's.

The cost model (`EvalCost`, `marl-bench perf eval`) is kept in costs files (`save_cost_rows`:
a JSON list of rows, one per env, team size and algorithm, each with how and when it was measured),
which `marl-bench plan` (`benchmark.plan`) reads to size a suite before it runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from datagen.envs import get_spec, make_env, make_env_batch
from datagen.errors import UserError
from datagen.paths import locked, write_json

#: The `implementation` option value that selects PettingZoo's original (the reference).
PETTINGZOO = "pettingzoo"


@dataclass(frozen=True)
class EnvThroughput:
    """Random-rollout speed of one env at one team size.

    Attributes:
        env: env name.
        n_agents: team size.
        env_steps: parallel steps taken (resets included in the time).
        seconds: wall time of those steps.
        env_steps_per_s: env_steps / seconds.
        agent_steps_per_s: env_steps_per_s * n_agents.
        ratio_to_smallest: agent_steps_per_s over that of the smallest team size measured for the
            same env, implementation and batch.
        implementation: the env's `implementation` option ("pettingzoo" or ours), or None for
            envs with only one.
        batch: episodes stepped together (1: one env through `make_env`; more: `make_env_batch`).
        ratio_to_pettingzoo: env_steps_per_s over that of PettingZoo's implementation at the same
            team size in the same run (None for PettingZoo's rows and single-implementation envs).
    """

    env: str
    n_agents: int
    env_steps: int
    seconds: float
    env_steps_per_s: float
    agent_steps_per_s: float
    ratio_to_smallest: float = 1.0
    implementation: str | None = None
    batch: int = 1
    ratio_to_pettingzoo: float | None = None

    @property
    def label(self) -> str:
        """The env's name, with the implementation and batch when there is a choice."""
        if self.implementation is None:
            return self.env
        if self.batch == 1:
            return f"{self.env} ({self.implementation})"
        return f"{self.env} ({self.implementation}, batch {self.batch})"

    def as_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


def random_rollout_speed(
    name: str, n_agents: int, n_steps: int, seed: int = 0, **options: Any
) -> EnvThroughput:
    """Step env `name` with uniformly random actions for `n_steps` parallel steps.

    Actions come from one seeded generator; episodes that end are reset (and the reset is timed).
    """
    env = make_env(name, n_agents, seed=seed, **options)
    rng = np.random.default_rng(seed)
    n_actions = {agent: env.action_space(agent).n for agent in env.possible_agents}
    env.reset()
    start = time.perf_counter()
    for _ in range(n_steps):
        if not env.agents:
            env.reset()
        env.step({agent: int(rng.integers(n_actions[agent])) for agent in env.agents})
    seconds = time.perf_counter() - start
    env.close()
    per_s = n_steps / seconds
    return EnvThroughput(
        name,
        n_agents,
        n_steps,
        seconds,
        per_s,
        per_s * n_agents,
        implementation=options.get("implementation"),
    )


def batched_rollout_speed(
    name: str, n_agents: int, n_steps: int, n_envs: int, seed: int = 0, **options: Any
) -> EnvThroughput:
    """Step `n_envs` episodes of env `name` together (`make_env_batch`) with uniformly random
    actions for `n_steps` batch steps.

    Only the steps of running episodes count as env steps; when every episode of the batch has
    ended, the batch is reset with fresh seeds (and the reset is timed).
    """
    batch = make_env_batch(name, n_agents, n_envs, **options)
    rng = np.random.default_rng(seed)
    n_actions = batch.action_space(batch.possible_agents[0]).n
    seeds = iter(range(seed, seed + n_envs * (n_steps + 1)))
    batch.reset([next(seeds) for _ in range(n_envs)])
    done = np.zeros(n_envs, dtype=bool)
    env_steps = 0
    start = time.perf_counter()
    for _ in range(n_steps):
        if done.all():
            batch.reset([next(seeds) for _ in range(n_envs)])
            done[:] = False
        env_steps += int((~done).sum())
        done = batch.step(rng.integers(n_actions, size=(n_envs, n_agents))).done
    seconds = time.perf_counter() - start
    batch.close()
    per_s = env_steps / seconds
    return EnvThroughput(
        name,
        n_agents,
        env_steps,
        seconds,
        per_s,
        per_s * n_agents,
        implementation=options.get("implementation"),
        batch=n_envs,
    )


def implementations(name: str) -> tuple[str, ...]:
    """The implementations of env `name` to measure: PettingZoo's and ours (its default) when
    the env has an `implementation` option, else none to choose from."""
    ours = get_spec(name).options.get("implementation")
    return () if ours is None else (PETTINGZOO, ours)


def default_counts(name: str) -> tuple[int, ...]:
    """The two team sizes measured by default: the smallest and largest of the env's ladder."""
    ladder = get_spec(name).ladder
    return tuple(sorted({ladder[0], ladder[-1]}))


def env_cells(name: str, batches: tuple[int, ...] = (1, 20)) -> list[tuple[str | None, int]]:
    """The (implementation, batch) pairs measured for env `name` at each team size: PettingZoo's
    alone, then ours at every batch size, for an env with a choice; else one plain row."""
    choices = implementations(name)
    if not choices:
        return [(None, 1)]
    reference, ours = choices
    return [(reference, 1)] + [(ours, batch) for batch in batches]


def measure_envs(
    names: list[str],
    counts: tuple[int, ...] | None,
    n_steps: int,
    seed: int = 0,
    on_result: Callable[[EnvThroughput], None] | None = None,
    batches: tuple[int, ...] = (1, 20),
) -> list[EnvThroughput]:
    """Measure every env of `names` at `counts` (default: `default_counts`).

    An env with an `implementation` option is measured as PettingZoo's and as ours, ours also
    as batches of `batches` episodes (batch 1: one env through `make_env`; a batch plays
    `n_steps` steps of each of its episodes).

    Returns:
        One `EnvThroughput` per (env, count, implementation, batch), with `ratio_to_smallest`
        filled in per (env, implementation, batch) and `ratio_to_pettingzoo` per count.
    """
    results: list[EnvThroughput] = []
    for name in names:
        per_env = []
        for n in counts or default_counts(name):
            for implementation, batch in env_cells(name, batches):
                options = {} if implementation is None else {"implementation": implementation}
                if batch == 1:
                    result = random_rollout_speed(name, n, n_steps, seed, **options)
                else:
                    result = batched_rollout_speed(name, n, n_steps, batch, seed, **options)
                per_env.append(result)
                if on_result is not None:
                    on_result(result)
        for r in per_env:
            same = [
                s for s in per_env if (s.implementation, s.batch) == (r.implementation, r.batch)
            ]
            smallest = min(same, key=lambda s: s.n_agents).agent_steps_per_s
            reference = [
                s.env_steps_per_s
                for s in per_env
                if s.implementation == PETTINGZOO and s.n_agents == r.n_agents
            ]
            vs_pettingzoo = None
            if reference and r.implementation not in (None, PETTINGZOO):
                vs_pettingzoo = r.env_steps_per_s / reference[0]
            results.append(
                EnvThroughput(
                    **{
                        **asdict(r),
                        "ratio_to_smallest": r.agent_steps_per_s / smallest,
                        "ratio_to_pettingzoo": vs_pettingzoo,
                    }
                )
            )
    return results


@dataclass(frozen=True)
class DatasetPerf:
    """Collection and loading speed of one dataset, measured in one run.

    Attributes:
        env: env name.
        n_agents: team size.
        steps: env steps in the dataset.
        raw_steps_per_s: random rollout without recording (`random_rollout_speed`).
        collect_steps_per_s: `collect` with one worker, staging and final write included.
        collect2_steps_per_s: `collect` with two workers.
        uncompressed_mb: bytes of all arrays in RAM.
        load_mb_per_s: {format: MB/s} loading every array whole, checksums checked.
        size_mb: {format: MB} on disk.
    """

    env: str
    n_agents: int
    steps: int
    raw_steps_per_s: float
    collect_steps_per_s: float
    collect2_steps_per_s: float
    uncompressed_mb: float
    load_mb_per_s: dict[str, float]
    size_mb: dict[str, float]

    @property
    def collect_vs_raw(self) -> float:
        return self.collect_steps_per_s / self.raw_steps_per_s

    @property
    def workers2_vs_1(self) -> float:
        return self.collect2_steps_per_s / self.collect_steps_per_s

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "collect_vs_raw": self.collect_vs_raw,
            "workers2_vs_1": self.workers2_vs_1,
        }


def measure_datasets(
    name: str,
    n_agents: int,
    n_episodes: int,
    workdir: Path,
    seed: int = 0,
    repeats: int = 2,
    options: dict | None = None,
) -> DatasetPerf:
    """Time a random-behaviour collection against raw rollouts of the same steps, two workers
    against one, and whole loads of the result from both backends.

    Raw rollouts and collections alternate `repeats` times and the fastest of each is kept, so a
    burst of load from another process on a shared machine skews neither side of a ratio.
    """
    from datagen.collect import CollectRequest, collect
    from datagen.dataset import Dataset
    from datagen.dataset.ops import convert, size_on_disk

    def timed_collect(workers: int, out: Path) -> tuple[float, int]:
        request = CollectRequest(
            name,
            n_agents,
            "random",
            n_episodes=n_episodes,
            seed=seed,
            out=out,
            workers=workers,
            options=options or {},
            force=True,
        )
        start = time.perf_counter()
        collect(request)
        seconds = time.perf_counter() - start
        with Dataset(out) as dataset:
            return seconds, dataset.n_steps

    one_s, two_s, raw_per_s = float("inf"), float("inf"), 0.0
    for _ in range(repeats):
        seconds, steps = timed_collect(1, workdir / "w1.h5")
        one_s = min(one_s, seconds)
        raw = random_rollout_speed(name, n_agents, steps, seed, **(options or {}))
        raw_per_s = max(raw_per_s, raw.env_steps_per_s)
        two_s = min(two_s, timed_collect(2, workdir / "w2.h5")[0])
    zarr_path = convert(workdir / "w1.h5", "zarr", workdir / "w1.zarr", force=True)
    load, size = {}, {}
    for fmt, path in (("hdf5", workdir / "w1.h5"), ("zarr", zarr_path)):
        best = float("inf")
        for _ in range(repeats):
            with Dataset(path) as dataset:
                start = time.perf_counter()
                arrays = dataset.load(verify=True)
                best = min(best, time.perf_counter() - start)
        nbytes = sum(a.nbytes for a in arrays.values())
        load[fmt] = nbytes / 1e6 / best
        size[fmt] = size_on_disk(path) / 1e6
    return DatasetPerf(
        env=name,
        n_agents=n_agents,
        steps=steps,
        raw_steps_per_s=raw_per_s,
        collect_steps_per_s=steps / one_s,
        collect2_steps_per_s=steps / two_s,
        uncompressed_mb=nbytes / 1e6,
        load_mb_per_s=load,
        size_mb=size,
    )


@dataclass(frozen=True)
class AlgoPerf:
    """Update speed of one algorithm against a bare torch loop, measured in one run.

    Attributes:
        algo: algorithm name.
        batch_size: transitions per update.
        n_agents: agents per transition.
        bare_updates_per_s: zero_grad + the algorithm's `loss` + backward + optimiser steps on one
            fixed batch: the same networks, forward and backward passes, without our bookkeeping.
        update_updates_per_s: `Algorithm.update` on the same batch (counters, target networks,
            metrics turned into floats).
        fit_updates_per_s: `algos.train.fit` end to end (a fresh batch drawn per update, metrics
            logged, one checkpoint at the end).
        sample_ms: drawing one batch.
        update_ms: one `Algorithm.update`.
    """

    algo: str
    batch_size: int
    n_agents: int
    bare_updates_per_s: float
    update_updates_per_s: float
    fit_updates_per_s: float
    sample_ms: float
    update_ms: float

    @property
    def update_vs_bare(self) -> float:
        return self.update_updates_per_s / self.bare_updates_per_s

    @property
    def fit_vs_bare(self) -> float:
        return self.fit_updates_per_s / self.bare_updates_per_s

    @property
    def sample_fraction(self) -> float:
        """Drawing a batch as a fraction of one update."""
        return self.sample_ms / self.update_ms

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "update_vs_bare": self.update_vs_bare,
            "fit_vs_bare": self.fit_vs_bare,
            "sample_fraction": self.sample_fraction,
        }


def _bare_step(algo: Any, batch: Any) -> None:
    """The bare torch loop's step: what any hand-written loop must do for the same losses."""
    for optimizer in algo.optimizers.values():
        optimizer.zero_grad(set_to_none=True)
    total, _ = algo.loss(batch)
    total.backward()
    for optimizer in algo.optimizers.values():
        optimizer.step()


def _seconds_per_call(call: Callable[[], Any], n_calls: int) -> float:
    start = time.perf_counter()
    for _ in range(n_calls):
        call()
    return (time.perf_counter() - start) / n_calls


def measure_algo(
    name: str,
    data: Any,
    workdir: Path,
    n_updates: int = 200,
    batch_size: int = 256,
    repeats: int = 3,
    seed: int = 0,
) -> AlgoPerf:
    """Time algorithm `name` on `data`: bare loop, `update` and `fit`, and batch draws.

    Each side is measured `repeats` times, alternating, and the fastest time of each is kept, so a
    burst of load from another process on a shared machine skews neither side of a ratio.
    """
    import torch

    from algos.registry import build_algorithm
    from algos.train import TrainSettings, fit

    generator = torch.Generator().manual_seed(seed)
    batch = data.sample(batch_size, generator)
    bare_algo = build_algorithm(name, data.spec, seed=seed)
    update_algo = build_algorithm(name, data.spec, seed=seed)
    for _ in range(10):  # warm-up: allocator, optimiser state
        _bare_step(bare_algo, batch)
        update_algo.update(batch)
    bare_s = update_s = fit_s = sample_s = float("inf")
    for repeat in range(repeats):
        bare_s = min(bare_s, _seconds_per_call(lambda: _bare_step(bare_algo, batch), n_updates))
        update_s = min(update_s, _seconds_per_call(lambda: update_algo.update(batch), n_updates))
        sample_s = min(
            sample_s, _seconds_per_call(lambda: data.sample(batch_size, generator), n_updates)
        )
        fit_algo = build_algorithm(name, data.spec, seed=seed)
        start = time.perf_counter()
        fit(
            fit_algo,
            data,
            TrainSettings(n_updates, batch_size, seed),
            workdir / f"{name}-{repeat}",
            log_every=100,
            checkpoint_every=n_updates,
            progress=False,
        )
        fit_s = min(fit_s, (time.perf_counter() - start) / n_updates)
    return AlgoPerf(
        algo=name,
        batch_size=batch_size,
        n_agents=data.n_agents,
        bare_updates_per_s=1.0 / bare_s,
        update_updates_per_s=1.0 / update_s,
        fit_updates_per_s=1.0 / fit_s,
        sample_ms=sample_s * 1e3,
        update_ms=update_s * 1e3,
    )


def perf_dataset(workdir: Path, seed: int = 0) -> Path:
    """A small dataset to measure algorithms on: 2 episodes (1,000 steps) of random pursuit
    behaviour with 2 agents, written under `workdir`."""
    from datagen.collect import CollectRequest, collect

    return collect(
        CollectRequest("pursuit", 2, "random", n_episodes=2, seed=seed, out=workdir / "perf.h5")
    )


def measure_algos(
    names: list[str],
    dataset: str | Path,
    workdir: Path,
    n_updates: int = 200,
    batch_size: int = 256,
    repeats: int = 3,
    seed: int = 0,
    on_result: Callable[[AlgoPerf], None] | None = None,
) -> list[AlgoPerf]:
    """`measure_algo` for every algorithm of `names` on one dataset (loaded once)."""
    from algos.data import OfflineData

    data = OfflineData.from_datasets([dataset])
    results = []
    for name in names:
        result = measure_algo(name, data, workdir, n_updates, batch_size, repeats, seed)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


@dataclass(frozen=True)
class EvalCost:
    """What one suite cell costs at one env and team size, to size suites before running them.

    Attributes:
        env: env name.
        n_agents: team size.
        algo: the algorithm trained and evaluated.
        episodes: evaluation episodes played (one batch).
        mean_length: their mean length in env steps.
        seconds_per_episode: evaluation wall time per episode (the batch's time / episodes).
        batch_size: transitions per training update.
        seconds_per_1k_updates: training wall time per 1,000 updates (`fit`, from a small
            random dataset of this env and size).
        hidden_size: the model's hidden size (the width of every layer: the cost's main knob
            besides the team size and the batch).
        options: the env options it was measured with ({}: the env's defaults).
    """

    env: str
    n_agents: int
    algo: str
    episodes: int
    mean_length: float
    seconds_per_episode: float
    batch_size: int
    seconds_per_1k_updates: float
    hidden_size: int
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> EvalCost:
        """A row of a costs file (other keys, such as how it was measured, are ignored; a row
        without options was measured with none)."""
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})


#: Keys of a costs file's row besides `EvalCost`'s: how and when `perf eval --save` measured it.
PROVENANCE_KEYS = ("command", "date", "cpu_count", "loadavg_start", "loadavg_end")


def options_key(options: dict[str, Any]) -> str:
    """Env options as one comparable text (sorted JSON; "{}" for none)."""
    return json.dumps(dict(options), sort_keys=True, default=str)


def _row_key(row: dict[str, Any]) -> tuple[str, int, str, int, str]:
    options = options_key(row.get("options", {}))
    return (row["env"], row["n_agents"], row["algo"], row["hidden_size"], options)


def check_cost_rows(content: Any, where: str) -> list[dict[str, Any]]:
    """The rows of a costs file's JSON content, checked: a list of objects with every field of
    `EvalCost` (names text, counts whole numbers of at least 1, seconds numbers of at least 0),
    one row per (env, n_agents, algo, hidden_size, options); `options`, where present, an object.

    Raises:
        UserError: anything else, naming `where` and the first bad row.
    """
    if not isinstance(content, list):
        raise UserError(f"{where}: a costs file holds a JSON list of rows")
    kinds = {
        "env": str,
        "algo": str,
        "n_agents": int,
        "episodes": int,
        "batch_size": int,
        "hidden_size": int,
        "mean_length": float,
        "seconds_per_episode": float,
        "seconds_per_1k_updates": float,
    }
    seen = set()
    for index, row in enumerate(content):
        if not isinstance(row, dict):
            raise UserError(f"{where}: row {index + 1} is not an object")
        for key, kind in kinds.items():
            value = row.get(key)
            if kind is str:
                ok = isinstance(value, str) and bool(value)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            if not ok:
                raise UserError(f"{where}: row {index + 1} has no valid {key!r} (got {value!r})")
        if not isinstance(row.get("options", {}), dict):
            raise UserError(f"{where}: row {index + 1}'s 'options' is not an object")
        if _row_key(row) in seen:
            raise UserError(f"{where}: row {index + 1} repeats {_row_key(row)}")
        seen.add(_row_key(row))
    return content


def read_cost_rows(path: Path) -> list[dict[str, Any]]:
    """The checked rows of the costs file `path` (`check_cost_rows`).

    Raises:
        UserError: a missing or unreadable file, invalid JSON, or invalid rows.
    """
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise UserError(f"cannot read costs file {path}: {err.strerror or err}") from err
    try:
        content = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"costs file {path} is not valid JSON: {err}") from err
    return check_cost_rows(content, f"costs file {path}")


def merge_cost_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`old` with `new` added: a new row replaces the old one of the same (env, n_agents, algo,
    hidden_size, options); sorted by that key."""
    merged = {_row_key(row): row for row in old}
    merged.update({_row_key(row): row for row in new})
    return [merged[key] for key in sorted(merged)]


def save_cost_rows(
    path: Path, costs: list[EvalCost], provenance: dict[str, Any]
) -> list[dict[str, Any]]:
    """Merge `costs` into the costs file `path` (created if missing), each row with
    `provenance` (`PROVENANCE_KEYS`); returns every row of the file. A lock beside the file
    keeps concurrent invocations from dropping each other's rows.

    Raises:
        UserError: an existing file that is not a valid costs file (left as it is).
    """
    path = Path(path)
    new = [{**cost.as_dict(), **provenance} for cost in costs]
    with locked(path):
        old = read_cost_rows(path) if path.exists() else []
        rows = merge_cost_rows(old, new)
        write_json(path, rows)
    return rows


def measure_eval_cost(
    name: str,
    n_agents: int,
    workdir: Path,
    algo: str = "bc",
    n_episodes: int = 4,
    n_updates: int = 100,
    batch_size: int = 256,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> EvalCost:
    """Time `n_updates` updates of `algo` (its defaults with config `overrides` on top, on one
    random episode of the env at this size) and the batched evaluation of the trained model over
    `n_episodes` full episodes.

    The episode is collected into `workdir` once per env and size; other algorithms measured
    in the same `workdir` train on the same one.
    """
    from algos.data import OfflineData
    from algos.registry import build_algorithm
    from algos.train import TrainSettings, fit
    from benchmark.evaluate import evaluate_algorithm
    from datagen.collect import CollectRequest, collect

    options = dict(options or {})
    tag = hashlib.sha256(options_key(options).encode()).hexdigest()[:8]
    path = workdir / f"{name}-n{n_agents}-{tag}.h5"
    if not path.exists():  # else collected for another algorithm: the same episode
        collect(
            CollectRequest(
                name, n_agents, "random", n_episodes=1, seed=seed, options=options, out=path
            )
        )
    data = OfflineData.from_datasets([path])
    model = build_algorithm(algo, data.spec, overrides, seed=seed)
    start = time.perf_counter()
    fit(
        model,
        data,
        TrainSettings(n_updates, batch_size, seed),
        workdir / f"{name}-n{n_agents}-{tag}-{algo}",
        log_every=n_updates,
        checkpoint_every=n_updates,
        progress=False,
    )
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    evaluation, _ = evaluate_algorithm(model, name, n_agents, n_episodes, seed, options)
    eval_s = time.perf_counter() - start
    return EvalCost(
        env=name,
        n_agents=n_agents,
        algo=algo,
        episodes=n_episodes,
        mean_length=float(np.mean(evaluation.lengths)),
        seconds_per_episode=eval_s / n_episodes,
        batch_size=batch_size,
        seconds_per_1k_updates=train_s / n_updates * 1000,
        hidden_size=model.config.hidden_size,
        options=options,
    )
