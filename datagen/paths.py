"""Where the project's small committed artefacts live (`data/` at the repository root)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any


def project_data_dir() -> Path:
    """`$MARL_PROJECT_DATA` if set (tests point it at a temporary copy), else `<repo>/data`."""
    explicit = os.environ.get("MARL_PROJECT_DATA")
    if explicit:
        return Path(explicit)
    return Path(__file__).resolve().parent.parent / "data"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or {} when the file does not exist."""
    return json.loads(path.read_text()) if path.exists() else {}


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path` (`<path>.lock`), so that concurrent processes updating
    the same file do not drop each other's changes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_json(path: Path, update: Callable[[dict[str, Any]], None]) -> None:
    """Read `path`, apply `update` to its content in place, write it back, all under a lock."""
    with locked(path):
        content = read_json(path)
        update(content)
        write_json(path, content)


def write_json(path: Path, content: dict[str, Any] | list[Any]) -> None:
    """Write `content` (an object or a list) to `path` atomically (a crash leaves the previous
    file intact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


@cache
def git_commit() -> str | None:
    """The commit of the checkout this package runs from, or None outside git (asked of git once
    per process: the code a process runs does not change under it)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
