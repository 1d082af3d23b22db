"""Dataset ids and where datasets live on disk.

An id reads `{env}-n{agents}-{quality}-v{version}`, e.g. `pursuit-n8-degenerate-v1`; a mode may
extend the quality (`degenerate-saboteur`), and a mixture names its sources and the second one's
percentage (`expert-degenerate25`: a quarter of the episodes degenerate). Under the data home
(`$MARL_DATA_HOME`, default `$XDG_CACHE_HOME/marl-offline-coordination` or
`~/.cache/marl-offline-coordination`) a dataset lives at
`<env>/n<agents>/<quality>-v<version>.h5` (or `.zarr`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from datagen.errors import UserError

_ID_PATTERN = re.compile(
    r"^(?P<env>[a-z][a-z_]*)-n(?P<n>[1-9]\d*)"
    r"-(?P<quality>[a-z]+(?:-[a-z][a-z0-9]*)*)-v(?P<version>[1-9]\d*)$"
)
FORMAT_SUFFIXES = {"hdf5": ".h5", "zarr": ".zarr"}


def data_home() -> Path:
    """The root of local datasets: `$MARL_DATA_HOME`, else a per-user cache directory."""
    explicit = os.environ.get("MARL_DATA_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "marl-offline-coordination"


@dataclass(frozen=True)
class DatasetId:
    """The parts of a dataset id."""

    env: str
    n_agents: int
    quality: str
    version: int = 1

    def __str__(self) -> str:
        return f"{self.env}-n{self.n_agents}-{self.quality}-v{self.version}"

    @classmethod
    def parse(cls, text: str) -> DatasetId:
        """Parse `{env}-n{agents}-{quality}-v{version}`.

        Raises:
            UserError: when `text` does not have that form.
        """
        match = _ID_PATTERN.match(text)
        if match is None:
            raise UserError(
                f"{text!r} is not a dataset id; expected "
                "{env}-n{agents}-{quality}-v{version}, e.g. pursuit-n8-expert-v1"
            )
        return cls(match["env"], int(match["n"]), match["quality"], int(match["version"]))

    def path(self, fmt: str = "hdf5", root: Path | None = None) -> Path:
        """Where this dataset lives under `root` (default: the data home) in format `fmt`."""
        base = data_home() if root is None else root
        return (
            base
            / self.env
            / f"n{self.n_agents}"
            / f"{self.quality}-v{self.version}{FORMAT_SUFFIXES[fmt]}"
        )
