"""`marl-bench`: training, evaluation and benchmark commands.

Each command is thin: it parses arguments, calls a library function that tests call directly, and
prints the result with rich.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from benchmark.perf import (
    EvalCost,
    default_counts,
    env_cells,
    measure_algos,
    measure_datasets,
    measure_envs,
    measure_eval_cost,
    perf_dataset,
    read_cost_rows,
    save_cost_rows,
)
from datagen.clikit import CliGroup, make_console, parse_options
from datagen.envs import check_request, env_names
from datagen.errors import UserError


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Offline MARL benchmark: training, online evaluation and performance measurements.

    \b
    Examples:
      marl-bench algos                                   # the registered algorithms
      marl-bench train --algo bc --dataset pursuit-n2-expert-v2 --updates 5000
      marl-bench evaluate runs/bc-pursuit-n2-expert-v2-s0 --agents 8 --episodes 10
      marl-bench curves --env pursuit --agents 2 --algo bc --algo implicit-ql --updates 8000
      marl-bench perf algos                              # updates/s against a bare torch loop
      marl-bench perf envs                               # every env at two team sizes
      marl-bench perf envs --env waterworld --agents 4 --agents 32
      marl-bench perf datasets --env pursuit --agents 8 --episodes 20
      marl-bench perf eval --env prison --save costs.json   # the cost model, kept
      marl-bench plan --suite scale-up --costs costs.json  # a suite's hours before it runs

    Torch runs on one thread unless OMP_NUM_THREADS says otherwise: these networks are small, and
    on a shared 2-core machine two threads per process made training 10-20x slower.
    """
    # Set before torch is first imported (every command imports it lazily), so OpenMP reads it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@main.group("perf", cls=CliGroup)
def perf() -> None:
    """Measure throughput as ratios within one run (machines here are shared and noisy)."""


