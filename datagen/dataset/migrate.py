"""Older dataset formats, read as the current one.

Format version 2 changed only the metadata's `env` block (arrays and checksums are unchanged, so a
dataset's `content_checksum` is the same in both versions):

- version 1: `kwargs` (our suite options, defaults included: not the constructor's arguments) and
  `wrappers` (display strings such as `"supersuit.resize_v1(84, 84)"`, ending in `"TeamEnv"`).
- version 2: `options` (what version 1 called `kwargs`), `pettingzoo_kwargs` (exactly the keyword
  arguments of `pettingzoo.make`) or `constructor` (our own envs), `wrappers` as a list of
  `{"name", "kwargs"}` to apply in order, and `action_table` (multiwalker's index -> torques).

Format version 3 added the optional per-observation array `positions` (every agent's position, for
the coordination graph's neighbourhoods) and the metadata key `view_radius`. An older dataset reads
as a version-3 one without either: nothing can recover where its agents were.

A version-1 or -2 file is migrated in memory whenever it is opened; `marl-datagen upgrade` writes
the migrated metadata back (see `ops.upgrade`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datagen.dataset.format import FORMAT_VERSION, content_checksum
from datagen.errors import UserError

#: Every format version this package reads.
READABLE_VERSIONS = (1, 2, FORMAT_VERSION)
#: The arrays format 3 added.
ARRAYS_SINCE_V3 = ("positions",)


def env_block_v1_to_v2(metadata: dict[str, Any], path: Path) -> dict[str, Any]:
    """The version-2 `env` block of a version-1 dataset, rebuilt from its name, team size and
    options by the env suite that made it.

    Raises:
        UserError: when the env suite cannot describe that env any more.
    """
    # Only migration needs the env suite, and only for old files.
    from datagen.envs import env_record, get_spec

    env = metadata["env"]
    options = dict(env["kwargs"])
    try:
        if "implementation" in get_spec(env["name"]).options:
            # Version 1 knew only PettingZoo's implementation (pursuit's vectorised one came later).
            options.setdefault("implementation", "pettingzoo")
        return env_record(env["name"], int(metadata["n_agents"]), **options)
    except UserError as err:
        raise UserError(f"{path}: cannot migrate its format-1 env record: {err}") from err


def current_metadata(metadata: dict[str, Any], path: Path) -> dict[str, Any]:
    """`metadata` in the current format version (unchanged when it already is).

    Raises:
        UserError: for a version this package does not read.
    """
    version = metadata.get("format_version")
    if version == FORMAT_VERSION:
        return metadata
    if version not in READABLE_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        raise UserError(
            f"{path}: format version {version} is not supported (this version reads {readable})"
        )
    migrated = {**metadata, "format_version": FORMAT_VERSION, "upgraded_from": version}
    if version == 1:
        migrated["env"] = env_block_v1_to_v2(metadata, path)
    return migrated


def content_checksum_v2(checksums: dict[str, str]) -> str:
    """The content checksum of the same collection written in format 2: over every array but
    those format 3 added (`ARRAYS_SINCE_V3`). Registry entries published in format 2 pin this
    one; `datagen.recipes.rebuild` accepts a rebuild by it."""
    return content_checksum(
        {name: value for name, value in checksums.items() if name not in ARRAYS_SINCE_V3}
    )
