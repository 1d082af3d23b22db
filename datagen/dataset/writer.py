"""Write a dataset from a sequence of episodes, atomically, in either backend.

Episodes are streamed in order into a temporary `<path>.writing`; each array is hashed as it is
written; the metadata with every checksum goes in last; then the temporary is renamed onto `path`.
A dataset at its final path is therefore always complete, and an interrupted write leaves whatever
was at `path` before untouched. The writer announces its progress as events (`datagen.events`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from datagen.dataset.backends import chunk_rows, open_writer, remove_path
from datagen.dataset.format import (
    OBS_ARRAYS,
    ArrayHasher,
    Episode,
    content_checksum,
    return_stats,
    transition_keys,
)
from datagen.events import emit


class EpisodeSource(Protocol):
    """Episodes to write, by index, with their lengths known up front."""

    def __len__(self) -> int: ...
    def length(self, index: int) -> int: ...
    def episode(self, index: int) -> Episode: ...


class EpisodeStats:
    """An `EpisodeSource` that records each episode's team return and its transitions' coverage
    keys as the writer reads it, so a dataset's stats cost no extra pass.

    Args:
        source: the episodes.
        n_episodes: use only the first n (default: all).
    """

    def __init__(self, source: EpisodeSource, n_episodes: int | None = None) -> None:
        self.source = source
        self.n = len(source) if n_episodes is None else n_episodes
        self.returns: dict[int, float] = {}
        self.keys: set[bytes] = set()

    def __len__(self) -> int:
        return self.n

    def length(self, index: int) -> int:
        return self.source.length(index)

    def episode(self, index: int) -> Episode:
        episode = self.source.episode(index)
        if index not in self.returns:
            self.returns[index] = episode.team_return()
            self.keys.update(transition_keys(episode))
        return episode

    def summary(self) -> dict[str, Any]:
        """`totals`, `stats` and `coverage` for dataset metadata, once every episode was read."""
        n_steps = sum(self.length(i) for i in range(self.n))
        return {
            "totals": {"episodes": self.n, "steps": n_steps},
            "stats": return_stats([self.returns[i] for i in range(self.n)]),
            "coverage": len(self.keys) / max(1, n_steps),
        }


class _ChunkAlignedStream:
    """Buffers rows of one array so that every write covers whole chunks (Zarr rewrites a chunk
    on each partial write; HDF5 would go through its chunk cache)."""

    def __init__(self, writer: Any, name: str, row_shape: tuple[int, ...], dtype: np.dtype):
        self.writer, self.name = writer, name
        self.rows_per_write = chunk_rows(row_shape, dtype)
        self.blocks: list[np.ndarray] = []
        self.buffered = 0
        self.offset = 0
        self.hasher = ArrayHasher(name)

    def append(self, values: np.ndarray) -> None:
        self.hasher.update(values)
        self.blocks.append(values)
        self.buffered += len(values)
        if self.buffered >= self.rows_per_write:
            self._flush(whole_chunks_only=True)

    def _flush(self, whole_chunks_only: bool) -> None:
        if not self.blocks:
            return
        rows = np.concatenate(self.blocks)
        cut = len(rows) - len(rows) % self.rows_per_write if whole_chunks_only else len(rows)
        if cut:
            self.writer.write(self.name, self.offset, rows[:cut])
            self.offset += cut
        rest = rows[cut:]
        self.blocks = [rest] if len(rest) else []
        self.buffered = len(rest)

    def close(self) -> str:
        self._flush(whole_chunks_only=False)
        return self.hasher.hexdigest()


def temporary_path(path: Path) -> Path:
    return path.with_name(path.name + ".writing")


def _replace(tmp: Path, path: Path) -> None:
    """Move `tmp` onto `path`: atomic for files; for directory stores the old one is moved aside
    first and deleted after, so a crash in between leaves it at `<path>.old`."""
    if not tmp.is_dir():
        os.replace(tmp, path)
        return
    old = path.with_name(path.name + ".old")
    remove_path(old)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    remove_path(old)


def _fsync_tree(path: Path) -> None:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


def write_dataset(
    path: Path,
    fmt: str,
    episodes: EpisodeSource,
    metadata: dict[str, Any] | Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Write `episodes` as a dataset of format `fmt` at `path`, replacing what is there only once
    the new dataset is complete.

    Args:
        path: final path (`.h5` file or `.zarr` directory).
        fmt: "hdf5" or "zarr".
        episodes: the episodes, written in index order.
        metadata: metadata to store, or a function giving it, called once every episode has been
            read (so it can include stats gathered on the way); `checksums` and
            `content_checksum` are added.

    Returns:
        The metadata as stored.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    remove_path(tmp)
    lengths = [episodes.length(i) for i in range(len(episodes))]
    n_steps, n_episodes = int(sum(lengths)), len(lengths)
    writer = open_writer(tmp, fmt)
    emit("writing")
    try:
        first = episodes.episode(0).arrays()
        streams: dict[str, _ChunkAlignedStream] = {}
        for name, values in first.items():
            rows = n_steps + n_episodes if name in OBS_ARRAYS else n_steps
            writer.create(name, (rows, *values.shape[1:]), values.dtype)
            streams[name] = _ChunkAlignedStream(writer, name, values.shape[1:], values.dtype)
        for index in range(n_episodes):
            arrays = first if index == 0 else episodes.episode(index).arrays()
            if arrays.keys() != streams.keys():
                raise ValueError(
                    f"episode {index} has arrays {sorted(arrays)}, not {sorted(streams)}"
                )
            for name, values in arrays.items():
                streams[name].append(values)
            emit("writing-episode", index)
        writer.create("episode_lengths", (n_episodes,), np.dtype(np.int64))
        streams["episode_lengths"] = _ChunkAlignedStream(
            writer, "episode_lengths", (), np.dtype(np.int64)
        )
        streams["episode_lengths"].append(np.asarray(lengths, dtype=np.int64))
        checksums = {name: stream.close() for name, stream in streams.items()}
        base = metadata() if callable(metadata) else metadata
        stored = {**base, "checksums": checksums, "content_checksum": content_checksum(checksums)}
        writer.set_metadata(stored)
        writer.close()
        _fsync_tree(tmp)
        emit("renaming")
        _replace(tmp, path)
        emit("written")
    except BaseException:
        writer.close()
        remove_path(tmp)
        raise
    return stored
