"""Operations on whole datasets: list, verify, convert, combine, delete.

Each is a library function that the `marl-datagen` command of the same name calls.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datagen.dataset.backends import format_of, remove_path, replace_metadata
from datagen.dataset.format import FORMAT_VERSION, Episode, content_checksum
from datagen.dataset.ids import FORMAT_SUFFIXES, DatasetId
from datagen.dataset.reader import Dataset, local_datasets, resolve
from datagen.dataset.writer import EpisodeStats, temporary_path, write_dataset
from datagen.errors import UserError

# -------------------------------------------------------------------------------------- list


def size_on_disk(path: Path) -> int:
    """Bytes used by a dataset file or directory store."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def list_local(root: Path | None = None) -> list[dict[str, Any]]:
    """A summary row per local dataset (a broken one gets a row with its error)."""
    rows = []
    for path in local_datasets(root):
        try:
            with Dataset(path) as dataset:
                meta = dataset.metadata
                rows.append(
                    {
                        "dataset_id": meta["dataset_id"],
                        "env": meta["env"]["name"],
                        "n_agents": meta["n_agents"],
                        "quality": meta["quality"].get("tag", meta["quality"]["name"]),
                        "format": dataset.format,
                        "episodes": meta["totals"]["episodes"],
                        "steps": meta["totals"]["steps"],
                        "team_return_mean": meta["stats"]["mean"],
                        "team_return_std": meta["stats"]["std"],
                        "normalized_score": meta.get("normalized_score"),
                        "coverage": meta["coverage"],
                        "size_bytes": size_on_disk(path),
                        "uncompressed_bytes": dataset.nbytes,
                        "path": str(path),
                    }
                )
        except UserError as err:
            rows.append({"dataset_id": None, "path": str(path), "error": str(err)})
    return rows


# ----------------------------------------------------------------------------------- upgrade


@dataclass(frozen=True)
class UpgradeResult:
    """What `upgrade` did: the dataset, its format version before, and whether it was rewritten."""

    path: Path
    from_version: int
    rewritten: bool


def upgrade(id_or_path: str | Path) -> UpgradeResult:
    """Rewrite an older dataset's metadata in the current format, atomically (see
    `backends.replace_metadata`); the arrays, their checksums and the `content_checksum` are not
    touched.

    Raises:
        UserError: nothing at `id_or_path`, a file that is not a readable dataset, or a version
            this package does not read.
    """
    path = resolve(id_or_path)
    with Dataset(path) as dataset:
        before, metadata = dataset.stored_format_version, dataset.metadata
    if before == FORMAT_VERSION:
        return UpgradeResult(path, before, rewritten=False)
    replace_metadata(path, metadata)
    return UpgradeResult(path, before, rewritten=True)


# ------------------------------------------------------------------------------------ verify


@dataclass
class VerifyReport:
    """What `verify` found: `problems` is empty for a sound dataset."""

    path: Path
    content_checksum: str | None = None
    arrays_checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(id_or_path: str | Path) -> VerifyReport:
    """Recompute every array's checksum, the content checksum, the totals and the return stats.

    Raises:
        UserError: when nothing is found at `id_or_path`.
    """
    path = resolve(id_or_path)
    report = VerifyReport(path)
    try:
        dataset = Dataset(path)
    except UserError as err:
        report.problems.append(str(err))
        return report
    with dataset:
        meta = dataset.metadata
        report.content_checksum = meta.get("content_checksum")
        stored = meta["checksums"]
        for name in dataset.array_names:
            try:
                actual = dataset.checksum_of(name)
            except UserError as err:
                report.problems.append(str(err))
                continue
            report.arrays_checked.append(name)
            if actual != stored[name]:
                report.problems.append(f"{path}: array {name!r} does not match its checksum")
        if content_checksum(stored) != meta.get("content_checksum"):
            report.problems.append(f"{path}: content_checksum does not match the array checksums")
        if report.problems:
            return report
        totals = {"episodes": len(dataset), "steps": dataset.n_steps}
        if meta["totals"] != totals:
            report.problems.append(f"{path}: totals {meta['totals']} but the arrays hold {totals}")
        rewards = dataset.load(["rewards"], verify=False)["rewards"]
        starts = np.concatenate([[0], np.cumsum(dataset.episode_lengths)])
        returns = [
            float(rewards[a:b].sum(dtype=np.float64))
            for a, b in zip(starts[:-1], starts[1:], strict=True)
        ]
        if not np.allclose(returns, meta["stats"]["episode_returns"], rtol=1e-5, atol=1e-4):
            report.problems.append(f"{path}: stats.episode_returns do not match the rewards")
    return report


