"""Recipes: the command line that makes a dataset again, read from its metadata, and the rebuild of
a registry entry from the recipe it records.

A collected dataset's recipe is a `marl-datagen collect` command line (`collect_command`); a
combined one's, a `marl-datagen combine` command line over its sources (`combine_command`). One
flag table, `COLLECT_FLAGS`, maps the collect flags a recipe carries to the `CollectRequest` fields
they set: `collect_command` writes a request with it and `collect_request` reads one back, so the
two cannot drift apart.

`rebuild` collects a registry entry's dataset from its recipe into a scratch folder and moves it to
the data home only when its content checksum is the registry's. An entry published in format 2
pins the content without `positions` (format 3 added them): a rebuild whose other arrays match it
is written again without them (`_as_published_in_format_2`), so that it holds exactly the
published content.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from datagen.clikit import parse_options
from datagen.collect import CollectRequest, EpisodeCallback, collect
from datagen.dataset.format import Episode
from datagen.dataset.ids import DatasetId
from datagen.dataset.migrate import ARRAYS_SINCE_V3, content_checksum_v2
from datagen.dataset.reader import Dataset
from datagen.dataset.registry import RegistryEntry
from datagen.dataset.writer import temporary_path, write_dataset
from datagen.envs import get_spec
from datagen.errors import UserError
from datagen.policies.registry import DEFAULT_DEGENERATE_MODE


@dataclasses.dataclass(frozen=True)
class CollectFlag:
    """A `marl-datagen collect` flag that a recipe command line carries.

    Attributes:
        name: the flag, e.g. `--agents`.
        field: the `CollectRequest` field it sets.
        read: turns the flag's text into the field's value.
        always: written even when the value is the field's default (and required when read).
    """

    name: str
    field: str
    read: Callable[[str], Any]
    always: bool = False


#: The collect flags of a recipe, in the order `collect_command` writes them; env options follow
#: as `--option key=value`, one per option that differs from the env's default.
COLLECT_FLAGS = (
    CollectFlag("--env", "env", str, always=True),
    CollectFlag("--agents", "n_agents", int, always=True),
    CollectFlag("--quality", "quality", str, always=True),
    CollectFlag("--degenerate-mode", "degenerate_mode", str),
    CollectFlag("--saboteur-fraction", "saboteur_fraction", float),
    CollectFlag("--episodes", "n_episodes", int, always=True),
    CollectFlag("--seed", "seed", int, always=True),
    CollectFlag("--version", "version", int),
)
OPTION_FLAG = "--option"
_COLLECT = ("marl-datagen", "collect")


def _option_text(value: Any) -> str:
    """A `--option` value that `parse_options` reads back as `value`."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value)


def _request_of(metadata: dict[str, Any]) -> CollectRequest:
    """The request that collects a dataset's content again, from its metadata (env options
    at their defaults left out).

    Raises:
        UserError: for a behaviour the command line cannot express (a collapsed action other
            than 0).
    """
    quality, env = metadata["quality"], metadata["env"]
    behaviour: dict[str, Any] = {}
    if quality["name"] == "degenerate":
        if quality["mode"] == "collapsed" and quality.get("action", 0) != 0:
            raise UserError(
                f"{metadata['dataset_id']}: a collapsed action other than 0 cannot be "
                "expressed as a marl-datagen collect command"
            )
        if quality["mode"] != DEFAULT_DEGENERATE_MODE:
            behaviour["degenerate_mode"] = quality["mode"]
        if quality["mode"] == "saboteur":
            behaviour["saboteur_fraction"] = quality["fraction"]
    defaults = json.loads(json.dumps(get_spec(env["name"]).options))
    return CollectRequest(
        env=env["name"],
        n_agents=metadata["n_agents"],
        quality=quality["name"],
        n_episodes=metadata["totals"]["episodes"],
        seed=metadata["seed"],
        options={k: v for k, v in env["options"].items() if defaults.get(k) != v},
        version=DatasetId.parse(metadata["dataset_id"]).version,
        **behaviour,
    )


