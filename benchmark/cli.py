"""`marl-bench`: training, evaluation and benchmark commands.

Each command is thin: it parses arguments, calls a library function that tests call directly, and
prints the result with rich.
"""

from __future__ import annotations

import json
import platform

import click
from rich.progress import Progress
from rich.table import Table

from benchmark.perf import default_counts, measure_envs
from datagen.clikit import CliGroup, make_console
from datagen.envs import env_names


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Offline MARL benchmark: performance measurements (training and suites follow).

    \b
    Examples:
      marl-bench perf envs                               # every env at two team sizes
      marl-bench perf envs --env waterworld --agents 4 --agents 32
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