# ----------------------------------------------------------------------------------- convert


def _metadata_without_checksums(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k not in ("checksums", "content_checksum")}


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to replace it")


def convert(id_or_path: str | Path, fmt: str, out: Path | None = None, force: bool = False) -> Path:
    """Write a copy of a dataset in the other backend (same content checksum).

    Args:
        id_or_path: the dataset.
        fmt: the target format, "hdf5" or "zarr".
        out: the target path (default: beside the source, with the target format's suffix).
        force: replace an existing target.

    Raises:
        UserError: unknown format, same format as the source, existing target without force.
    """
    if fmt not in FORMAT_SUFFIXES:
        raise UserError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMAT_SUFFIXES)}")
    source = resolve(id_or_path)
    if format_of(source) == fmt:
        raise UserError(f"{source} is already {fmt}")
    target = Path(out) if out is not None else source.with_suffix(FORMAT_SUFFIXES[fmt])
    _check_target(target, force)
    with Dataset(source) as dataset:
        stored = write_dataset(target, fmt, dataset, _metadata_without_checksums(dataset.metadata))
        if stored["content_checksum"] != dataset.metadata["content_checksum"]:
            remove_path(target)
            raise UserError(f"converting {source} changed its content; nothing was written")
    return target


# ----------------------------------------------------------------------------------- combine


def _largest_remainder(weights: list[float], total: int) -> list[int]:
    raw = [w * total for w in weights]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class _Picked:
    """Chosen episodes of several datasets as one `EpisodeSource`, labels mapped to one list."""

    def __init__(self, picks: list[tuple[Dataset, int, np.ndarray]]) -> None:
        self.picks = picks

    def __len__(self) -> int:
        return len(self.picks)

    def length(self, index: int) -> int:
        dataset, episode, _ = self.picks[index]
        return dataset.length(episode)

    def episode(self, index: int) -> Episode:
        dataset, episode, label_map = self.picks[index]
        data = dataset.episode(episode)
        data.policy_labels = label_map[data.policy_labels].astype(np.int8)
        return data


