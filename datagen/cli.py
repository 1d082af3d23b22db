"""`marl-datagen`: the environment suite and offline datasets from the command line.

Each command is thin: it parses arguments, calls a library function that tests call directly, and
prints the result with rich.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.progress import Progress, TextColumn
from rich.table import Table

from datagen.cards import render_cards
from datagen.clikit import CliGroup, make_console, parse_options
from datagen.collect import CollectRequest, collect
from datagen.dataset import open_dataset, resolve
from datagen.dataset.backends import BACKENDS
from datagen.dataset.format import FORMAT_VERSION
from datagen.dataset.ids import data_home
from datagen.dataset.ops import (
    combine,
    convert,
    delete,
    list_local,
    size_on_disk,
    upgrade,
    verify,
)
from datagen.dataset.registry import check_published, default_registry_path, remote_rows
from datagen.dataset.transfer import DEFAULT_RETRIES
from datagen.envs import EnvConfigError, check_request, describe_env, env_names, get_spec
from datagen.errors import UserError
from datagen.fetch import fetch
from datagen.policies.records import write_medium_recipe, write_reference
from datagen.policies.reference import calibrate_medium, measure_reference
from datagen.policies.registry import DEFAULT_DEGENERATE_MODE, DEGENERATE_MODES, QUALITIES
from datagen.publishing import publish
from datagen.replay import replay


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Environments and offline multi-agent datasets.

    \b
    Examples:
      marl-datagen envs                      # the seven envs, their agent counts and spaces
      marl-datagen envs --json               # the same for machines
      marl-datagen collect --env pursuit --agents 8 --quality random --episodes 20
      marl-datagen list                      # local datasets
      marl-datagen info pursuit-n8-random-v1
      marl-datagen verify pursuit-n8-random-v1
      marl-datagen replay pursuit-n8-random-v1 --episodes 2   # replay through the env
      marl-datagen convert pursuit-n8-random-v1 --format zarr
      marl-datagen list --remote             # published datasets
      marl-datagen download prison-n2-expert-v2

    Datasets live under $MARL_DATA_HOME (default ~/.cache/marl-offline-coordination)
    as <env>/n<agents>/<quality>-v<version>.h5 or .zarr; docs/dataset-format.md is the
    format contract.
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


#: Episodes `collect` gathers when neither --episodes nor --steps is given.
DEFAULT_EPISODES = 10


def _dataset_summary_table(metadata: dict, path: Path) -> Table:
    stats = metadata["stats"]
    table = Table(title=f"{metadata['dataset_id']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("path", str(path)),
        ("env", f"{metadata['env']['name']} ({metadata['env']['pettingzoo_id'] or 'ours'})"),
        ("agents", f"{metadata['n_agents']}: {', '.join(metadata['agent_ids'])}"),
        (
            "behaviour",
            f"{metadata['policy']['name']} (labels: {', '.join(metadata['policy']['labels'])})",
        ),
        ("episodes", str(metadata["totals"]["episodes"])),
        ("steps", str(metadata["totals"]["steps"])),
        (
            "team return",
            f"{stats['mean']:.2f} ± {stats['std']:.2f} (min {stats['min']:.2f}, "
            f"median {stats['median']:.2f}, max {stats['max']:.2f})",
        ),
        ("coverage", f"{metadata['coverage']:.3f} unique (joint obs, joint action) / steps"),
        ("seed", str(metadata["seed"])),
        ("size on disk", f"{size_on_disk(path) / 1e6:.2f} MB"),
        ("content_checksum", metadata["content_checksum"]),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


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
@click.option(
    "--degenerate-mode",
    help=f"With --quality degenerate: {', '.join(DEGENERATE_MODES)} "
    f"(default {DEFAULT_DEGENERATE_MODE}: the env's adversary acts against the team's goal).",
)
@click.option(
    "--saboteur-fraction",
    default=0.25,
    show_default=True,
    help="Share of the team that sabotages in saboteur mode.",
)
@click.option("--episodes", "n_episodes", type=int, help="Number of episodes to collect.")
@click.option("--steps", "n_steps", type=int, help="Collect whole episodes until this many steps.")
@click.option(
    "--seed", default=0, show_default=True, help="Collection seed (episode seeds derive from it)."
)
@click.option(
    "--format",
    "fmt",
    default="hdf5",
    show_default=True,
    help=f"Storage backend: {', '.join(BACKENDS)}.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    help="Processes collecting in parallel (same content for any number).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Output path (default: <data home>/<env>/n<agents>/<quality>-v<version>.h5 or .zarr).",
)
@click.option(
    "--version",
    type=int,
    default=1,
    show_default=True,
    help="Dataset version, the v<version> of the id (e.g. another seed of the same recipe).",
)
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted collection of the same request."
)
@click.option(
    "--force", is_flag=True, help="Replace an existing dataset or interrupted collection."
)
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
    degenerate_mode: str | None,
    saboteur_fraction: float,
    n_episodes: int | None,
    n_steps: int | None,
    seed: int,
    fmt: str,
    workers: int,
    out: Path | None,
    version: int,
    resume: bool,
    force: bool,
    option_pairs: tuple[str, ...],
) -> None:
    """Roll out a behaviour policy and write an offline dataset.

    Each finished episode is staged on disk, so a killed collection continues with --resume and
    ends with exactly the content of an uninterrupted run. The dataset appears at its final path
    only once complete.

    Qualities: random (uniform), expert (the env's strongest policy), medium (expert with
    probability 1 - epsilon, random otherwise; epsilon calibrated by `marl-datagen calibrate`),
    degenerate (deliberately bad; mode adversarial by default, or collapsed, or saboteur).

    \b
    Examples:
      marl-datagen collect --env pursuit --agents 8 --quality expert --episodes 20
      marl-datagen collect --env pursuit --agents 8 --quality degenerate --episodes 20
      marl-datagen collect --env pursuit --agents 8 --quality degenerate \\
          --degenerate-mode saboteur --saboteur-fraction 0.25 --episodes 20
      marl-datagen collect --env prison --agents 4 --steps 5000 --format zarr --workers 2
      marl-datagen collect --env pursuit --agents 8 --episodes 20 --seed 1 --version 2
    """
    if n_episodes is None and n_steps is None:
        n_episodes = DEFAULT_EPISODES
    request = CollectRequest(
        env=env_name,
        n_agents=n_agents,
        quality=quality,
        n_episodes=n_episodes,
        n_steps=n_steps,
        seed=seed,
        fmt=fmt,
        out=out,
        force=force,
        resume=resume,
        workers=workers,
        options=parse_options(option_pairs),
        version=version,
        degenerate_mode=degenerate_mode,
        saboteur_fraction=saboteur_fraction,
    )
    request.validate()
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

        def on_episode(index: int, length: int, team_return: float) -> None:
            nonlocal steps
            steps += length
            returns.append(team_return)
            rate = steps / (time.perf_counter() - start)
            progress.update(
                task,
                advance=1 if n_episodes is not None else length,
                info=f"{len(returns)} episodes, {rate:,.0f} steps/s, mean return "
                f"{sum(returns) / len(returns):.2f}",
            )

        path = collect(request, on_episode=on_episode)
    with open_dataset(path) as dataset:
        make_console().print(_dataset_summary_table(dataset.metadata, path))


def _registry_option(command: Callable) -> Callable:
    """--registry FILE|URL, shared by the commands that read the registry."""
    return click.option(
        "--registry",
        metavar="FILE|URL",
        help="Registry of published datasets (default: the shipped data/registry.json).",
    )(command)


def _remote_table(rows: list[dict], registry: str | None) -> Table:
    table = Table(title=f"Published datasets in {registry or default_registry_path()}")
    numeric = ("size", "episodes", "steps", "mean return", "score", "mirrors")
    for column in ("id", "format", *numeric, "hosting", "local"):
        table.add_column(column, justify="right" if column in numeric else "left")
    for row in rows:
        score = row["normalized_score"]
        table.add_row(
            row["dataset_id"],
            row["format"],
            f"{row['size_bytes'] / 1e6:.2f} MB",
            str(row["episodes"]),
            str(row["steps"]),
            f"{row['team_return_mean']:.2f}",
            "–" if score is None else f"{score:.1f}",
            str(row["mirrors"]),
            row["hosting"],
            row["local"],
        )
    return table


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
@click.option(
    "--remote", is_flag=True, help="List the published datasets and whether each is local."
)
@_registry_option
def list_command(as_json: bool, remote: bool, registry: str | None) -> None:
    """List the datasets in the data home ($MARL_DATA_HOME), or with --remote the published ones.

    With --remote, column `hosting` says whether a mirror serves each id (hosted) or `download`
    rebuilds it from its recipe (rebuild-only), and column `local` what the data home holds: the
    published file (same sha256), a copy with the same content (rebuilt or converted), a dataset
    with different content, or nothing.
    """
    if registry is not None and not remote:
        raise UserError("--registry only applies with --remote")
    if remote:
        published = remote_rows(registry)
        if as_json:
            click.echo(json.dumps(published, indent=2))
        else:
            make_console().print(_remote_table(published, registry))
        return
    rows = list_local()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Local datasets in {data_home()}")
    numeric = ("n", "episodes", "steps", "mean return", "score", "size", "in RAM")
    for column in ("id", "env", "quality", "format", *numeric):
        table.add_column(column, justify="right" if column in numeric else "left")
    for row in rows:
        if row.get("error"):
            table.add_row(f"[red]{row['path']}[/red]", f"[red]{row['error']}[/red]")
            continue
        table.add_row(
            row["dataset_id"],
            row["env"],
            row["quality"],
            row["format"],
            str(row["n_agents"]),
            str(row["episodes"]),
            str(row["steps"]),
            f"{row['team_return_mean']:.2f}",
            "–" if row["normalized_score"] is None else f"{row['normalized_score']:.1f}",
            f"{row['size_bytes'] / 1e6:.2f} MB",
            f"{row['uncompressed_bytes'] / 1e6:.1f} MB",
        )
    make_console().print(table)


@main.command("info")
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print the whole metadata as JSON.")
def info_command(dataset: str, as_json: bool) -> None:
    """Show a dataset's summary (the whole metadata with --json). DATASET is an id or a path."""
    with open_dataset(dataset) as opened:
        metadata = opened.metadata
        path = opened.path
    if as_json:
        click.echo(json.dumps(metadata, indent=2))
        return
    make_console().print(_dataset_summary_table(metadata, path))


