"""`marl-bench`: training, evaluation and benchmark commands.

Each command is thin: it parses arguments, calls a library function that tests call directly, and
prints the result with rich.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

import click
from rich.progress import Progress
from rich.table import Table

from benchmark.perf import default_counts, measure_datasets, measure_envs
from datagen.clikit import CliGroup, make_console, parse_options
from datagen.envs import check_request, env_names


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Offline MARL benchmark: performance measurements (training and suites follow).

    \b
    Examples:
      marl-bench perf envs                               # every env at two team sizes
      marl-bench perf envs --env waterworld --agents 4 --agents 32
      marl-bench perf datasets --env pursuit --agents 8 --episodes 20
    """


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
@click.option("--seed", default=0, show_default=True, help="Seed of envs and random actions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
def perf_envs(
    names: tuple[str, ...], counts: tuple[int, ...], n_steps: int, seed: int, as_json: bool
) -> None:
    """Random-policy rollout speed: env-steps/s and agent-steps/s per env and team size.

    The last column divides each row's agent-steps/s by that of the same env's smallest team, so
    scaling can be read without trusting absolute figures on a shared machine.
    """
    selected = list(names) or env_names()
    total = sum(len(counts or default_counts(name)) for name in selected)
    with Progress(console=make_console(), transient=True, disable=as_json) as progress:
        task = progress.add_task("measuring", total=total)
        results = measure_envs(
            selected,
            counts or None,
            n_steps,
            seed,
            on_result=lambda r: progress.update(
                task, advance=1, description=f"{r.env} n={r.n_agents}"
            ),
        )
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
        return
    table = Table(title=f"Random rollout, one process, {n_steps} steps ({platform.machine()})")
    for column in ("env", "n", "env-steps/s", "agent-steps/s", "vs smallest n"):
        table.add_column(column, justify="right" if column != "env" else "left")
    for r in results:
        table.add_row(
            r.env,
            str(r.n_agents),
            f"{r.env_steps_per_s:,.0f}",
            f"{r.agent_steps_per_s:,.0f}",
            f"{r.ratio_to_smallest:.2f}x",
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


if __name__ == "__main__":
    main()
