"""`marl-datagen`: the environment suite and offline datasets from the command line.

Each command is thin: it parses arguments, calls a library function that tests call directly, and
prints the result with rich.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.progress import Progress, TextColumn
from rich.table import Table

from datagen.clikit import CliGroup, make_console, parse_options
from datagen.collect import CollectRequest, collect
from datagen.dataset.hdf5 import read_metadata
from datagen.envs import EnvConfigError, check_request, describe_env, env_names
from datagen.policies import QUALITIES


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Environments and offline multi-agent datasets.

    \b
    Examples:
      marl-datagen envs                      # the seven envs, their agent counts and spaces
      marl-datagen envs --json               # the same for machines
      marl-datagen collect --env pursuit --agents 2 --episodes 5
      marl-datagen info ~/.cache/marl-offline-coordination/pursuit/n2/random-v1.h5
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
    rows = []
    for name in names or env_names():
        try:
            rows.append(describe_env(name, n_agents))
        except EnvConfigError as err:
            if names:  # asked for by name: the error is the answer
                raise
            # A missing optional extra must not hide the rest of the suite.
            rows.append({"name": name, "available": False, "error": str(err)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Environment suite (all action spaces discrete)")
    for column in ("env", "source", "agents", "ladder", "n", "obs", "actions", "state", "steps"):
        table.add_column(column)
    for row in rows:
        if not row.get("available", True):
            table.add_row(row["name"], f"[red]unavailable: {row['error']}[/red]")
            continue
        obs = f"{tuple(row['obs']['shape'])} {row['obs']['dtype']}"
        if row["obs_grows_with_n"]:
            obs += " (grows with n)"
        agents = (
            str(row["n_min"]) if row["n_min"] == row["n_max"] else f"{row['n_min']}-{row['n_max']}"
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
    make_console().print(table)


def _dataset_summary_table(metadata: dict, path: Path) -> Table:
    stats = metadata["stats"]
    table = Table(title=f"{metadata['dataset_id']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("path", str(path)),
        ("env", f"{metadata['env']['name']} ({metadata['env']['pettingzoo_id'] or 'ours'})"),
        ("agents", f"{metadata['n_agents']}: {', '.join(metadata['agent_ids'])}"),
        ("behaviour", metadata["policy"]["name"]),
        ("episodes", str(metadata["totals"]["episodes"])),
        ("steps", str(metadata["totals"]["steps"])),
        (
            "team return",
            f"{stats['mean']:.2f} ± {stats['std']:.2f} (min {stats['min']:.2f}, "
            f"median {stats['median']:.2f}, max {stats['max']:.2f})",
        ),
        ("coverage", f"{metadata['coverage']:.3f} unique (joint obs, joint action) / steps"),
        ("seed", str(metadata["seed"])),
        ("size on disk", f"{_size_on_disk(path) / 1e6:.2f} MB"),
        ("content_checksum", metadata["content_checksum"]),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def _size_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


@main.command("collect")
@click.option(
    "--env", "env_name", required=True, help="Env of the suite (see `marl-datagen envs`)."
)
@click.option("--agents", "n_agents", required=True, type=int, help="Team size.")
@click.option(
    "--quality",
    default="random",
    show_default=True,
    help=f"Behaviour quality: {', '.join(QUALITIES)}.",
)
@click.option("--episodes", "n_episodes", type=int, help="Number of episodes to collect.")
@click.option("--steps", "n_steps", type=int, help="Collect whole episodes until this many steps.")
@click.option(
    "--seed", default=0, show_default=True, help="Collection seed (episode seeds derive from it)."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Output file (default: <data home>/<env>/n<agents>/<quality>-v1.h5).",
)
@click.option("--force", is_flag=True, help="Replace an existing dataset.")
@click.option(
    "--option",
    "option_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Env option (repeatable), e.g. --option max_cycles=200.",
)
def collect_command(
    env_name: str,
    n_agents: int,
    quality: str,
    n_episodes: int | None,
    n_steps: int | None,
    seed: int,
    out: Path | None,
    force: bool,
    option_pairs: tuple[str, ...],
) -> None:
    """Roll out a behaviour policy and write an offline dataset.

    \b
    Example:
      marl-datagen collect --env pursuit --agents 8 --quality random --episodes 20
    """
    request = CollectRequest(
        env=env_name,
        n_agents=n_agents,
        quality=quality,
        n_episodes=n_episodes,
        n_steps=n_steps,
        seed=seed,
        out=out,
        force=force,
        options=parse_options(option_pairs),
    )
    check_request(env_name, n_agents, request.options)
    total = n_episodes if n_episodes is not None else n_steps
    returns: list[float] = []
    with Progress(
        *Progress.get_default_columns(),
        TextColumn("{task.fields[info]}"),
        console=make_console(),
        transient=True,
    ) as progress:
        task = progress.add_task(f"collecting {request.dataset_id}", total=total, info="")
        start = time.perf_counter()
        steps = 0

        def on_episode(index: int, episode) -> None:
            nonlocal steps
            steps += episode.length
            returns.append(episode.team_return())
            rate = steps / (time.perf_counter() - start)
            progress.update(
                task,
                advance=1 if n_episodes is not None else episode.length,
                info=f"{index + 1} episodes, {rate:,.0f} steps/s, mean return "
                f"{sum(returns) / len(returns):.2f}",
            )

        path = collect(request, on_episode=on_episode)
    make_console().print(_dataset_summary_table(read_metadata(path), path))


@main.command("info")
@click.argument("dataset", type=click.Path(path_type=Path, exists=True, dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print the whole metadata as JSON.")
def info_command(dataset: Path, as_json: bool) -> None:
    """Show a dataset's summary (or its whole metadata with --json)."""
    metadata = read_metadata(dataset)
    if as_json:
        click.echo(json.dumps(metadata, indent=2))
        return
    make_console().print(_dataset_summary_table(metadata, dataset))