@main.command("verify")
@click.argument("dataset")
@_registry_option
@click.option(
    "--published",
    is_flag=True,
    help="Require the published file itself: sha256 and content_checksum equal to the registry's.",
)
def verify_command(dataset: str, registry: str | None, published: bool) -> None:
    """Recompute every checksum and the stats of a dataset (id or path), then compare it with the
    registry entry of its id.

    The registry pins two things: the published file's sha256 (a download has it) and the
    content_checksum (any copy with the same arrays has it: a regenerated or converted one).
    Exits 0 when the dataset is sound, 1 naming each array or field that differs; with
    --published, also 1 unless the file is the published one byte for byte.
    """
    report = verify(dataset)
    if not report.ok:
        for problem in report.problems:
            click.echo(f"FAILED {problem}", err=True)
        sys.exit(1)
    click.echo(
        f"OK {report.path}: {len(report.arrays_checked)} arrays match their checksums; "
        f"content_checksum {report.content_checksum}"
    )
    check = check_published(report.path, registry)
    if not check.listed:
        if published:
            click.echo(f"FAILED {check.dataset_id} is not in the registry", err=True)
            sys.exit(1)
        click.echo(f"NOTE {check.dataset_id} is not in the registry (not a published dataset)")
        return
    if check.same_file and check.same_content:
        click.echo(f"OK the published file of {check.dataset_id}: sha256 {check.sha256}")
        return
    if check.same_content:
        message = (
            f"the content of the published {check.dataset_id} (content_checksum matches), "
            "in a file with other bytes (a regenerated or converted copy)"
        )
    else:
        message = (
            f"not the published {check.dataset_id}: the registry lists content_checksum "
            f"{check.entry.content_checksum}"
        )
    if published:
        click.echo(f"FAILED {message}", err=True)
        sys.exit(1)
    click.echo(f"{'OK' if check.same_content else 'NOTE'} {message}")


