"""Published datasets: the registry, download by id, publishing, and checks against the registry.

A registry (`data/registry.json`, or any file or URL given with `--registry`) lists published
datasets by id. Each entry names the file as served, one URL per mirror, and two checksums with two
different jobs:

- `sha256` pins the published *file*, byte for byte. A download is accepted only when its sha256
  matches, so a tampered or truncated transfer never reaches the cache.
- `content_checksum` pins the *arrays* (the dataset's own checksum, see `format.content_checksum`).
  It ignores metadata and storage layout, so an HDF5 copy, a Zarr copy and a dataset regenerated
  from the entry's recipe all have it, while their file bytes differ (the metadata records when and
  from which commit a dataset was written).

Published files are always HDF5 (one file; a Zarr store is a directory): `publish` converts a
Zarr dataset to HDF5, checking the content checksum is unchanged. No archive is ever unpacked, and
nothing downloaded is unpickled: a dataset is read through h5py and JSON only.

Transfers go through pooch (`pooch.retrieve` with an `HTTPDownloader` per attempt): it streams into
a temporary file beside the target and moves it into place only once the sha256 matches. Around it,
this module tries each mirror in turn and retries transient failures (connection errors, a body cut
short, HTTP 5xx) a few times before moving to the next mirror.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pooch
import requests
from rich.console import Console
from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

from datagen.dataset.backends import format_of
from datagen.dataset.ids import FORMAT_SUFFIXES, DatasetId
from datagen.dataset.ops import convert, verify
from datagen.dataset.reader import Dataset, resolve
from datagen.errors import UserError
from datagen.paths import project_data_dir, read_json, write_json

REGISTRY_VERSION = 1
#: The one format datasets are published in.
PUBLISHED_FORMAT = "hdf5"
#: Extra attempts per mirror after a transient failure.
DEFAULT_RETRIES = 2
#: Seconds before the first retry; the k-th retry waits k times this.
DEFAULT_RETRY_WAIT_S = 1.0
#: Seconds without a byte from the server before a transfer counts as failed.
DEFAULT_TIMEOUT_S = 30.0
#: Bytes read per iteration of a transfer.
_TRANSFER_CHUNK = 1 << 18
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_URL_SCHEMES = ("http", "https")
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
        dataset_id: its id, e.g. `prison-n2-expert-v1`.
        urls: the file at each mirror, tried in order.
        file: the file name as served.
        sha256: sha256 of the file as served.
        size: bytes of the file as served.
        format: storage format of the file ("hdf5").
        content_checksum: the dataset's own content checksum (from its metadata).
        stats: `episodes`, `steps`, `return_mean`, `return_std`, `normalized_score`, `coverage`.
        recipe: how to regenerate it: `command` (a `marl-datagen` command line), the `quality`
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
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise bad("urls must be a non-empty list of URLs")
        for url in urls:
            if urlparse(url).scheme not in _URL_SCHEMES or not urlparse(url).netloc:
                raise bad(f"url {url!r} is not an {' or '.join(_URL_SCHEMES)} URL")
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
    if urlparse(text).scheme in _URL_SCHEMES:
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(scratch) / "registry.json"
            try:
                pooch.HTTPDownloader(timeout=timeout)(text, str(local), None)
            except requests.RequestException as err:
                raise UserError(f"cannot fetch the registry {text}: {_reason(err)}") from err
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


# --------------------------------------------------------------------------------- local state


@dataclass(frozen=True)
class LocalCopy:
    """What the data home holds for a registry entry.

    Attributes:
        status: "published file" (the very file the registry pins, sha256 equal), "same content"
            (a regenerated or converted copy: content checksum equal, bytes differ), "different
            content" (a dataset of this id that is not the published one), "unreadable", or
            "not local".
        path: the local dataset, or None when not local.
    """

    status: str
    path: Path | None = None

    @property
    def usable(self) -> bool:
        """It holds the published content: no transfer is needed."""
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


# ------------------------------------------------------------------------------------ download


@dataclass(frozen=True)
class DownloadResult:
    """The outcome of `download`.

    Attributes:
        path: the local dataset.
        transferred: whether bytes were fetched (False: the data home already held it).
        url: the mirror it came from, when transferred.
        status: the `LocalCopy` status found before any transfer.
    """

    path: Path
    transferred: bool
    url: str | None = None
    status: str = "not local"


class _RichBar:
    """The progress-bar object pooch's `HTTPDownloader` drives (it sets `total`, calls `update`
    per chunk, then `reset`, `update(total)` and `close`), shown as a rich task."""

    def __init__(self, progress: Progress, description: str) -> None:
        self.progress = progress
        self.task = progress.add_task(description, total=None)
        self._total: int | None = None

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self._total = value or None
        self.progress.update(self.task, total=self._total)

    def update(self, n_bytes: int) -> None:
        self.progress.advance(self.task, n_bytes)

    def reset(self) -> None:
        self.progress.reset(self.task, total=self._total)

    def close(self) -> None:
        self.progress.remove_task(self.task)


class _CountingDownloader:
    """An `HTTPDownloader` that remembers how many bytes it wrote, so that a hash mismatch can be
    told apart: a short file (the transfer was cut: retry) from a full-size one (the mirror
    serves other bytes: next mirror)."""

    def __init__(self, timeout: float, progressbar: Any) -> None:
        self.http = pooch.HTTPDownloader(
            progressbar=progressbar, chunk_size=_TRANSFER_CHUNK, timeout=timeout
        )
        self.received = 0

    def __call__(self, url: str, output_file: str, pooch_instance: Any) -> None:
        try:
            self.http(url, output_file, pooch_instance)
        finally:
            self.received = os.path.getsize(output_file) if os.path.exists(output_file) else 0


def _reason(err: Exception) -> str:
    if isinstance(err, requests.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code}"
    if isinstance(err, requests.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "transfer cut short (connection closed mid-body)"
    if isinstance(err, requests.ConnectionError):
        return "connection failed"
    return type(err).__name__


def _transient(err: Exception) -> bool:
    """Worth another attempt at the same mirror: 5xx, 408, 429, a refused, dropped or cut
    connection, a timeout (not a malformed URL or a 404)."""
    if isinstance(err, requests.HTTPError):
        code = err.response.status_code if err.response is not None else 500
        return code >= 500 or code in (408, 429)
    return isinstance(
        err,
        (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError),
    )


@contextmanager
def _progress(show: bool) -> Iterator[Progress | None]:
    console = Console(stderr=True)
    if not show or not console.is_terminal:  # a bar in a log or a pipe is noise
        yield None
        return
    progress = Progress(
        *Progress.get_default_columns(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield progress


def download(
    dataset_id: str,
    registry: Registry | str | Path | None = None,
    *,
    force: bool = False,
    retries: int = DEFAULT_RETRIES,
    retry_wait: float = DEFAULT_RETRY_WAIT_S,
    timeout: float = DEFAULT_TIMEOUT_S,
    show_progress: bool = False,
) -> DownloadResult:
    """Fetch a published dataset into the data home, where `load_dataset(dataset_id)` finds it.

    Nothing is transferred when the data home already holds the published file (same sha256) or a
    copy with the same content checksum. Otherwise each mirror is tried in order; a transient
    failure is retried `retries` times, waiting `retry_wait`, 2 * `retry_wait`, ... seconds. A
    file whose sha256 differs from the registry's is deleted and never enters the cache.

    Args:
        dataset_id: the id, e.g. `prison-n2-expert-v1`.
        registry: a `Registry`, a registry file or URL (default: the shipped registry).
        force: replace a local dataset of this id whose content is not the published one.
        retries: extra attempts per mirror after a transient failure.
        retry_wait: seconds before the first retry.
        timeout: seconds without data before an attempt fails.
        show_progress: draw a progress bar on stderr.

    Returns:
        Where the dataset is, and whether it was transferred.

    Raises:
        UserError: an id the registry does not list (naming the closest ids); a different local
            dataset of this id without `force`; every mirror failing (naming each failure and the
            command that regenerates the dataset instead).
    """
    entry = load_registry(registry, timeout).get(dataset_id)
    found = local_copy(entry)
    if found.usable:
        return DownloadResult(found.path, transferred=False, status=found.status)
    if found.status in ("different content", "unreadable") and not force:
        raise UserError(
            f"{found.path} holds a dataset of id {dataset_id} whose content is not the published "
            f"one ({found.status}); pass --force to replace it with the download"
        )
    target = entry.local_path()
    failures = []
    with _progress(show_progress) as progress:
        for url in entry.urls:
            failure = _fetch_from(url, entry, target, retries, retry_wait, timeout, progress)
            if failure is None:
                _check_content(target, entry)
                return DownloadResult(target, transferred=True, url=url, status=found.status)
            failures.append(f"{url}: {failure}")
    command = entry.recipe.get("command")
    regenerate = (
        f"; regenerate it instead with `{command}` (content_checksum {entry.content_checksum})"
        if command
        else ""
    )
    raise UserError(
        f"could not download {dataset_id} from its {len(entry.urls)} mirror(s): "
        f"{'; '.join(failures)}{regenerate}"
    )


@contextmanager
def _pooch_quiet() -> Iterator[None]:
    """Keep pooch's per-attempt log lines off the terminal (our errors say what happened)."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _fetch_from(
    url: str,
    entry: RegistryEntry,
    target: Path,
    retries: int,
    retry_wait: float,
    timeout: float,
    progress: Progress | None,
) -> str | None:
    """Fetch `entry` from one mirror into `target`, retrying transient failures.

    Returns:
        None on success, else why the mirror failed.
    """
    reason = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(retry_wait * attempt)
        where = urlparse(url).netloc
        bar = _RichBar(progress, f"{entry.dataset_id} from {where}") if progress else False
        fetch = _CountingDownloader(timeout, bar)
        try:
            with _pooch_quiet():
                pooch.retrieve(
                    url,
                    known_hash=f"sha256:{entry.sha256}",
                    fname=target.name,
                    path=target.parent,
                    downloader=fetch,
                )
            return None
        except ValueError:  # pooch: the sha256 differs; it has deleted the file
            if fetch.received == entry.size:
                return "sha256 mismatch, the file served differs"  # asking again won't help
            reason = f"{fetch.received} of {entry.size} bytes"
        except requests.RequestException as err:
            reason = _reason(err)
            if not _transient(err):
                return reason
    return f"{reason} ({retries + 1} attempts)" if retries else reason


