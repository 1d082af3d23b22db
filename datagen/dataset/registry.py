"""The registry of published datasets: its entries, how it is read and merged, and what the data
home holds for each entry.

A registry (`data/registry.json`, or any file or URL given with `--registry`) lists published
datasets by id. Each entry names the file as published, one URL per mirror, two checksums with two
different jobs, and the recipe that rebuilds the dataset:

- `sha256` pins the published *file*, byte for byte. A download is accepted only when its sha256
  matches, so a tampered or truncated transfer never reaches the cache.
- `content_checksum` pins the *arrays* (the dataset's own checksum, see `format.content_checksum`).
  It ignores metadata and storage layout, so an HDF5 copy, a Zarr copy and a dataset rebuilt from
  the entry's recipe all have it, while their file bytes differ (the metadata records when and
  from which commit a dataset was written).

An entry with at least one URL is *hosted*; one with `urls: []` is *rebuild-only*: its dataset is
made again from its recipe and accepted by its content checksum. Transfers live in
`datagen.dataset.transfer`, rebuilding in `datagen.recipes`, the download-or-rebuild entry point in
`datagen.fetch` and publishing in `datagen.publishing`.
"""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pooch
import requests

from datagen.dataset.ids import FORMAT_SUFFIXES, DatasetId
from datagen.dataset.reader import Dataset
from datagen.errors import UserError
from datagen.paths import project_data_dir

REGISTRY_VERSION = 1
#: The one format datasets are published in.
PUBLISHED_FORMAT = "hdf5"
#: Seconds without a byte from the server before a transfer counts as failed.
DEFAULT_TIMEOUT_S = 30.0
#: The URL schemes a mirror or a registry may have.
URL_SCHEMES = ("http", "https")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_FIELDS = ("urls", "file", "sha256", "size", "format", "content_checksum", "stats", "recipe")


def default_registry_path() -> Path:
    """The registry shipped with the project: `data/registry.json`."""
    return project_data_dir() / "registry.json"


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, as hex."""
    return pooch.file_hash(str(path), alg="sha256")


# ------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class RegistryEntry:
    """One published dataset.

    Attributes:
        dataset_id: its id, e.g. `prison-n2-expert-v2`.
        urls: the file at each mirror, tried in order; empty for a rebuild-only entry.
        file: the file name as published.
        sha256: sha256 of the file as published.
        size: bytes of the file as published.
        format: storage format of the file ("hdf5").
        content_checksum: the dataset's own content checksum (from its metadata).
        stats: `episodes`, `steps`, `team_return_mean`, `team_return_std`, `normalized_score`,
            `coverage`.
        recipe: how to rebuild it: `command` (a `marl-datagen` command line), the `quality`
            block and the `packages` recorded in the dataset's metadata.
    """

    dataset_id: str
    urls: tuple[str, ...]
    file: str
    sha256: str
    size: int
    format: str
    content_checksum: str
    stats: dict[str, Any]
    recipe: dict[str, Any]

    @classmethod
    def from_json(cls, dataset_id: str, raw: Any, source: str) -> RegistryEntry:
        """Parse and validate one entry of a registry file.

        Raises:
            UserError: naming the registry, the entry and the first problem.
        """

        def bad(problem: str) -> UserError:
            return UserError(f"registry {source}: entry {dataset_id!r}: {problem}")

        try:
            DatasetId.parse(dataset_id)
        except UserError as err:
            raise bad(str(err)) from err
        if not isinstance(raw, dict):
            raise bad("not a JSON object")
        missing = [name for name in _ENTRY_FIELDS if name not in raw]
        if missing:
            raise bad(f"missing field {missing[0]!r}; an entry has {', '.join(_ENTRY_FIELDS)}")
        urls = raw["urls"]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise bad("urls must be a list of URLs (empty: rebuild-only)")
        for url in urls:
            if urlparse(url).scheme not in URL_SCHEMES or not urlparse(url).netloc:
                raise bad(f"url {url!r} is not an {' or '.join(URL_SCHEMES)} URL")
        for name in ("sha256", "content_checksum"):
            if not isinstance(raw[name], str) or not _SHA256.match(raw[name]):
                raise bad(f"{name} must be 64 lowercase hex digits")
        if raw["format"] != PUBLISHED_FORMAT:
            raise bad(f"format {raw['format']!r} cannot be downloaded; published datasets are hdf5")
        if not isinstance(raw["file"], str) or Path(raw["file"]).name != raw["file"]:
            raise bad("file must be a plain file name")
        if not isinstance(raw["size"], int) or raw["size"] < 1:
            raise bad("size must be a positive number of bytes")
        if not isinstance(raw["stats"], dict) or not isinstance(raw["recipe"], dict):
            raise bad("stats and recipe must be JSON objects")
        return cls(
            dataset_id=dataset_id,
            urls=tuple(urls),
            file=raw["file"],
            sha256=raw["sha256"],
            size=raw["size"],
            format=raw["format"],
            content_checksum=raw["content_checksum"],
            stats=raw["stats"],
            recipe=raw["recipe"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "urls": list(self.urls),
            "file": self.file,
            "sha256": self.sha256,
            "size": self.size,
            "format": self.format,
            "content_checksum": self.content_checksum,
            "stats": self.stats,
            "recipe": self.recipe,
        }

    @property
    def hosted(self) -> bool:
        """At least one mirror serves the file (else the entry is rebuild-only)."""
        return bool(self.urls)

    def local_path(self) -> Path:
        """Where a download of this entry goes: the data-home path of its id."""
        return DatasetId.parse(self.dataset_id).path(self.format)


@dataclass(frozen=True)
class Registry:
    """The published datasets of one registry file, by id."""

    source: str
    entries: dict[str, RegistryEntry]

    def __contains__(self, dataset_id: str) -> bool:
        return dataset_id in self.entries

    def get(self, dataset_id: str) -> RegistryEntry:
        """The entry of `dataset_id`.

        Raises:
            UserError: for an id the registry does not list, naming the closest ids.
        """
        if dataset_id in self.entries:
            return self.entries[dataset_id]
        close = difflib.get_close_matches(dataset_id, list(self.entries), n=3, cutoff=0.6)
        hint = (
            f"closest ids: {', '.join(close)}"
            if close
            else "see `marl-datagen list --remote` for the published ids"
        )
        raise UserError(f"{dataset_id!r} is not in the registry {self.source}; {hint}")


def registry_document(entries: dict[str, RegistryEntry]) -> dict[str, Any]:
    """A registry file's JSON content."""
    return {
        "registry_version": REGISTRY_VERSION,
        "datasets": {key: entries[key].to_json() for key in sorted(entries)},
    }