@main.command("replay")
@click.argument("dataset")
@click.option(
    "--episodes",
    "n_episodes",
    type=click.IntRange(min=1),
    help="Replay only the first K episodes (default: all).",
)
def replay_command(dataset: str, n_episodes: int | None) -> None:
    """Replay a dataset (id or path) through its env, built from the metadata alone, and compare
    every array the env produces: observations, alive, state, rewards, terminations,
    truncations, episode lengths (and each action against behaviour_probs).

    Exits 0 when everything matches, 1 naming the first mismatch (episode, step, agent, array).

    \b
    Example:
      marl-datagen replay pursuit-n8-random-v1 --episodes 2
    """
    path = resolve(dataset)
    with open_dataset(path) as opened:
        total = len(opened) if n_episodes is None else min(n_episodes, len(opened))
    with Progress(
        *Progress.get_default_columns(), console=make_console(), transient=True
    ) as progress:
        task = progress.add_task(f"replaying {path.name}", total=total)
        report = replay(path, n_episodes, on_episode=lambda i, n: progress.advance(task))
    if not report.ok:
        click.echo(f"MISMATCH {report.path}: {report.mismatch}", err=True)
        sys.exit(1)
    click.echo(
        f"OK {report.path}: {report.n_episodes} episodes ({report.n_steps} steps) replay "
        "exactly from the metadata"
    )


