"""HDF5 storage of datasets (h5py).

Arrays sit at the root of the file, chunked along axis 0 and gzip-compressed; the metadata is a
JSON object in the root attribute `metadata`. A writer works on `<final name>.partial` and renames
it into place only once the metadata (with every checksum) is written, so a dataset at its final
path is always complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from datagen.dataset.format import array_sha256, content_checksum, row_blocks

#: Target uncompressed bytes per chunk: big enough for fast whole-array reads, small enough to
#: append episode by episode.
CHUNK_BYTES = 1 << 20


def chunk_rows(row_shape: tuple[int, ...], dtype: np.dtype) -> int:
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return max(1, CHUNK_BYTES // row_bytes)


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class HDF5Writer:
    """Append episodes to a new HDF5 dataset, then finalise it atomically.

    Args:
        path: the final path of the dataset.
        compression_level: gzip level of every chunk.
    """

    def __init__(self, path: Path, compression_level: int = 4) -> None:
        self.path = Path(path)
        self.tmp_path = partial_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.tmp_path, "w")
        self.compression_level = compression_level

    def _append(self, name: str, values: np.ndarray) -> None:
        if name not in self.file:
            self.file.create_dataset(
                name,
                shape=(0, *values.shape[1:]),
                maxshape=(None, *values.shape[1:]),
                dtype=values.dtype,
                chunks=(chunk_rows(values.shape[1:], values.dtype), *values.shape[1:]),
                compression="gzip",
                compression_opts=self.compression_level,
                shuffle=True,
            )
        dataset = self.file[name]
        start = dataset.shape[0]
        dataset.resize(start + len(values), axis=0)
        dataset[start:] = values

    def append(self, arrays: dict[str, np.ndarray], episode_length: int) -> None:
        """Append one episode's arrays (see `Episode.arrays`) and its length."""
        for name, values in arrays.items():
            self._append(name, values)
        self._append("episode_lengths", np.array([episode_length], dtype=np.int64))

    def checksums(self) -> dict[str, str]:
        """sha256 of every array written so far, read back from the file."""
        result = {}
        for name, dataset in self.file.items():
            block = dataset.chunks[0] * 16 if dataset.chunks else len(dataset)
            result[name] = array_sha256(
                name,
                dataset.shape,
                dataset.dtype,
                row_blocks(lambda a, b, d=dataset: d[a:b], dataset.shape[0], max(1, block)),
            )
        return result

    def finalize(self, metadata: dict[str, Any]) -> Path:
        """Write checksums and metadata, close, and move the file to its final path.

        Returns:
            The final path.
        """
        sums = self.checksums()
        metadata = {**metadata, "checksums": sums, "content_checksum": content_checksum(sums)}
        self.file.attrs["metadata"] = json.dumps(metadata)
        self.file.flush()
        self.file.close()
        with open(self.tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial file."""
        if self.file.id.valid:
            self.file.close()
        self.tmp_path.unlink(missing_ok=True)


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata of an HDF5 dataset."""
    with h5py.File(path, "r") as handle:
        return json.loads(handle.attrs["metadata"])


def read_arrays(path: Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Load arrays of an HDF5 dataset whole into RAM (all when `names` is None)."""
    with h5py.File(path, "r") as handle:
        return {name: handle[name][()] for name in names or list(handle)}