def collect_command(metadata: dict[str, Any]) -> str:
    """The `marl-datagen collect` command line that collects a dataset's content again.

    Raises:
        UserError: for a behaviour the command line cannot express (a collapsed action other
            than 0).
    """
    request = _request_of(metadata)
    defaults = {f.name: f.default for f in dataclasses.fields(CollectRequest)}
    args = list(_COLLECT)
    for flag in COLLECT_FLAGS:
        value = getattr(request, flag.field)
        if flag.always or value != defaults[flag.field]:
            args += [flag.name, str(value)]
    for key, value in sorted(request.options.items()):
        args += [OPTION_FLAG, f"{key}={_option_text(value)}"]
    return shlex.join(args)


def collect_request(command: str) -> CollectRequest:
    """The request a recipe's `marl-datagen collect` command line makes: `collect_command`'s
    inverse.

    Raises:
        UserError: a command that is not `marl-datagen collect`, a flag a recipe does not carry,
            a value of the wrong type, or a required flag missing.
    """
    argv = shlex.split(command)
    if tuple(argv[:2]) != _COLLECT:
        raise UserError(f"not a marl-datagen collect command: {command}")
    flags = {flag.name: flag for flag in COLLECT_FLAGS}
    values: dict[str, Any] = {}
    option_pairs: list[str] = []
    words = iter(argv[2:])
    for name in words:
        text = next(words, None)
        if text is None:
            raise UserError(f"{command}: {name} has no value")
        if name == OPTION_FLAG:
            option_pairs.append(text)
            continue
        if name not in flags:
            known = ", ".join([*flags, OPTION_FLAG])
            raise UserError(f"{command}: {name} is not a flag of a recipe ({known})")
        flag = flags[name]
        try:
            values[flag.field] = flag.read(text)
        except ValueError as err:
            raise UserError(
                f"{command}: {name} expects {flag.read.__name__}, got {text!r}"
            ) from err
    missing = [flag.name for flag in COLLECT_FLAGS if flag.always and flag.field not in values]
    if missing:
        raise UserError(f"{command}: {missing[0]} is missing")
    return CollectRequest(**values, options=parse_options(tuple(option_pairs)))


def combine_command(metadata: dict[str, Any]) -> str:
    """The `marl-datagen combine` command line that makes a combined dataset again from its
    sources (which must be made again, or downloaded, first)."""
    quality = metadata["quality"]
    args = ["marl-datagen", "combine", *quality["sources"], "--into", metadata["dataset_id"]]
    if quality.get("proportions") is not None:
        args += ["--proportions", ",".join(str(p) for p in quality["proportions"])]
        args += ["--episodes", str(metadata["totals"]["episodes"])]
        args += ["--seed", str(quality["seed"])]
    return shlex.join(args)


def recipe_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """How to make a dataset again, from what its metadata recorded."""
    if metadata["policy"]["name"] == "combined":
        return {
            "command": combine_command(metadata),
            "sources": [
                {"dataset_id": s["dataset_id"], "content_checksum": s["content_checksum"]}
                for s in metadata["policy"]["sources"]
            ],
            "packages": metadata["packages"],
        }
    return {
        "command": collect_command(metadata),
        "quality": metadata["quality"],
        "packages": metadata["packages"],
    }


def stats_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """The summary a registry entry carries."""
    return {
        "episodes": metadata["totals"]["episodes"],
        "steps": metadata["totals"]["steps"],
        "team_return_mean": metadata["stats"]["mean"],
        "team_return_std": metadata["stats"]["std"],
        "normalized_score": metadata.get("normalized_score"),
        "coverage": metadata["coverage"],
    }


# ------------------------------------------------------------------------------------ rebuild


