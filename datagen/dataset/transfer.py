"""Fetching a registry entry's file from its mirrors.

Transfers go through pooch (`pooch.retrieve` with an `HTTPDownloader` per attempt): it streams into
a temporary file beside the target and moves it into place only once the sha256 matches. Around it,
this module tries each mirror in turn and retries transient failures (connection errors, a body cut
short, HTTP 5xx) a few times before moving to the next mirror.

Published files are always HDF5 (one file; a Zarr store is a directory): no archive is ever
unpacked, and nothing downloaded is unpickled: a dataset is read through h5py and JSON only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pooch
import requests
from rich.console import Console
from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

from datagen.dataset.reader import Dataset
from datagen.dataset.registry import DEFAULT_TIMEOUT_S, RegistryEntry, request_failure
from datagen.errors import UserError

#: Extra attempts per mirror after a transient failure.
DEFAULT_RETRIES = 2
#: Seconds before the first retry; the k-th retry waits k times this.
DEFAULT_RETRY_WAIT_S = 1.0
#: Bytes read per iteration of a transfer.
_TRANSFER_CHUNK = 1 << 18


@dataclass(frozen=True)
class Transfer:
    """The outcome of `fetch_file`.

    Attributes:
        url: the mirror that served the file, or None when none did.
        failures: `"<url>: <why>"` for each mirror that failed, in the order tried.
    """

    url: str | None
    failures: tuple[str, ...] = ()


def fetch_file(
    entry: RegistryEntry,
    target: Path,
    *,
    retries: int = DEFAULT_RETRIES,
    retry_wait: float = DEFAULT_RETRY_WAIT_S,
    timeout: float = DEFAULT_TIMEOUT_S,
    show_progress: bool = False,
) -> Transfer:
    """Fetch `entry`'s file into `target` from the first of its mirrors that serves it.

    A transient failure is retried `retries` times, waiting `retry_wait`, 2 * `retry_wait`, ...
    seconds. A file whose sha256 differs from the entry's is deleted and never reaches `target`.

    Args:
        entry: the registry entry.
        target: where the file goes.
        retries: extra attempts per mirror after a transient failure.
        retry_wait: seconds before the first retry.
        timeout: seconds without data before an attempt fails.
        show_progress: draw a progress bar on stderr (on a terminal only).

    Returns:
        The mirror that served the file, or why each mirror failed (nothing at `target` then).

    Raises:
        UserError: the file has the entry's sha256 but holds another dataset than the entry
            lists (an inconsistent registry); the file is removed.
    """
    failures = []
    with _progress(show_progress and entry.hosted) as progress:
        for url in entry.urls:
            failure = _fetch_from(url, entry, target, retries, retry_wait, timeout, progress)
            if failure is None:
                _check_content(target, entry)
                return Transfer(url)
            failures.append(f"{url}: {failure}")
    return Transfer(None, tuple(failures))


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
            reason = request_failure(err)
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