def _check_content(path: Path, entry: RegistryEntry) -> None:
    """The downloaded file is the dataset the registry describes (its metadata says so)."""
    try:
        with Dataset(path) as dataset:
            content = dataset.metadata.get("content_checksum")
            dataset_id = dataset.dataset_id
    except UserError:
        path.unlink(missing_ok=True)
        raise
    if content != entry.content_checksum or dataset_id != entry.dataset_id:
        path.unlink(missing_ok=True)
        raise UserError(
            f"the registry {entry.dataset_id} entry is inconsistent: its file holds "
            f"{dataset_id} with content_checksum {content}, the entry lists "
            f"{entry.content_checksum}; the file was removed"
        )


# ------------------------------------------------------------------------------------- recipes


def _option_text(value: Any) -> str:
    """A `--option` value that `parse_options` reads back as `value`."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value)


def collect_command(metadata: dict[str, Any]) -> str:
    """The `marl-datagen collect` command line that regenerates a collected dataset's content.

    Raises:
        UserError: for a behaviour the command line cannot express (a collapsed action other
            than 0).
    """
    from datagen.envs import get_spec
    from datagen.policies.registry import DEFAULT_DEGENERATE_MODE

    quality = metadata["quality"]
    env_name = metadata["env"]["name"]
    args = ["marl-datagen", "collect", "--env", env_name]
    args += ["--agents", str(metadata["n_agents"]), "--quality", quality["name"]]
    if quality["name"] == "degenerate":
        if quality["mode"] != DEFAULT_DEGENERATE_MODE:
            args += ["--degenerate-mode", quality["mode"]]
        if quality["mode"] == "saboteur":
            args += ["--saboteur-fraction", str(quality["fraction"])]
        if quality["mode"] == "collapsed" and quality.get("action", 0) != 0:
            raise UserError(
                f"{metadata['dataset_id']}: a collapsed action other than 0 cannot be "
                "expressed as a marl-datagen collect command"
            )
    args += ["--episodes", str(metadata["totals"]["episodes"]), "--seed", str(metadata["seed"])]
    defaults = json.loads(json.dumps(get_spec(env_name).options))
    for key, value in sorted(metadata["env"]["kwargs"].items()):
        if defaults.get(key) != value:
            args += ["--option", f"{key}={_option_text(value)}"]
    dataset_id = DatasetId.parse(metadata["dataset_id"])
    if dataset_id.version != 1:  # collect names its datasets v1: keep the version in the file
        args += ["--out", f"{dataset_id}.h5"]
    return shlex.join(args)


def combine_command(metadata: dict[str, Any]) -> str:
    """The `marl-datagen combine` command line that regenerates a combined dataset from its
    sources (which must be regenerated, or downloaded, first)."""
    quality = metadata["quality"]
    args = ["marl-datagen", "combine", *quality["sources"], "--into", metadata["dataset_id"]]
    if quality.get("proportions") is not None:
        args += ["--proportions", ",".join(str(p) for p in quality["proportions"])]
        args += ["--episodes", str(metadata["totals"]["episodes"])]
        args += ["--seed", str(quality["seed"])]
    return shlex.join(args)


def recipe_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """How to regenerate a dataset, from what its metadata recorded."""
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
        "return_mean": metadata["stats"]["mean"],
        "return_std": metadata["stats"]["std"],
        "normalized_score": metadata.get("normalized_score"),
        "coverage": metadata["coverage"],
    }


# ------------------------------------------------------------------------------------- publish


def _check_base_url(base_url: str) -> str:
    parsed = urlparse(base_url)
    if parsed.scheme not in _URL_SCHEMES or not parsed.netloc:
        raise UserError(
            f"--base-url must be an {' or '.join(_URL_SCHEMES)} URL of the folder the files "
            f"will be served from, got {base_url!r}"
        )
    return base_url.rstrip("/")


def _content_of(path: Path) -> str | None:
    try:
        with Dataset(path) as dataset:
            return dataset.metadata.get("content_checksum")
    except UserError:
        return None


def _upload_ready_file(source: Path, target: Path, content: str) -> None:
    """Put an HDF5 copy of `source` at `target`, unless one with the same content is there
    already (so publishing again, e.g. for a second mirror, keeps the bytes and the sha256)."""
    if target.exists() and _content_of(target) == content:
        return
    if format_of(source) == PUBLISHED_FORMAT:
        tmp = target.with_name(target.name + ".writing")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    else:
        convert(source, PUBLISHED_FORMAT, out=target, force=True)


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


def publish(
    datasets: list[str | Path],
    base_url: str,
    out: Path,
    registry_out: Path | None = None,
) -> list[RegistryEntry]:
    """Write upload-ready files of local datasets and their registry entries.

    Each dataset is verified first (every checksum and the stats), then copied, as HDF5, to
    `out/<dataset id>.h5`; its entry, with the URL `<base_url>/<dataset id>.h5`, is merged into
    `registry_out` (default `out/registry.json`, see `merge_entries`).

    Args:
        datasets: ids in the data home, or paths.
        base_url: the URL of the folder the files will be served from.
        out: folder for the files and, by default, the registry.
        registry_out: the registry file to merge the entries into.

    Returns:
        The new entries.

    Raises:
        UserError: a dataset that fails verification, two datasets of one id, a bad base URL.
    """
    base = _check_base_url(base_url)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[RegistryEntry] = []
    for item in datasets:
        source = resolve(item)
        report = verify(source)
        if not report.ok:
            raise UserError(f"{source} fails verification ({report.problems[0]}); not published")
        with Dataset(source) as dataset:
            metadata = dataset.metadata
        dataset_id = metadata["dataset_id"]
        if any(e.dataset_id == dataset_id for e in entries):
            raise UserError(f"two datasets with id {dataset_id}; publish one of them")
        name = f"{dataset_id}{FORMAT_SUFFIXES[PUBLISHED_FORMAT]}"
        target = out / name
        _upload_ready_file(source, target, metadata["content_checksum"])
        entries.append(
            RegistryEntry(
                dataset_id=dataset_id,
                urls=(f"{base}/{name}",),
                file=name,
                sha256=file_sha256(target),
                size=target.stat().st_size,
                format=PUBLISHED_FORMAT,
                content_checksum=metadata["content_checksum"],
                stats=stats_of(metadata),
                recipe=recipe_of(metadata),
            )
        )
    registry_path = Path(registry_out) if registry_out is not None else out / "registry.json"
    write_json(registry_path, merge_entries(read_json(registry_path), entries))
    return entries


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
    """A row per registry entry: size, format, stats, mirrors and what the data home holds."""
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
                "local": found.status,
                "local_path": None if found.path is None else str(found.path),
                "content_checksum": entry.content_checksum,
                "sha256": entry.sha256,
                "recipe": entry.recipe.get("command"),
            }
        )
    return rows