@main.command("upgrade")
@click.argument("dataset")
def upgrade_command(dataset: str) -> None:
    """Rewrite an older dataset's metadata (id or path) in the current format version.

    Only the metadata is rewritten, atomically; the arrays and the content_checksum are
    untouched. Older files also open as they are: they are migrated in memory when read.
    """
    result = upgrade(dataset)
    if not result.rewritten:
        click.echo(f"OK {result.path} is already format version {FORMAT_VERSION}")
        return
    click.echo(
        f"upgraded {result.path}: format version {result.from_version} -> {FORMAT_VERSION} "
        "(arrays and content_checksum unchanged)"
    )


@main.command("convert")
@click.argument("dataset")
@click.option("--format", "fmt", required=True, help=f"Target format: {', '.join(BACKENDS)}.")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Target path (default: beside the source)."
)
@click.option("--force", is_flag=True, help="Replace an existing target.")
def convert_command(dataset: str, fmt: str, out: Path | None, force: bool) -> None:
    """Copy a dataset into the other storage backend (HDF5 <-> Zarr), content checksum unchanged."""
    target = convert(dataset, fmt, out, force)
    with open_dataset(target) as converted:
        click.echo(f"wrote {target} (content_checksum {converted.metadata['content_checksum']})")


@main.command("combine")
@click.argument("datasets", nargs=-1, required=True)
@click.option(
    "--into", "out_id", required=True, help="Id of the result, e.g. pursuit-n8-medium-expert-v1."
)
@click.option(
    "--proportions",
    help="Comma-separated weight per dataset, summing to 1 (default: every episode of each).",
)
@click.option("--episodes", "n_episodes", type=int, help="Total episodes, with --proportions.")
@click.option("--seed", default=0, show_default=True, help="Seed of the episode draw.")
@click.option(
    "--format", "fmt", default="hdf5", show_default=True, help="Storage backend of the result."
)
@click.option("--out", type=click.Path(path_type=Path), help="Result path (default: from the id).")
@click.option("--force", is_flag=True, help="Replace an existing result.")
def combine_command(
    datasets: tuple[str, ...],
    out_id: str,
    proportions: str | None,
    n_episodes: int | None,
    seed: int,
    fmt: str,
    out: Path | None,
    force: bool,
) -> None:
    """Combine datasets of one env and team size into one, keeping behaviour labels.

    \b
    Examples:
      marl-datagen combine pursuit-n8-medium-v1 pursuit-n8-expert-v1 \\
          --into pursuit-n8-medium-expert-v1
      marl-datagen combine pursuit-n8-expert-v1 pursuit-n8-degenerate-v1 \\
          --proportions 0.75,0.25 --into pursuit-n8-mix25-v1
    """
    weights = None
    if proportions is not None:
        try:
            weights = [float(p) for p in proportions.split(",")]
        except ValueError as err:
            raise UserError(
                f"--proportions must be comma-separated numbers, got {proportions!r}"
            ) from err
    path = combine(
        list(datasets),
        out_id,
        proportions=weights,
        n_episodes=n_episodes,
        seed=seed,
        fmt=fmt,
        out=out,
        force=force,
    )
    with open_dataset(path) as combined:
        make_console().print(_dataset_summary_table(combined.metadata, path))