def combine(
    sources: list[str | Path],
    out_id: str,
    *,
    proportions: list[float] | None = None,
    n_episodes: int | None = None,
    seed: int = 0,
    fmt: str = "hdf5",
    out: Path | None = None,
    force: bool = False,
) -> Path:
    """Combine datasets of one env and team size into one (e.g. medium-expert, or a mixture).

    Without `proportions`, every episode of every source, in source order. With them, episodes are
    drawn without replacement per source (seeded), `round(p_i * n_episodes)` from source i; the
    default `n_episodes` is the largest total every source can supply. Behaviour labels are kept:
    each source's labels are mapped into one list, stored in `metadata["policy"]["labels"]`.

    Args:
        sources: dataset ids or paths.
        out_id: the id of the result, e.g. `pursuit-n8-medium-expert-v1`.
        proportions: one weight per source, summing to 1.
        n_episodes: total episodes with proportions.
        seed: seed of the episode draw.
        fmt: storage format of the result.
        out: the result's path (default: the data home's path for `out_id`).
        force: replace an existing result.

    Raises:
        UserError: sources of different envs, team sizes or env options; bad proportions; too
            few episodes; an existing result without force.
    """
    if len(sources) < 2:
        raise UserError("combine needs at least two datasets")
    result_id = DatasetId.parse(out_id)
    datasets = [Dataset(resolve(s)) for s in sources]
    try:
        first = datasets[0].metadata
        for dataset in datasets[1:]:
            meta = dataset.metadata
            for key in ("env", "n_agents", "agent_ids", "observation_space", "action_space"):
                mine = (
                    meta[key] if key != "env" else {k: meta["env"][k] for k in ("name", "options")}
                )
                theirs = (
                    first[key]
                    if key != "env"
                    else {k: first["env"][k] for k in ("name", "options")}
                )
                if mine != theirs:
                    raise UserError(
                        f"cannot combine {first['dataset_id']} and {meta['dataset_id']}: "
                        f"their {key} differ"
                    )
        without = [d.dataset_id for d in datasets if "positions" not in d.array_names]
        if without and len(without) < len(datasets):
            raise UserError(
                f"cannot combine datasets with and without positions: {', '.join(without)} "
                "record none (collected before format 3)"
            )
        if (first["env"]["name"], first["n_agents"]) != (result_id.env, result_id.n_agents):
            raise UserError(
                f"{out_id} must name env {first['env']['name']} and n{first['n_agents']} "
                "like its sources"
            )
        counts = _episode_counts(datasets, proportions, n_episodes)
        rng = np.random.default_rng(seed)
        labels: list[str] = []
        picks: list[tuple[Dataset, int, np.ndarray]] = []
        chosen: list[list[int]] = []
        for dataset, count in zip(datasets, counts, strict=True):
            names = dataset.metadata["policy"]["labels"]
            for name in names:
                if name not in labels:
                    labels.append(name)
            label_map = np.array([labels.index(name) for name in names], dtype=np.int8)
            if proportions is None:
                indices = list(range(len(dataset)))
            else:
                indices = sorted(rng.choice(len(dataset), size=count, replace=False).tolist())
            chosen.append(indices)
            picks += [(dataset, i, label_map) for i in indices]
        target = Path(out) if out is not None else result_id.path(fmt)
        _check_target(target, force)
        source = EpisodeStats(_Picked(picks))
        sources_meta = [
            {
                "dataset_id": d.metadata["dataset_id"],
                "content_checksum": d.metadata["content_checksum"],
                "episodes": idx,
                "policy": d.metadata["policy"],
            }
            for d, idx in zip(datasets, chosen, strict=True)
        ]

        def metadata() -> dict[str, Any]:
            seeds = [d.metadata["episode_seeds"][i] for d, i, _ in picks]
            origin = [datasets.index(d) for d, _, _ in picks]
            return {
                **{k: first[k] for k in ("format_version", "env", "packages", "n_agents")},
                **{k: first[k] for k in ("agent_ids", "observation_space", "action_space")},
                "state_space": first["state_space"],
                "view_radius": first.get("view_radius"),
                "dataset_id": str(result_id),
                "version": result_id.version,
                "policy": {"name": "combined", "labels": labels, "sources": sources_meta},
                "quality": {
                    "name": result_id.quality,
                    "proportions": proportions,
                    "seed": seed,
                    "sources": [m["dataset_id"] for m in sources_meta],
                },
                "seed": seed,
                "episode_seeds": seeds,
                "episode_sources": origin,
                **source.summary(),
                "reference_scores": first.get("reference_scores"),
                "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            }

        write_dataset(target, fmt, source, metadata)
        return target
    finally:
        for dataset in datasets:
            dataset.close()


def _episode_counts(
    datasets: list[Dataset], proportions: list[float] | None, n_episodes: int | None
) -> list[int]:
    sizes = [len(d) for d in datasets]
    if proportions is None:
        if n_episodes is not None:
            raise UserError("--episodes needs --proportions")
        return sizes
    if len(proportions) != len(datasets):
        raise UserError(
            f"give one proportion per dataset: {len(datasets)} datasets, "
            f"{len(proportions)} proportions"
        )
    if any(p < 0 for p in proportions) or abs(sum(proportions) - 1) > 1e-6:
        raise UserError(f"proportions must be >= 0 and sum to 1, got {proportions}")
    if n_episodes is None:
        n_episodes = int(min(s / p for s, p in zip(sizes, proportions, strict=True) if p > 0))
    counts = _largest_remainder(proportions, n_episodes)
    for dataset, count, size in zip(datasets, counts, sizes, strict=True):
        if count > size:
            raise UserError(
                f"{dataset.metadata['dataset_id']} has {size} episodes, {count} are needed"
            )
    if sum(counts) < 1:
        raise UserError("the combination would hold no episodes")
    return counts


# ------------------------------------------------------------------------------------ delete


def delete(id_or_path: str | Path) -> Path:
    """Delete a local dataset and any leftovers of writing or collecting it."""
    path = resolve(id_or_path)
    format_of(path)  # refuse to delete anything that is not a dataset path
    for leftover in (temporary_path(path), path.with_name(path.name + ".partial")):
        remove_path(leftover)
    remove_path(path)
    return path