def rebuild_request(entry: RegistryEntry) -> CollectRequest:
    """The collection that rebuilds a registry entry, read from its recipe command.

    Raises:
        UserError: an entry without a recipe command, a combined dataset (its sources come
            first), or a recipe that makes another id than the entry's.
    """
    command = entry.recipe.get("command")
    if not isinstance(command, str) or not command:
        raise UserError(f"the registry entry {entry.dataset_id} has no recipe command to rebuild")
    if shlex.split(command)[:2] == ["marl-datagen", "combine"]:
        raise UserError(
            f"{entry.dataset_id} is combined from other datasets and is not rebuilt "
            f"automatically: get its sources, then run `{command}`"
        )
    request = collect_request(command)
    if str(request.dataset_id) != entry.dataset_id:
        raise UserError(
            f"the registry entry {entry.dataset_id} is inconsistent: its recipe makes "
            f"{request.dataset_id} (`{command}`)"
        )
    return request


def rebuild(entry: RegistryEntry, target: Path, *, show_progress: bool = False) -> Path:
    """Collect `entry`'s dataset from its recipe and put it at `target` if it is the registry's.

    The collection runs in a scratch folder (under the system's temporary directory, `TMPDIR`),
    so an interrupted or refused rebuild leaves nothing beside `target`. The result is moved to
    `target` only when its content checksum equals the entry's.

    Args:
        entry: the registry entry.
        target: where the dataset goes (its data-home path).
        show_progress: draw a progress bar over episodes on stderr (on a terminal only).

    Returns:
        `target`.

    Raises:
        UserError: an entry that cannot be rebuilt (see `rebuild_request`), or a rebuild whose
            content checksum differs from the registry's (naming both); nothing is cached then.
    """
    request = rebuild_request(entry)
    with tempfile.TemporaryDirectory(prefix="marl-rebuild-") as scratch:
        request = dataclasses.replace(request, out=Path(scratch) / target.name, fmt=entry.format)
        with _episode_bar(show_progress, f"rebuilding {entry.dataset_id}", request) as on_episode:
            built = collect(request, on_episode=on_episode)
        with Dataset(built) as dataset:
            content = dataset.metadata["content_checksum"]
            published_in_format_2 = content_checksum_v2(dataset.metadata["checksums"])
        if content != entry.content_checksum and published_in_format_2 == entry.content_checksum:
            built = _as_published_in_format_2(built, Path(scratch) / "format-2" / target.name)
            content = published_in_format_2
        if content != entry.content_checksum:
            raise UserError(
                f"the rebuilt {entry.dataset_id} has content_checksum {content}, the registry "
                f"lists {entry.content_checksum}; not cached (the code or package versions "
                "differ from those in the entry's recipe.packages)"
            )
        _move_into_place(built, target)
    return target


class _WithoutArraysSinceV3:
    """A dataset's episodes without the arrays format 3 added (an `EpisodeSource`)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def length(self, index: int) -> int:
        return self.dataset.length(index)

    def episode(self, index: int) -> Episode:
        return dataclasses.replace(self.dataset.episode(index), **dict.fromkeys(ARRAYS_SINCE_V3))


def _as_published_in_format_2(built: Path, out: Path) -> Path:
    """Write `built` again at `out` without the arrays format 3 added (`ARRAYS_SINCE_V3`): the
    content a registry entry published in format 2 pins. Returns `out`."""
    with Dataset(built) as dataset:
        metadata = {
            key: value
            for key, value in dataset.metadata.items()
            if key not in ("checksums", "content_checksum")
        }
        write_dataset(out, dataset.format, _WithoutArraysSinceV3(dataset), metadata)
    return out


@contextmanager
def _episode_bar(
    show: bool, description: str, request: CollectRequest
) -> Iterator[EpisodeCallback | None]:
    """A progress bar over the episodes of a collection, on stderr when it is a terminal."""
    console = Console(stderr=True)
    if not show or not console.is_terminal:  # a bar in a log or a pipe is noise
        yield None
        return
    with Progress(*Progress.get_default_columns(), console=console, transient=True) as progress:
        task = progress.add_task(description, total=request.n_episodes)
        yield lambda index, length, team_return: progress.advance(task)


def _move_into_place(source: Path, target: Path) -> None:
    """Move a finished dataset file to `target` atomically: a rename on the same file system,
    else a copy beside `target` renamed over it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
        return
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
    writing = temporary_path(target)
    try:
        shutil.copyfile(source, writing)
        os.replace(writing, target)
    finally:
        writing.unlink(missing_ok=True)
