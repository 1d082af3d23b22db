"""`marl-datagen`: the environment suite and offline datasets from the command line.

Each command is thin: it parses arguments, calls a library function that tests call directly, and
prints the result with rich.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from datagen.clikit import CliGroup
from datagen.envs import describe_env, env_names

console = Console()


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Environments and offline multi-agent datasets.

    \b
    Examples:
      marl-datagen envs                      # the seven envs, their agent counts and spaces
      marl-datagen envs --json               # the same for machines
    """


@main.command("envs")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--env",
    "names",
    multiple=True,
    help="Only this env (repeatable); default: every env of the suite.",
)
@click.option(
    "--agents",
    "n_agents",
    type=int,
    default=None,
    help="Describe the envs at this team size (default: each env's default size).",
)
def envs_command(as_json: bool, names: tuple[str, ...], n_agents: int | None) -> None:
    """List the environment suite: source, agent counts, spaces and episode length.

    Shapes are per agent at the team size shown in column n (observation shapes of
    knights_archers_zombies grow with n: one row per entity).
    """
    rows = [describe_env(name, n_agents) for name in names or env_names()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Environment suite (all action spaces discrete)")
    for column in ("env", "source", "agents", "ladder", "n", "obs", "actions", "state", "steps"):
        table.add_column(column)
    for row in rows:
        obs = f"{tuple(row['obs']['shape'])} {row['obs']['dtype']}"
        if row["obs_grows_with_n"]:
            obs += " (grows with n)"
        agents = (
            str(row["n_min"])
            if row["n_min"] == row["n_max"]
            else f"{row['n_min']}-{row['n_max']}"
        )
        source = row["pettingzoo_id"] or "ours"
        state = "none" if row["state_shape"] is None else str(tuple(row["state_shape"]))
        table.add_row(
            row["name"],
            source,
            agents,
            ",".join(map(str, row["ladder"])),
            str(row["n_agents"]),
            obs,
            str(row["n_actions"]),
            state,
            str(row["episode_length"]),
        )
    console.print(table)