@main.command("delete")
@click.argument("dataset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_command(dataset: str, yes: bool) -> None:
    """Delete a local dataset (id or path). Asks first unless --yes."""
    path = resolve(dataset)
    if not yes:
        click.confirm(f"Delete {path}?", abort=True)
    delete(path)
    click.echo(f"deleted {path}")


@main.command("download")
@click.argument("datasets", nargs=-1, required=True)
@_registry_option
@click.option(
    "--force", is_flag=True, help="Replace a local dataset of the id whose content differs."
)
@click.option(
    "--retries",
    default=DEFAULT_RETRIES,
    show_default=True,
    help="Extra attempts per mirror after a transient failure.",
)
@click.option(
    "--no-rebuild",
    is_flag=True,
    help="Fail when no mirror serves a dataset instead of rebuilding it from its recipe.",
)
def download_command(
    datasets: tuple[str, ...], registry: str | None, force: bool, retries: int, no_rebuild: bool
) -> None:
    """Download published datasets by id into the data home, checksum-verified, or rebuild them
    from their recipe.

    Each mirror is tried in turn; a file whose sha256 differs from the registry's is rejected
    and never cached. When no mirror serves a dataset, or it is rebuild-only (no mirror), it is
    collected again from the registry's recipe and kept only if its content_checksum is the
    registry's (--no-rebuild: fail instead). A dataset already in the data home is not fetched
    again.

    \b
    Examples:
      marl-datagen list --remote
      marl-datagen download prison-n2-expert-v2
      marl-datagen download prison-n2-expert-v2 --registry https://example.org/registry.json
    """
    if retries < 0:
        raise UserError(f"--retries must be at least 0, got {retries}")
    for dataset_id in datasets:
        result = fetch(
            dataset_id,
            registry,
            force=force,
            rebuild=not no_rebuild,
            retries=retries,
            show_progress=True,
            on_notice=lambda line: click.echo(line, err=True),
        )
        if result.transferred:
            click.echo(f"downloaded {dataset_id} -> {result.path} (sha256 verified)")
        elif result.rebuilt:
            click.echo(f"rebuilt {dataset_id} -> {result.path} (content_checksum verified)")
        else:
            click.echo(f"{dataset_id} already local at {result.path} ({result.status})")


@main.command("publish")
@click.argument("datasets", nargs=-1, required=True)
@click.option("--base-url", required=True, help="URL of the folder the files will be served from.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the upload-ready files and registry.json.",
)
@click.option(
    "--registry-out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Merge the entries into this registry file instead of <out>/registry.json.",
)
def publish_command(
    datasets: tuple[str, ...], base_url: str, out: Path, registry_out: Path | None
) -> None:
    """Write upload-ready files of local datasets (ids or paths) and their registry entries.

    Each dataset is verified, then copied as <out>/<id>.h5 (a Zarr dataset is converted, same
    content checksum); its entry (url <base-url>/<id>.h5, sha256, size, stats, recipe) is merged
    into <out>/registry.json. Publishing again with another --base-url adds a mirror.
    docs/publishing.md says how to upload the files and update the shipped registry.

    \b
    Example:
      marl-datagen publish prison-n2-expert-v2 \\
          --base-url https://example.org/datasets --out dist/datasets
    """
    entries = publish(list(datasets), base_url, out, registry_out)
    for entry in entries:
        click.echo(
            f"{out / entry.file}: {entry.size / 1e6:.2f} MB, sha256 {entry.sha256}, "
            f"{len(entry.urls)} url(s)"
        )
    click.echo(f"registry entries in {registry_out or out / 'registry.json'}")


def _measurement_options(episodes: int, episodes_help: str) -> Callable:
    """--env, --agents (repeatable), --episodes and --seed, shared by reference and calibrate."""

    def decorate(command: Callable) -> Callable:
        command = click.option("--seed", default=0, show_default=True, help="Evaluation seed.")(
            command
        )
        command = click.option(
            "--episodes", "n_episodes", default=episodes, show_default=True, help=episodes_help
        )(command)
        command = click.option(
            "--agents",
            "counts",
            multiple=True,
            type=int,
            help="Team size (repeatable; default: every count of the env's ladder).",
        )(command)
        return click.option("--env", "env_name", required=True, help="Env of the suite.")(command)

    return decorate


def _counts(env_name: str, counts: tuple[int, ...]) -> list[int]:
    spec = get_spec(env_name)
    for n in counts:
        check_request(env_name, n, {})
    return list(counts) or list(spec.ladder)


@main.command("reference")
@_measurement_options(episodes=100, episodes_help="Episodes of each policy.")
def reference_command(env_name: str, counts: tuple[int, ...], n_episodes: int, seed: int) -> None:
    """Measure random and expert team returns and store them in data/reference_scores.json.

    Normalised scores (0 = random, 100 = expert) of datasets and of trained policies are computed
    against these figures at the same env and team size.
    """
    for n_agents in _counts(env_name, counts):
        with Progress(console=make_console(), transient=True) as progress:
            task = progress.add_task(f"{env_name} n={n_agents}", total=None)
            record = measure_reference(
                env_name,
                n_agents,
                n_episodes,
                seed,
                on_episode=lambda quality, i, r, task=task, n=n_agents: progress.update(
                    task, advance=1, description=f"{env_name} n={n} {quality}"
                ),
            )
        write_reference(env_name, n_agents, record)
        rand, expert = record["random"], record["expert"]
        click.echo(
            f"{env_name} n={n_agents}: random {rand['mean']:.2f} ± {rand['std']:.2f}, "
            f"expert {expert['mean']:.2f} ± {expert['std']:.2f} ({n_episodes} episodes each)"
        )


@main.command("calibrate")
@_measurement_options(episodes=20, episodes_help="Episodes of each probe.")
def calibrate_command(env_name: str, counts: tuple[int, ...], n_episodes: int, seed: int) -> None:
    """Find the medium behaviour's epsilon by bisection and store it in data/medium_recipes.json.

    Medium = expert with probability 1 - epsilon, uniform random otherwise, per agent and step;
    the search stops at the first epsilon whose normalised score lies in [30, 60].
    """
    for n_agents in _counts(env_name, counts):
        recipe = calibrate_medium(
            env_name,
            n_agents,
            n_episodes,
            seed,
            on_probe=lambda eps, score: click.echo(f"  epsilon {eps:.4f}: score {score:.1f}"),
        )
        write_medium_recipe(env_name, n_agents, recipe)
        click.echo(
            f"{env_name} n={n_agents}: epsilon {recipe['epsilon']:.4f}, "
            f"normalised score {recipe['normalized_score']:.1f}"
        )


CARD_QUALITIES = (
    ("random", None),
    ("medium", None),
    ("expert", None),
    ("degenerate", None),
    ("degenerate", "saboteur"),
)


@main.command("cards")
@click.option("--env", "names", multiple=True, help="Env (repeatable; default: all).")
@click.option(
    "--collect-episodes",
    type=int,
    help="First collect every missing dataset (each ladder count and quality) with this many "
    "episodes, seed 0.",
)
@click.option("--workers", default=1, show_default=True, help="Processes per collection.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("docs/datasets.md"),
    show_default=True,
    help="Where to write the cards.",
)
def cards_command(
    names: tuple[str, ...], collect_episodes: int | None, workers: int, out: Path
) -> None:
    """Write the dataset cards (docs/datasets.md): behaviour targets and one row per dataset."""
    envs = list(names) or env_names()
    for name in envs:
        get_spec(name)
    if collect_episodes is not None:
        for name in envs:
            for n_agents in get_spec(name).ladder:
                for quality, mode in CARD_QUALITIES:
                    request = CollectRequest(
                        env=name,
                        n_agents=n_agents,
                        quality=quality,
                        degenerate_mode=mode,
                        n_episodes=collect_episodes,
                        workers=workers,
                    )
                    if request.path().exists():
                        continue
                    try:
                        collect(request)
                    except UserError as err:  # no expert or recipe yet: say so, go on
                        click.echo(f"skipped {request.dataset_id}: {err}", err=True)
                        continue
                    click.echo(f"collected {request.dataset_id}")
    parts = ["marl-datagen cards", *(f"--env {n}" for n in names)]
    if collect_episodes is not None:
        parts.append(f"--collect-episodes {collect_episodes}")
    command = " ".join(parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_cards(envs, command))
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