def parse_registry(document: Any, source: str) -> Registry:
    """Validate a registry file's JSON content.

    Raises:
        UserError: naming the registry and the first problem.
    """
    if not isinstance(document, dict) or not isinstance(document.get("datasets"), dict):
        raise UserError(f"registry {source}: expected a JSON object with a 'datasets' object")
    if document.get("registry_version") != REGISTRY_VERSION:
        raise UserError(
            f"registry {source}: registry_version {document.get('registry_version')!r} is not "
            f"supported (this version reads {REGISTRY_VERSION})"
        )
    entries = {
        key: RegistryEntry.from_json(key, raw, source) for key, raw in document["datasets"].items()
    }
    return Registry(source, entries)


def load_registry(
    source: Registry | str | Path | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> Registry:
    """Read a registry from a file or an http(s) URL (default: the shipped `data/registry.json`).

    Raises:
        UserError: a missing file, an unreachable URL, JSON that is not a valid registry.
    """
    if isinstance(source, Registry):
        return source
    text = str(default_registry_path() if source is None else source)
    if urlparse(text).scheme in URL_SCHEMES:
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(scratch) / "registry.json"
            try:
                pooch.HTTPDownloader(timeout=timeout)(text, str(local), None)
            except requests.RequestException as err:
                raise UserError(
                    f"cannot fetch the registry {text}: {request_failure(err)}"
                ) from err
            raw = local.read_text()
    else:
        path = Path(text)
        if not path.is_file():
            raise UserError(f"no registry file at {path}")
        raw = path.read_text()
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as err:
        raise UserError(f"registry {text} is not valid JSON ({err})") from err
    return parse_registry(document, text)


def request_failure(err: Exception) -> str:
    """Why an HTTP request failed, in a few words."""
    if isinstance(err, requests.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code}"
    if isinstance(err, requests.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "transfer cut short (connection closed mid-body)"
    if isinstance(err, requests.ConnectionError):
        return "connection failed"
    return type(err).__name__


# --------------------------------------------------------------------------------- local state


@dataclass(frozen=True)
class LocalCopy:
    """What the data home holds for a registry entry.

    Attributes:
        status: "published file" (the very file the registry pins, sha256 equal), "same content"
            (a rebuilt or converted copy: content checksum equal, bytes differ), "different
            content" (a dataset of this id that is not the published one), "unreadable", or
            "not local".
        path: the local dataset, or None when not local.
    """

    status: str
    path: Path | None = None

    @property
    def usable(self) -> bool:
        """It holds the published content: nothing needs fetching or rebuilding."""
        return self.status in ("published file", "same content")


def local_copy(entry: RegistryEntry) -> LocalCopy:
    """Compare the data home's dataset of `entry.dataset_id` (HDF5, else Zarr) with the entry."""
    dataset_id = DatasetId.parse(entry.dataset_id)
    for fmt in FORMAT_SUFFIXES:
        path = dataset_id.path(fmt)
        if not path.exists():
            continue
        try:
            with Dataset(path) as dataset:
                content = dataset.metadata.get("content_checksum")
        except UserError:
            return LocalCopy("unreadable", path)
        if content != entry.content_checksum:
            return LocalCopy("different content", path)
        if fmt == entry.format and _is_published_file(path, entry):
            return LocalCopy("published file", path)
        return LocalCopy("same content", path)
    return LocalCopy("not local")


def _is_published_file(path: Path, entry: RegistryEntry) -> bool:
    if not path.is_file() or path.stat().st_size != entry.size:
        return False
    return file_sha256(path) == entry.sha256


def merge_entries(existing: dict[str, Any], entries: list[RegistryEntry]) -> dict[str, Any]:
    """A registry document with `entries` merged into `existing` (a registry document or {}).

    An entry whose file is unchanged (same sha256) gains the new URLs as further mirrors; a
    changed file replaces the entry, since its old URLs serve other bytes.
    """
    source = "(being merged)"
    current = parse_registry(existing, source).entries if existing else {}
    merged = dict(current)
    for entry in entries:
        old = current.get(entry.dataset_id)
        if old is not None and old.sha256 == entry.sha256:
            urls = tuple(dict.fromkeys((*old.urls, *entry.urls)))
            entry = replace(entry, urls=urls)
        merged[entry.dataset_id] = entry
    return registry_document(merged)


# -------------------------------------------------------------------------- checks and listing


@dataclass(frozen=True)
class PublishedCheck:
    """A local dataset compared with the registry's entry of its id.

    Attributes:
        dataset_id: the id in the dataset's metadata.
        listed: the registry lists that id.
        same_file: the file's sha256 equals the registry's (only an HDF5 file can).
        same_content: its content checksum equals the registry's.
        sha256: the file's sha256 (None for a Zarr store).
        entry: the registry entry, when listed.
    """

    dataset_id: str
    listed: bool
    same_file: bool = False
    same_content: bool = False
    sha256: str | None = None
    entry: RegistryEntry | None = field(default=None, repr=False)


def check_published(path: Path, registry: Registry | str | Path | None = None) -> PublishedCheck:
    """Compare a local dataset with the registry: its file's sha256 and its content checksum.

    The stored content checksum is only meaningful once `ops.verify` has recomputed it from
    the arrays; run that first.
    """
    with Dataset(path) as dataset:
        dataset_id = dataset.dataset_id
        content = dataset.metadata.get("content_checksum")
    registry = load_registry(registry)
    if dataset_id not in registry:
        return PublishedCheck(dataset_id, listed=False)
    entry = registry.get(dataset_id)
    sha256 = file_sha256(path) if Path(path).is_file() else None
    return PublishedCheck(
        dataset_id,
        listed=True,
        same_file=sha256 == entry.sha256,
        same_content=content == entry.content_checksum,
        sha256=sha256,
        entry=entry,
    )


def remote_rows(registry: Registry | str | Path | None = None) -> list[dict[str, Any]]:
    """A row per registry entry: size, format, stats, mirrors, whether it is hosted or
    rebuild-only, and what the data home holds."""
    registry = load_registry(registry)
    rows = []
    for dataset_id, entry in sorted(registry.entries.items()):
        found = local_copy(entry)
        rows.append(
            {
                "dataset_id": dataset_id,
                "format": entry.format,
                "size_bytes": entry.size,
                **entry.stats,
                "mirrors": len(entry.urls),
                "hosting": "hosted" if entry.hosted else "rebuild-only",
                "local": found.status,
                "local_path": None if found.path is None else str(found.path),
                "content_checksum": entry.content_checksum,
                "sha256": entry.sha256,
                "recipe": entry.recipe.get("command"),
            }
        )
    return rows
