"""The two storage backends, HDF5 (h5py) and Zarr v3, behind one small interface.

A backend writes arrays row block by row block along axis 0 (the writer knows each array's final
shape up front) and reads any row range back. Everything above this module — checksums, metadata,
atomic finalisation, validation — is shared, so both backends hold identical content.

Per-chunk integrity: HDF5 chunks carry a Fletcher-32 checksum and Zarr chunks a CRC32C, so a
flipped bit is an error at read time, never silently different data.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from datagen.errors import UserError

#: Target uncompressed bytes per chunk: big enough for fast whole-array reads, small enough to
#: stream episode by episode.
CHUNK_BYTES = 1 << 20
GZIP_LEVEL = 4
ZSTD_LEVEL = 3


def chunk_rows(row_shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Rows per chunk along axis 0 for rows of `row_shape` and `dtype`."""
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return max(1, CHUNK_BYTES // row_bytes)


class BackendWriter(Protocol):
    def create(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None: ...
    def write(self, name: str, start: int, values: np.ndarray) -> None: ...
    def set_metadata(self, metadata: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class BackendReader(Protocol):
    def names(self) -> list[str]: ...
    def shape(self, name: str) -> tuple[int, ...]: ...
    def dtype(self, name: str) -> np.dtype: ...
    def read(self, name: str, start: int | None = None, stop: int | None = None) -> np.ndarray: ...
    def metadata(self) -> dict[str, Any] | None: ...
    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------- HDF5


class HDF5Writer:
    """Write a dataset's arrays into a new HDF5 file at `path`."""

    def __init__(self, path: Path) -> None:
        import h5py

        self.file = h5py.File(path, "w")

    def create(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        rows = min(max(1, shape[0]), chunk_rows(shape[1:], dtype))
        self.file.create_dataset(
            name,
            shape=shape,
            dtype=dtype,
            chunks=(rows, *shape[1:]),
            compression="gzip",
            compression_opts=GZIP_LEVEL,
            # No byte shuffle: in trials on pursuit data it made files larger and reads slower.
            fletcher32=True,
        )

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        self.file[name][start : start + len(values)] = values

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self.file.attrs["metadata"] = json.dumps(metadata)

    def close(self) -> None:
        self.file.close()


class HDF5Reader:
    """Read an HDF5 dataset.

    Raises:
        UserError: when the file is not readable HDF5 (truncated, corrupted, foreign).
    """

    def __init__(self, path: Path) -> None:
        import h5py

        self.path = path
        try:
            self.file = h5py.File(path, "r")
        except OSError as err:
            raise UserError(f"{path}: not a readable HDF5 file (truncated or corrupted?)") from err

    def names(self) -> list[str]:
        return list(self.file)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.file[name].shape)

    def dtype(self, name: str) -> np.dtype:
        return self.file[name].dtype

    def read(self, name: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        try:
            return self.file[name][start:stop]
        except OSError as err:
            raise UserError(f"{self.path}: array {name!r} is corrupted ({err})") from err

    def metadata(self) -> dict[str, Any] | None:
        raw = self.file.attrs.get("metadata")
        return None if raw is None else json.loads(raw)

    def close(self) -> None:
        self.file.close()


# ---------------------------------------------------------------------------------------- Zarr


class ZarrWriter:
    """Write a dataset's arrays into a new Zarr v3 directory store at `path`."""

    def __init__(self, path: Path) -> None:
        import zarr

        self.group = zarr.open_group(str(path), mode="w", zarr_format=3)
        # Handles from create_array: write_empty_chunks is a runtime setting, not stored.
        self.arrays: dict[str, Any] = {}

    def create(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        from zarr.codecs import Crc32cCodec, ZstdCodec

        rows = min(max(1, shape[0]), chunk_rows(shape[1:], dtype))
        self.arrays[name] = self.group.create_array(
            name,
            shape=shape,
            dtype=dtype,
            chunks=(rows, *shape[1:]),
            compressors=[ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()],
            fill_value=0,
            # Every chunk gets a file, even an all-zero one, so that a missing file means a
            # damaged store (zarr itself would read it silently as zeros).
            config={"write_empty_chunks": True},
        )

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        self.arrays[name][start : start + len(values)] = values

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self.group.attrs["metadata"] = metadata

    def close(self) -> None:
        pass


class ZarrReader:
    """Read a Zarr v3 dataset.

    Raises:
        UserError: when the directory is not a readable Zarr group.
    """

    def __init__(self, path: Path) -> None:
        import zarr

        self.path = path
        try:
            self.group = zarr.open_group(str(path), mode="r")
        except Exception as err:  # zarr raises several types for a broken store
            raise UserError(f"{path}: not a readable Zarr store ({err})") from err

    def names(self) -> list[str]:
        return sorted(self.group.array_keys())

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.group[name].shape)

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self.group[name].dtype)

    def _check_chunks(self, name: str, start: int | None, stop: int | None) -> None:
        array = self.group[name]
        rows_per_chunk = array.chunks[0]
        first, last = slice(start, stop).indices(array.shape[0])[:2]
        if last <= first:
            return
        # Chunks span whole rows, so every chunk key is c/<i>/0/.../0.
        tail = ["0"] * (array.ndim - 1)
        for index in range(first // rows_per_chunk, (last - 1) // rows_per_chunk + 1):
            if not self.path.joinpath(name, "c", str(index), *tail).is_file():
                raise UserError(
                    f"{self.path}: array {name!r} is missing chunk {index} (damaged store)"
                )

    def read(self, name: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        self._check_chunks(name, start, stop)
        try:
            return np.asarray(self.group[name][start:stop])
        except Exception as err:
            raise UserError(f"{self.path}: array {name!r} is corrupted ({err})") from err

    def metadata(self) -> dict[str, Any] | None:
        return self.group.attrs.asdict().get("metadata")

    def close(self) -> None:
        pass


BACKENDS = {"hdf5": (HDF5Writer, HDF5Reader), "zarr": (ZarrWriter, ZarrReader)}
SUFFIXES = {".h5": "hdf5", ".hdf5": "hdf5", ".zarr": "zarr"}


def format_of(path: Path) -> str:
    """The backend of a dataset path, from its suffix.

    Raises:
        UserError: for a suffix that is neither HDF5 nor Zarr.
    """
    fmt = SUFFIXES.get(Path(path).suffix)
    if fmt is None:
        raise UserError(f"{path}: not a dataset path; expected a .h5 file or a .zarr directory")
    return fmt


def open_reader(path: Path) -> BackendReader:
    """A reader for the dataset at `path`, chosen by suffix."""
    return BACKENDS[format_of(path)][1](Path(path))


def open_writer(path: Path, fmt: str) -> BackendWriter:
    """A writer of format `fmt` creating `path` (which must not exist)."""
    if fmt not in BACKENDS:
        raise UserError(f"unknown format {fmt!r}; valid formats: {', '.join(BACKENDS)}")
    return BACKENDS[fmt][0](Path(path))


def replace_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Rewrite a dataset's metadata atomically, leaving its arrays byte for byte as they are.

    HDF5: the file is copied beside itself, the copy's attribute rewritten, then renamed over the
    original. Zarr: the root group's `zarr.json` (which holds the attributes) is written beside
    itself and renamed over the original. A crash at any moment leaves the old or the new
    metadata, never a mix.
    """
    path = Path(path)
    fmt = format_of(path)
    if fmt == "hdf5":
        import h5py

        tmp = path.with_name(path.name + ".writing")
        shutil.copyfile(path, tmp)
        try:
            with h5py.File(tmp, "r+") as handle:
                handle.attrs["metadata"] = json.dumps(metadata)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return
    group_file = path / "zarr.json"
    document = json.loads(group_file.read_text())
    document.setdefault("attributes", {})["metadata"] = metadata
    tmp = path / "zarr.json.writing"
    tmp.write_text(json.dumps(document, indent=2))
    os.replace(tmp, group_file)


def remove_path(path: Path) -> None:
    """Delete a dataset file or directory store, if present."""
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
