"""Older dataset formats, read as the current one.

Format version 2 changed only the metadata's `env` block (arrays and checksums are unchanged, so a
dataset's `content_checksum` is the same in both versions):

- version 1: `kwargs` (our suite options, defaults included: not the constructor's arguments) and
  `wrappers` (display strings such as `"supersuit.resize_v1(84, 84)"`, ending in `"TeamEnv"`).
- version 2: `options` (what version 1 called `kwargs`), `pettingzoo_kwargs` (exactly the keyword
  arguments of `pettingzoo.make`) or `constructor` (our own envs), `wrappers` as a list of
  `{"name", "kwargs"}` to apply in order, and `action_table` (multiwalker's index -> torques).

A version-1 file is migrated in memory whenever it is opened; `marl-datagen upgrade` writes the
migrated metadata back (see `ops.upgrade`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datagen.dataset.format import FORMAT_VERSION
from datagen.errors import UserError

#: Every format version this package reads.
READABLE_VERSIONS = (1, FORMAT_VERSION)


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
    return {
        **metadata,
        "format_version": FORMAT_VERSION,
        "env": env_block_v1_to_v2(metadata, path),
        "upgraded_from": version,
    }