@perf.command("envs")
@click.option("--env", "names", multiple=True, help="Env to measure (repeatable; default: all).")
@click.option(
    "--agents",
    "counts",
    multiple=True,
    type=int,
    help="Team size (repeatable; default: the smallest and largest of each env's ladder).",
)
@click.option("--steps", "n_steps", default=300, show_default=True, help="Env steps per cell.")
@click.option(
    "--batch",
    "batches",
    multiple=True,
    type=click.IntRange(min=1),
    help="Episodes stepped together by our implementation of an env that also has PettingZoo's "
    "(pursuit), measured beside it (repeatable; default: 1 and 20).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of envs and random actions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
def perf_envs(
    names: tuple[str, ...],
    counts: tuple[int, ...],
    n_steps: int,
    batches: tuple[int, ...],
    seed: int,
    as_json: bool,
) -> None:
    """Random-policy rollout speed: env-steps/s and agent-steps/s per env and team size.

    \b
    "vs smallest n" divides each row's agent-steps/s by that of the same env's smallest team, so
    scaling can be read without trusting absolute figures on a shared machine. An env with our
    own implementation beside PettingZoo's (pursuit) is measured both ways in the same run,
    ours also as a batch of episodes stepped together (each plays --steps steps), and "vs
    pettingzoo" divides its env-steps/s by PettingZoo's at the same team size.
    """
    selected = list(names) or env_names()
    batches = tuple(batches) or (1, 20)
    total = sum(
        len(counts or default_counts(name)) * len(env_cells(name, batches)) for name in selected
    )
    with Progress(console=make_console(), transient=True, disable=as_json) as progress:
        task = progress.add_task("measuring", total=total)
        results = measure_envs(
            selected,
            counts or None,
            n_steps,
            seed,
            on_result=lambda r: progress.update(
                task, advance=1, description=f"{r.label} n={r.n_agents}"
            ),
            batches=batches,
        )
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
        return
    table = Table(title=f"Random rollout, one process, {n_steps} steps ({platform.machine()})")
    columns = ("env", "n", "env-steps/s", "agent-steps/s", "vs smallest n", "vs pettingzoo")
    for column in columns:
        table.add_column(column, justify="right" if column != "env" else "left")
    for r in results:
        table.add_row(
            r.label,
            str(r.n_agents),
            f"{r.env_steps_per_s:,.0f}",
            f"{r.agent_steps_per_s:,.0f}",
            f"{r.ratio_to_smallest:.2f}x",
            "" if r.ratio_to_pettingzoo is None else f"{r.ratio_to_pettingzoo:.1f}x",
        )
    make_console().print(table)


@perf.command("eval")
@click.option("--env", "names", multiple=True, help="Env (repeatable; default: every env).")
@click.option(
    "--agents",
    "counts",
    type=int,
    multiple=True,
    help="Team size (repeatable; default: the smallest and largest of each env's ladder).",
)
@click.option(
    "--algo",
    "algos",
    multiple=True,
    help="Algorithm to train and evaluate (repeatable; default: bc).",
)
@click.option(
    "--episodes", "n_episodes", default=4, show_default=True, help="Evaluation episodes (a batch)."
)
@click.option("--updates", "n_updates", default=100, show_default=True, help="Updates timed.")
@click.option("--batch-size", default=256, show_default=True, help="Transitions per update.")
@click.option("--seed", default=0, show_default=True, help="Seed of data, model and episodes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
@click.option(
    "--save",
    type=click.Path(path_type=Path),
    default=None,
    help="Also merge the rows into this costs file (JSON; a row replaces the file's row of the "
    "same env, team size, algorithm, hidden size and options), for `marl-bench plan --costs`.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Config override for every algorithm with the field (repeatable), e.g. the suite's "
    "hidden_size=128; each row records its hidden size.",
)
@click.option(
    "--option",
    "option_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Env option for every --env (repeatable), e.g. obs_size=42; each row records them.",
)
def perf_eval(
    names: tuple[str, ...],
    counts: tuple[int, ...],
    algos: tuple[str, ...],
    n_episodes: int,
    n_updates: int,
    batch_size: int,
    seed: int,
    as_json: bool,
    save: Path | None,
    sets: tuple[str, ...],
    option_pairs: tuple[str, ...],
) -> None:
    """The cost model: seconds per evaluation episode and per 1,000 training updates, per env,
    team size and algorithm, on this machine, so suites can be sized before they run.

    Each row collects one random episode of the env at that size, times `--updates` updates of
    `--algo` on it, then times the batched evaluation of that model over `--episodes` full
    episodes. Figures hold for this machine and its load at the time of the run: --save
    records with each row the command, the date, the machine's core count and its load average
    at the start and end.

    \b
    Examples:
      marl-bench perf eval --env pursuit --agents 2 --agents 8 --agents 16
      marl-bench perf eval --env prison --algo bc --algo idqn --save costs.json
      marl-bench perf eval --env pursuit --set hidden_size=128 --save costs.json
      marl-bench perf eval --env pistonball --option obs_size=42 --set hidden_size=64
      marl-bench plan --suite scale-up --costs costs.json --workers 2
    """
    from algos.registry import overrides_by_algo

    algos = tuple(algos) or ("bc",)
    overrides = overrides_by_algo(algos, _parse_sets(sets))
    options = parse_options(option_pairs)
    envs = list(names) or env_names()
    for name in envs:
        for n in counts or default_counts(name):
            check_request(name, n, options)
    if save is not None and save.exists():
        read_cost_rows(save)  # fail now, not after minutes of measuring
    command = " ".join(["marl-bench", *map(shlex.quote, sys.argv[1:])])
    load_start = list(os.getloadavg())
    rows = []
    progress = Progress(console=make_console(), transient=True, disable=as_json)
    with tempfile.TemporaryDirectory() as workdir, progress:
        cells = [
            (name, n, algo)
            for name in envs
            for n in (counts or default_counts(name))
            for algo in algos
        ]
        task = progress.add_task("measuring", total=len(cells))
        for name, n, algo in cells:
            progress.update(task, description=f"{name} n={n} {algo}")
            rows.append(
                measure_eval_cost(
                    name,
                    n,
                    Path(workdir),
                    algo,
                    n_episodes,
                    n_updates,
                    batch_size,
                    seed,
                    options,
                    overrides[algo],
                )
            )
            progress.advance(task)
    if save is not None:
        provenance = {
            "command": command,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpu_count": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": list(os.getloadavg()),
        }
        saved = save_cost_rows(save, rows, provenance)
        # stderr: with --json, stdout holds only the records.
        click.echo(f"saved {len(rows)} rows into {save} ({len(saved)} in all)", err=True)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    with_options = "".join(f"; {key}={value}" for key, value in options.items())
    table = Table(
        title=f"Cost per evaluation episode and per 1,000 updates "
        f"(batch {batch_size}{with_options}; {platform.machine()}, {os.cpu_count()} cores)"
    )
    columns = (
        "env",
        "agents",
        "algo",
        "hidden",
        "episode length",
        "s / eval episode",
        "s / 1k updates",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("env", "algo") else "right")
    for row in rows:
        table.add_row(
            row.env,
            str(row.n_agents),
            row.algo,
            str(row.hidden_size),
            f"{row.mean_length:.0f}",
            f"{row.seconds_per_episode:.2f}",
            f"{row.seconds_per_1k_updates:.1f}",
        )
    make_console().print(table)


@perf.command("datasets")
@click.option("--env", "name", default="pursuit", show_default=True, help="Env to collect.")
@click.option("--agents", "n_agents", default=8, show_default=True, help="Team size.")
@click.option("--episodes", "n_episodes", default=20, show_default=True, help="Episodes per run.")
@click.option("--repeats", default=2, show_default=True, help="Runs of each side; the best counts.")
@click.option("--seed", default=0, show_default=True, help="Collection seed.")
@click.option(
    "--option",
    "option_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Env option (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record instead of a table.")
def perf_datasets(
    name: str,
    n_agents: int,
    n_episodes: int,
    repeats: int,
    seed: int,
    option_pairs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Collection and loading speed as ratios measured in one run.

    \b
    - collect (1 worker) against a raw random rollout of the same steps (target >= 0.9x);
    - collect with 2 workers against 1 worker (target >= 1.6x on 2 cores);
    - loading every array whole into RAM, checksums checked (target >= 200 MB/s).
    Datasets are written to a temporary directory and deleted afterwards.
    """
    options = parse_options(option_pairs)
    check_request(name, n_agents, options)
    with tempfile.TemporaryDirectory() as workdir, make_console().status("collecting..."):
        result = measure_datasets(name, n_agents, n_episodes, Path(workdir), seed, repeats, options)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    table = Table(
        title=f"{name}, {n_agents} agents, {result.steps} steps, {result.uncompressed_mb:.1f} MB "
        f"of arrays ({platform.machine()}, {os.cpu_count()} cores)"
    )
    for column in ("measure", "value", "ratio", "target"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row("raw random rollout", f"{result.raw_steps_per_s:,.0f} steps/s", "1.00x", "")
    table.add_row(
        "collect, 1 worker",
        f"{result.collect_steps_per_s:,.0f} steps/s",
        f"{result.collect_vs_raw:.2f}x raw",
        ">= 0.90x",
    )
    table.add_row(
        "collect, 2 workers",
        f"{result.collect2_steps_per_s:,.0f} steps/s",
        f"{result.workers2_vs_1:.2f}x 1 worker",
        ">= 1.60x",
    )
    for fmt, speed in result.load_mb_per_s.items():
        table.add_row(
            f"load into RAM, {fmt} ({result.size_mb[fmt]:.2f} MB on disk)",
            f"{speed:,.0f} MB/s",
            "",
            ">= 200 MB/s",
        )
    make_console().print(table)


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    """`key=value` config overrides (values converted to each field's type by the registry)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set {pair!r} must look like key=value")
        overrides[key] = value
    return overrides


@main.command("algos")
@click.option("--json", "as_json", is_flag=True, help="Print every algorithm's config as JSON.")
def algos_command(as_json: bool) -> None:
    """List the registered algorithms, their config fields and defaults."""
    from algos.registry import ALGORITHMS

    records = [entry.describe() for entry in ALGORITHMS.values()]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    table = Table(
        title="Algorithms (marl-bench train --algo NAME --set key=value)",
        caption="acts from: decentralised = each agent's own observation; communicating = also "
        "messages from teammates. Score tables compare algorithms within a class.",
    )
    for column in ("algo", "acts from", "description", "config (defaults)"):
        table.add_column(column)
    for record in records:
        config = ", ".join(f"{k}={v['default']}" for k, v in record["config"].items())
        table.add_row(record["name"], record["information"], record["description"], config)
    make_console().print(table)


@main.command("train")
@click.option("--algo", "algo_name", required=True, help="Algorithm (see `marl-bench algos`).")
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    required=True,
    help="Dataset id or path (repeatable: datasets of one env, any team sizes, are mixed).",
)
@click.option("--updates", "n_updates", required=True, type=int, help="Gradient updates in total.")
@click.option("--batch-size", default=256, show_default=True, help="Transitions per update.")
@click.option("--seed", default=0, show_default=True, help="Seed of networks and sampling.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Run directory [default: runs/<algo>-<id>-s<seed>].",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Config override (repeatable)."
)
@click.option("--log-every", default=100, show_default=True, help="Updates between metric rows.")
@click.option(
    "--checkpoint-every", default=1000, show_default=True, help="Updates between checkpoints."
)
@click.option(
    "--eval-every",
    default=0,
    show_default=True,
    help="Updates between online evaluations (0: off).",
)
@click.option("--eval-episodes", default=5, show_default=True, help="Episodes per evaluation.")
def train_command(
    algo_name: str,
    datasets: tuple[str, ...],
    n_updates: int,
    batch_size: int,
    seed: int,
    out: Path | None,
    resume: bool,
    sets: tuple[str, ...],
    log_every: int,
    checkpoint_every: int,
    eval_every: int,
    eval_episodes: int,
) -> None:
    """Train an algorithm offline on one or more datasets; writes a run directory.

    \b
    Examples:
      marl-bench train --algo bc --dataset pursuit-n2-expert-v2 --updates 5000
      marl-bench train --algo idqn --dataset prison-n2-expert-v2 --updates 5000 --set cql_alpha=0.5
      marl-bench train --algo bc --dataset pursuit-n2-expert-v2 --dataset pursuit-n4-expert-v2 \
        --updates 5000 --out runs/bc-mixed
    """
    from algos.train import TrainSettings, train
    from benchmark.evaluate import training_evaluator

    eval_fn = None
    if eval_every:
        eval_fn = training_evaluator(list(datasets), eval_episodes, seed)
    result = train(
        algo_name,
        list(datasets),
        TrainSettings(n_updates, batch_size, seed),
        out=out,
        overrides=_parse_sets(sets),
        resume=resume,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        eval_fn=eval_fn,
        eval_every=eval_every,
    )
    losses = ", ".join(f"{k}={v:.4g}" for k, v in result.last_metrics.items())
    click.echo(f"{result.run_dir}: {result.n_updates} updates; {losses}")


@main.command("evaluate")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--env", default=None, help="Env [default: the run's env].")
@click.option(
    "--agents",
    "sizes",
    type=int,
    multiple=True,
    help="Team size, repeatable: the checkpoint is loaded once and played at each "
    "[default: the run's largest].",
)
@click.option(
    "--episodes", "n_episodes", default=10, show_default=True, help="Episodes per team size."
)
@click.option("--seed", default=0, show_default=True, help="Evaluation seed.")
@click.option(
    "--option", "option_pairs", multiple=True, metavar="KEY=VALUE", help="Env option override."
)
@click.option("--checkpoint", default="latest.pt", show_default=True, help="File in checkpoints/.")
@click.option("--sample", is_flag=True, help="Sample actions instead of taking the greedy one.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes sharing the episodes (for envs without a vectorised engine).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record per team size.")
def evaluate_command(
    run_dir: Path,
    env: str | None,
    sizes: tuple[int, ...],
    n_episodes: int,
    seed: int,
    option_pairs: tuple[str, ...],
    checkpoint: str,
    sample: bool,
    workers: int,
    as_json: bool,
) -> None:
    """Play a trained run online at any team sizes: mean team return and normalized score.

    All episodes of a team size play as one batch (one forward pass per step for every agent of
    every running episode); the same seeds give the same returns as playing them one by one.

    \b
    Examples:
      marl-bench evaluate runs/bc-pursuit-n2-expert-v2-s0 --agents 8 --episodes 10
      marl-bench evaluate runs/bc-pursuit-n2-expert-v2-s0 --agents 2 --agents 4 --agents 8
    """
    from benchmark.evaluate import evaluate_run

    with make_console().status("evaluating...") if not as_json else nullcontext():
        results = evaluate_run(
            run_dir,
            env,
            list(sizes),
            n_episodes,
            seed,
            parse_options(option_pairs),
            checkpoint,
            greedy=not sample,
            workers=workers,
        )
    for result in results:
        if as_json:
            click.echo(json.dumps(result.as_dict()))
            continue
        score = "n/a" if result.normalized_score is None else f"{result.normalized_score:.1f}"
        click.echo(
            f"{result.algo} ({result.step} updates) on {result.env} with {result.n_agents} "
            f"agents, {n_episodes} episodes: team return {result.mean:.2f} ± {result.std:.2f}, "
            f"normalized score {score}"
        )


@perf.command("algos")
@click.option("--algo", "names", multiple=True, help="Algorithm (repeatable; default: all).")
@click.option(
    "--dataset",
    default=None,
    help="Dataset id or path [default: 1,000 random steps "
    "of pursuit with 2 agents, collected into a temporary directory].",
)
@click.option("--updates", "n_updates", default=200, show_default=True, help="Updates per timing.")
@click.option("--batch-size", default=256, show_default=True, help="Transitions per update.")
@click.option("--repeats", default=3, show_default=True, help="Timings of each side; best counts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
def perf_algos(
    names: tuple[str, ...],
    dataset: str | None,
    n_updates: int,
    batch_size: int,
    repeats: int,
    as_json: bool,
) -> None:
    """Update speed of each algorithm against a bare torch loop, as ratios in one run.

    \b
    - bare: zero_grad + the algorithm's loss + backward + optimiser steps on one fixed batch;
    - update(): the same batch through Algorithm.update (target >= 0.75x bare);
    - fit(): the training loop end to end, a fresh batch per update (target >= 0.75x bare);
    - drawing a batch as a fraction of one update (target <= 10 %).
    """
    from algos.registry import algorithm_names, get_entry

    selected = list(names) or algorithm_names()
    for name in selected:
        get_entry(name)
    with tempfile.TemporaryDirectory() as workdir:
        with make_console().status("measuring...") if not as_json else nullcontext():
            source = dataset or perf_dataset(Path(workdir))
            results = measure_algos(selected, source, Path(workdir), n_updates, batch_size, repeats)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
        return
    table = Table(
        title=f"Updates/s, batch {batch_size}, {results[0].n_agents} agents "
        f"({platform.machine()}, {os.cpu_count()} cores)"
    )
    columns = ("algo", "bare", "update()", "vs bare", "fit()", "vs bare", "batch draw")
    for column in columns:
        table.add_column(column, justify="left" if column == "algo" else "right")
    for r in results:
        table.add_row(
            r.algo,
            f"{r.bare_updates_per_s:,.0f}",
            f"{r.update_updates_per_s:,.0f}",
            f"{r.update_vs_bare:.2f}x",
            f"{r.fit_updates_per_s:,.0f}",
            f"{r.fit_vs_bare:.2f}x",
            f"{100 * r.sample_fraction:.1f} % of an update",
        )
    make_console().print(table)


@main.command("run")
@click.option(
    "--suite",
    "suite_name",
    required=True,
    help="A suite of data/suites (its file name without .toml, e.g. scale-up-lite) or a path "
    "to a .toml file.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory: datasets, runs and records.jsonl [default: results/<suite>].",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this process or --workers processes; ray: Ray tasks (local or --address).",
)
@click.option("--workers", default=1, show_default=True, help="Jobs run in parallel.")
@click.option("--address", default=None, help="An existing Ray cluster (ray executor only).")
@click.option("--resume", is_flag=True, help="Continue the run in --out, skipping finished cells.")
@click.option(
    "--only",
    "only_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Run only matching jobs (repeatable; one key's values are alternatives): kind, env, "
    "train_agents (2 or 2+4), data, algo, seed, regime, tuned (true or false).",
)
@click.option("--no-report", is_flag=True, help="Do not print the score tables at the end.")
def run_command(
    suite_name: str,
    out: Path | None,
    executor: str,
    workers: int,
    address: str | None,
    resume: bool,
    only_pairs: tuple[str, ...],
    no_report: bool,
) -> None:
    """Run a benchmark suite: collect missing datasets, train every job, evaluate it online at
    every team size, and append one JSON record per cell to OUT/records.jsonl.

    A killed run continues with --resume without redoing finished cells. A failing cell is
    recorded with its error and the suite goes on; the command then exits with status 1.

    \b
    Examples:
      marl-bench run --suite quick                       # a few minutes on 2 cores
      marl-bench run --suite scale-up --workers 2 --out results/scale-up
      marl-bench run --suite scale-up --out results/scale-up --resume
      marl-bench run --suite scale-up --only env=pursuit --only data=expert --only train_agents=2
      marl-bench run --suite degenerate --executor ray --address ray://head:10001
    """
    from algos.registry import algorithm_names
    from benchmark.report import make_report
    from benchmark.runner import failed_cells, run_suite
    from benchmark.store import load_records
    from benchmark.suites import load_suite, parse_filters

    only = parse_filters(only_pairs)
    suite = load_suite(suite_name, known_algos=algorithm_names())
    out = out or Path("results") / suite.name
    console = make_console()
    summary = run_suite(
        suite,
        out,
        executor=executor,
        workers=workers,
        address=address,
        resume=resume,
        console=console,
        only=only,
    )
    console.print(
        f"{suite.name}: {summary.n_cells} cells, {summary.n_skipped} already done, "
        f"{summary.n_ok} ok and {summary.n_failed} failed now, {summary.seconds:.0f} s; "
        f"records in {out / 'records.jsonl'}"
    )
    if not no_report:
        console.print(make_report(load_records(out), "md"), markup=False, highlight=False)
    failed = failed_cells(out, suite, only)
    if failed:
        for record in failed[:10]:
            console.print(f"failed: {record.key}: {record.error}", markup=False)
        raise SystemExit(1)


@main.command("plan")
@click.option(
    "--suite",
    "suite_name",
    required=True,
    help="A suite of data/suites (its file name without .toml) or a path to a .toml file.",
)
@click.option(
    "--costs",
    type=click.Path(path_type=Path),
    default=None,
    help="A costs file of `marl-bench perf eval --save` [default: sizes only, no hours].",
)
@click.option(
    "--workers", default=1, show_default=True, help="Jobs run in parallel (as `run --workers`)."
)
@click.option(
    "--only",
    "only_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Plan only matching jobs, as `marl-bench run --only` (repeatable).",
)
def plan_command(
    suite_name: str, costs: Path | None, workers: int, only_pairs: tuple[str, ...]
) -> None:
    """Size a suite before it runs: per env, its training runs, cells, gradient updates,
    evaluation episodes and datasets to collect (per team size); with --costs, the estimated
    core-hours of training, evaluation and collection, and the wall-hours on --workers workers.

    Counts are what `marl-bench run` does (a pretraining run that a transfer job of the suite
    also trains is counted once). Hours are estimates from the costs file: each algorithm's rows
    (bc's where it has none, marked "≈ bc"), read between and beyond the measured team sizes
    along straight lines; the output says where. Nothing is trained or collected.

    \b
    Examples:
      marl-bench plan --suite scale-up                   # sizes only
      marl-bench perf eval --env pursuit --env prison --env waterworld --save costs.json
      marl-bench plan --suite scale-up --costs costs.json --workers 2
      marl-bench plan --suite scale-up --costs costs.json --only env=pursuit
    """
    from algos.registry import algorithm_names
    from benchmark.plan import plan_renderables, plan_suite
    from benchmark.suites import load_suite, parse_filters

    only = parse_filters(only_pairs)
    suite = load_suite(suite_name, known_algos=algorithm_names())
    rows = None
    if costs is not None:
        rows = [EvalCost.from_dict(row) for row in read_cost_rows(costs)]
    plan = plan_suite(suite, rows, workers, only)
    console = make_console()
    for renderable in plan_renderables(plan):
        console.print(renderable, markup=False, highlight=False)
    if rows is not None:
        console.print(f"costs: {costs}", markup=False, highlight=False)


@main.command("tune")
@click.option(
    "--algo",
    "algos",
    multiple=True,
    help="Algorithm to tune (repeatable; each gets the same budget).",
)
@click.option("--trials", type=int, default=None, help="Trials per algorithm [the protocol's].")
@click.option(
    "--report",
    "report_only",
    is_flag=True,
    help="Tune nothing: print the committed studies (of --algo, or all) as the markdown table "
    "of docs/algorithms.md.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results") / "tune",
    show_default=True,
    help="Journals, trial runs and the shared tuning datasets.",
)
@click.option(
    "--suite",
    "suite_name",
    default="tuning",
    show_default=True,
    help="The suite of tuning tasks (kept apart from the evaluation suites' tasks).",
)
def tune_command(
    algos: tuple[str, ...], trials: int | None, report_only: bool, out: Path, suite_name: str
) -> None:
    """Tune algorithms with the same budget each: Optuna's TPE sampler, seeded, over the fields
    and ranges of data/tuning/space.toml, each trial one run of the tuning suite scored by its
    mean normalized score. An interrupted study resumes from OUT/<algo>/journal.log.

    Writes data/tuning/studies/<algo>.json (every trial) and the best settings into
    data/tuning/tuned.json, which suites with `tuned = true` start from. Running it again on a
    fresh OUT reproduces the committed study.

    \b
    Examples:
      marl-bench tune --algo bc --algo idqn              # 20 trials each (the protocol's)
      marl-bench tune --algo gawi --trials 5 --out results/tune-gawi
      marl-bench tune --report                           # the committed studies' table
    """
    from algos.registry import get_entry
    from benchmark.tune import Protocol, run_study, studies_table

    if report_only:
        for algo in algos:
            get_entry(algo)
        click.echo(studies_table(algos))
        return
    if not algos:
        raise UserError("--algo is required (repeatable), or --report")

    protocol = Protocol.load()
    for algo in algos:
        get_entry(algo)
        protocol.space(algo)
    console = make_console()
    for algo in algos:
        budget = trials or protocol.trials
        with Progress(console=console) as bar:
            task = bar.add_task(f"tune {algo}", total=budget)

            def advance(
                done: int, total: int, score: float, task: int = task, algo: str = algo
            ) -> None:
                bar.update(task, completed=done, description=f"tune {algo} (last {score:.1f})")

            record = run_study(algo, out, trials, suite_name, on_trial=advance)
        best = record["best"]
        settings = ", ".join(f"{k}={v:.4g}" for k, v in best["params"].items())
        console.print(
            f"{algo}: best of {record['budget']} trials, trial {best['number']}: "
            f"{best['score']:.1f} normalized with {settings}"
        )


@main.command("report")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "csv", "latex", "json"]),
    default="md",
    show_default=True,
    help="Table format (json: every cell and across-task aggregate).",
)
@click.option(
    "--plots",
    type=click.Path(path_type=Path),
    help="Write PNG plots (score against team size, performance profiles) into this folder.",
)
@click.option(
    "--marl-eval",
    "marl_eval",
    type=click.Path(path_type=Path),
    help="Write the records in marl-eval's JSON layout to this file.",
)
@click.option(
    "--output", type=click.Path(path_type=Path), help="Write the report here, not stdout."
)
def report_command(
    out: Path, fmt: str, plots: Path | None, marl_eval: Path | None, output: Path | None
) -> None:
    """Score tables of a suite's results in OUT (a pure function of OUT/records.jsonl).

    Normalized scores (0 = random, 100 = expert at the evaluation team size). Per cell, the
    mean across seeds with its 95% t-interval over seeds (none with one seed), and the
    degenerate-robustness table (change against clean expert data). Across the tasks of each
    kind (env x training n x data x regime x evaluation n, with at least 2 tasks and 2 runs):
    IQM, mean and optimality gap with rliable's 95% stratified bootstrap CIs, and the
    probability of improvement over the BC of the same class. --plots adds performance
    profiles. Failed cells are marked.

    \b
    Examples:
      marl-bench report results/quick
      marl-bench report results/scale-up --format latex --plots results/scale-up/plots
      marl-bench report results/scale-up --marl-eval results/scale-up/marl_eval.json
    """
    from benchmark.report import aggregate, make_report, marl_eval_json, plot
    from benchmark.store import load_records

    records = load_records(out)
    text = make_report(records, fmt)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    else:
        click.echo(text, nl=False)
    # Notes go to stderr so that stdout holds only the report.
    console = Console(stderr=True)
    if plots:
        for path in plot(aggregate(records), plots):
            console.print(f"plot: {path}")
    if marl_eval:
        marl_eval.parent.mkdir(parents=True, exist_ok=True)
        marl_eval.write_text(json.dumps(marl_eval_json(records), indent=2) + "\n")
        console.print(f"marl-eval export: {marl_eval}")


@main.command("curves")
@click.option("--env", default=None, help="Env whose data and evaluation the curves measure.")
@click.option(
    "--agents", "n_agents", type=int, default=None, help="Team size of data, training, evaluation."
)
@click.option(
    "--data",
    default="expert",
    show_default=True,
    help="Data spec: a quality (expert, medium, random, degenerate...) or a mixture "
    "like expert+degenerate@25.",
)
@click.option(
    "--algo",
    "algos",
    multiple=True,
    help="Algorithm (repeatable); bc's curve sets the budget, so include it.",
)
@click.option("--updates", "n_updates", type=int, default=None, help="Updates of each run.")
@click.option(
    "--every",
    "checkpoint_every",
    type=int,
    default=1000,
    show_default=True,
    help="Updates between evaluated checkpoints; must divide --updates.",
)
@click.option(
    "--seeds",
    "n_seeds",
    type=int,
    default=5,
    show_default=True,
    help="Seeds 0..N-1: each trains every algorithm on a dataset collected with that seed.",
)
@click.option(
    "--episodes",
    "n_eval_episodes",
    type=int,
    default=20,
    show_default=True,
    help="Evaluation episodes per checkpoint.",
)
@click.option(
    "--dataset-episodes",
    "n_dataset_episodes",
    type=int,
    default=20,
    show_default=True,
    help="Episodes of each seed's dataset.",
)
@click.option("--batch-size", default=256, show_default=True, help="Transitions per update.")
@click.option(
    "--eval-seed",
    default=10_000,
    show_default=True,
    help="Seed of the first evaluation episode of every checkpoint (not a data seed).",
)
@click.option(
    "--option", "option_pairs", multiple=True, metavar="KEY=VALUE", help="Env option (repeatable)."
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Config override for every algorithm with the field (repeatable), on top of the tuned "
    "settings.",
)
@click.option(
    "--tuned/--no-tuned",
    default=True,
    show_default=True,
    help="Start each algorithm from its settings chosen by `marl-bench tune`.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory: datasets, runs, records.jsonl, budget.json "
    "[default: results/curves/<env>-n<agents>-<data>].",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out, skipping finished points.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write a PNG of score against updates with interval bands and the budget.",
)
@click.option(
    "--report-only",
    is_flag=True,
    help="Train nothing: rebuild the table, budget.json and --plot from --out's records.",
)
def curves_command(
    env: str | None,
    n_agents: int | None,
    data: str,
    algos: tuple[str, ...],
    n_updates: int | None,
    checkpoint_every: int,
    n_seeds: int,
    n_eval_episodes: int,
    n_dataset_episodes: int,
    batch_size: int,
    eval_seed: int,
    option_pairs: tuple[str, ...],
    sets: tuple[str, ...],
    tuned: bool,
    out: Path | None,
    resume: bool,
    plot_path: Path | None,
    report_only: bool,
) -> None:
    """Learning curves and the training budget they set: score against updates on one env's data.

    For each seed, a dataset collected with that seed; per algorithm and seed one training run
    of --updates updates with a checkpoint every --every updates; each checkpoint evaluated
    online at the training team size over --episodes episodes from --eval-seed (the same for
    every algorithm and checkpoint). One record per (algorithm, seed, updates) in
    OUT/records.jsonl. Then a table of each algorithm's mean normalized score over seeds with
    its 95% t-interval at every update count, and the budget: the smallest update count where
    bc's mean is within 5 points of its best mean (written to OUT/budget.json). A failing run or
    checkpoint is recorded with its error and the others go on; the command then exits 1.

    \b
    Examples:
      marl-bench curves --env pursuit --agents 2 --algo bc --algo implicit-ql --updates 8000
      marl-bench curves --env pursuit --agents 2 --algo bc --updates 8000 --plot curves.png
      marl-bench curves --env prison --agents 2 --algo bc --updates 4000 --every 500 --seeds 3
      marl-bench curves --env prison ... --option include_last_wall=true --set hidden_size=64
      marl-bench curves ... --out results/curves/pursuit --resume       # continue after a kill
      marl-bench curves ... --updates 16000 --resume                    # extend every curve
      marl-bench curves --out results/curves/pursuit-n2-expert --report-only --plot curves.png
    """
    from benchmark.curves import CurvesSpec, budget_lines, curves_table, report_curves, run_curves

    console = make_console()
    summary = None
    if report_only:
        if out is None:
            raise UserError("--report-only reads --out: give the curves directory")
    else:
        missing = [
            name
            for name, value in (("--env", env), ("--agents", n_agents), ("--updates", n_updates))
            if value is None
        ]
        if missing:
            raise UserError(f"{missing[0]} is required (or --report-only with --out)")
        if not algos:
            raise UserError(
                "--algo is required (repeatable; include bc, whose curve sets the budget)"
            )
        spec = CurvesSpec(
            env=env,
            n_agents=n_agents,
            data=data,
            algos=algos,
            n_updates=n_updates,
            checkpoint_every=checkpoint_every,
            n_seeds=n_seeds,
            n_eval_episodes=n_eval_episodes,
            n_dataset_episodes=n_dataset_episodes,
            env_options=parse_options(option_pairs),
            overrides=_parse_sets(sets),
            tuned=tuned,
            batch_size=batch_size,
            eval_seed=eval_seed,
        )
        out = out or Path("results") / "curves" / f"{env}-n{n_agents}-{data}"
        summary = run_curves(spec, out, resume=resume, console=console)
        console.print(
            f"{summary.n_cells} points, {summary.n_skipped} already done, {summary.n_ok} ok "
            f"and {summary.n_failed} failed now, {summary.seconds:.0f} s; records in "
            f"{out / 'records.jsonl'}"
        )
    report = report_curves(out, plot_path)
    console.print(curves_table(report))
    for line in budget_lines(report):
        console.print(line, markup=False, highlight=False)
    written = [out / "budget.json", *([plot_path] if plot_path else [])]
    console.print(f"wrote {', '.join(map(str, written))}", markup=False, highlight=False)
    if summary is not None and summary.n_failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
