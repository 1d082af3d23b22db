"""Publishing datasets: upload-ready files and their registry entries (`marl-datagen publish`).

Published files are always HDF5 (one file; a Zarr store is a directory): `publish` converts a Zarr
dataset to HDF5, checking the content checksum is unchanged. docs/publishing.md says how to upload
the files and update the shipped registry.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

from datagen.dataset.backends import format_of
from datagen.dataset.ids import FORMAT_SUFFIXES
from datagen.dataset.ops import convert, verify
from datagen.dataset.reader import Dataset, resolve
from datagen.dataset.registry import (
    PUBLISHED_FORMAT,
    URL_SCHEMES,
    RegistryEntry,
    file_sha256,
    merge_entries,
)
from datagen.errors import UserError
from datagen.paths import read_json, write_json
from datagen.recipes import recipe_of, stats_of


def _check_base_url(base_url: str) -> str:
    parsed = urlparse(base_url)
    if parsed.scheme not in URL_SCHEMES or not parsed.netloc:
        raise UserError(
            f"--base-url must be an {' or '.join(URL_SCHEMES)} URL of the folder the files "
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
