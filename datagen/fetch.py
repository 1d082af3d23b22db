"""Datasets by id from wherever they are: the data home, a mirror, or a rebuild from the recipe.

`fetch(ID)` (the `marl-datagen download` command) looks the id up in the registry. When the data
home already holds the registry's content nothing happens; otherwise the entry's mirrors are tried
in turn (`datagen.dataset.transfer`), and when none serves the file, or the entry is rebuild-only
(no mirror), the dataset is rebuilt from the entry's recipe (`datagen.recipes.rebuild`) and kept
only if its content checksum is the registry's. `load_dataset(ID, download=True)` does the same
before opening the dataset.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datagen.dataset.backends import SUFFIXES
from datagen.dataset.reader import Dataset, resolve
from datagen.dataset.registry import DEFAULT_TIMEOUT_S, Registry, load_registry, local_copy
from datagen.dataset.transfer import DEFAULT_RETRIES, DEFAULT_RETRY_WAIT_S, fetch_file
from datagen.errors import UserError
from datagen.recipes import rebuild as rebuild_entry


@dataclass(frozen=True)
class FetchResult:
    """The outcome of `fetch`.

    Attributes:
        path: the local dataset.
        transferred: whether a mirror served the file.
        url: the mirror it came from, when transferred.
        status: the `LocalCopy` status found before anything was fetched.
        rebuilt: whether it was rebuilt from its recipe (no mirror served it).
    """

    path: Path
    transferred: bool
    url: str | None = None
    status: str = "not local"
    rebuilt: bool = False


def fetch(
    dataset_id: str,
    registry: Registry | str | Path | None = None,
    *,
    force: bool = False,
    rebuild: bool = True,
    retries: int = DEFAULT_RETRIES,
    retry_wait: float = DEFAULT_RETRY_WAIT_S,
    timeout: float = DEFAULT_TIMEOUT_S,
    show_progress: bool = False,
    on_notice: Callable[[str], None] | None = None,
) -> FetchResult:
    """Put a published dataset into the data home, where `open_dataset(dataset_id)` finds it:
    download it, or rebuild it from its recipe when no mirror serves it.

    Nothing happens when the data home already holds the published file (same sha256) or a copy
    with the same content checksum. Otherwise each mirror is tried in order (see
    `transfer.fetch_file`); a file whose sha256 differs from the registry's never enters the
    cache. When every mirror fails, or the entry has none (rebuild-only), the dataset is
    collected again from the entry's recipe and kept only if its content checksum is the
    registry's (see `recipes.rebuild`).

    Args:
        dataset_id: the id, e.g. `prison-n2-expert-v2`.
        registry: a `Registry`, a registry file or URL (default: the shipped registry).
        force: replace a local dataset of this id whose content is not the published one.
        rebuild: rebuild from the recipe when no mirror serves the file (False: refuse).
        retries: extra attempts per mirror after a transient failure.
        retry_wait: seconds before the first retry.
        timeout: seconds without data before an attempt fails.
        show_progress: draw progress bars on stderr (on a terminal only).
        on_notice: called with a one-line notice before a rebuild starts.

    Returns:
        Where the dataset is, and how it got there.

    Raises:
        UserError: an id the registry does not list (naming the closest ids); a different local
            dataset of this id without `force`; no mirror serving the file with `rebuild` off
            (naming each failure and the command that rebuilds it); a rebuild that fails or
            whose content checksum differs from the registry's (nothing is cached then).
    """
    entry = load_registry(registry, timeout).get(dataset_id)
    found = local_copy(entry)
    if found.usable:
        return FetchResult(found.path, transferred=False, status=found.status)
    if found.status in ("different content", "unreadable") and not force:
        raise UserError(
            f"{found.path} holds a dataset of id {dataset_id} whose content is not the published "
            f"one ({found.status}); pass --force to replace it with the download"
        )
    target = entry.local_path()
    transfer = fetch_file(
        entry,
        target,
        retries=retries,
        retry_wait=retry_wait,
        timeout=timeout,
        show_progress=show_progress,
    )
    if transfer.url is not None:
        return FetchResult(target, transferred=True, url=transfer.url, status=found.status)
    command = entry.recipe.get("command")
    if not rebuild:
        regenerate = (
            f"; regenerate it instead with `{command}` (content_checksum {entry.content_checksum})"
            if command
            else ""
        )
        if entry.hosted:
            why = f"from its {len(entry.urls)} mirror(s): {'; '.join(transfer.failures)}"
        else:
            why = "it is rebuild-only (the registry lists no mirror) and rebuilding is off"
        raise UserError(f"could not download {dataset_id} {why}{regenerate}")
    if on_notice is not None:
        why = (
            f"no mirror served {dataset_id} ({'; '.join(transfer.failures)})"
            if entry.hosted
            else f"{dataset_id} is rebuild-only (no mirror)"
        )
        on_notice(f"{why}; rebuilding it from its recipe: {command}")
    rebuild_entry(entry, target, show_progress=show_progress)
    return FetchResult(target, transferred=False, status=found.status, rebuilt=True)


def _notice_on_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def load_dataset(
    id_or_path: str | Path,
    download: bool = False,
    registry: str | Path | None = None,
    rebuild: bool = True,
) -> Dataset:
    """Open a dataset by id (looked up in the data home) or by path; with `download`, fetch a
    published dataset that the data home lacks first.

    Args:
        id_or_path: a dataset id or a path.
        download: fetch a published dataset that the data home lacks: from a mirror
            (sha256-checked), else rebuilt from its recipe (content-checksum-checked), see
            `fetch`; a dataset already there is opened as is.
        registry: the registry file or URL to fetch from (default: the shipped one).
        rebuild: with `download`, rebuild from the recipe when no mirror serves the file
            (False: fail instead).

    Raises:
        UserError: nothing found (and, with `download`, the id not published, or neither a
            mirror nor a rebuild giving the registry's content).

    Example:
        >>> dataset = load_dataset("prison-n2-expert-v2", download=True)   # doctest: +SKIP
        >>> batch = dataset.transitions()
    """
    try:
        path = resolve(id_or_path)
    except UserError:
        text = str(id_or_path)
        if not download or Path(text).suffix in SUFFIXES or "/" in text:
            raise
        fetched = fetch(
            text, registry, rebuild=rebuild, show_progress=True, on_notice=_notice_on_stderr
        )
        path = fetched.path
    return Dataset(path)
