"""The result store: one JSON record per cell, appended to `<out>/records.jsonl`.

Every suite (and every curves run) writes through this one store, and every record is a
`CellRecord`: one definition of the fields, written as one flat JSON object per line. Appends are
single `write` calls of one line followed by an fsync, so a run killed mid-way leaves at most one
truncated last line; reading skips such a line (and only such a line: a malformed line elsewhere
is corruption and an error). A cell may be recorded more than once (a failed cell retried on
resume); the latest record of a key wins.

Records written before counts were named `n_...` and before fields were added read as they are now
(`CellRecord.from_json`): former names map to the new ones, and a field a record lacks takes its
default.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from datagen.errors import UserError

RECORDS_FILE = "records.jsonl"
STATUSES = ("ok", "failed")


@dataclass(frozen=True, kw_only=True)
class JobRecord:
    """What every record of one training run shares: where it sits in its suite, how it
    trained, and how it is evaluated.

    Attributes:
        kind: the experiment's kind ("transfer", "finetune", "degenerate"; "curves" for a
            point of `marl-bench curves`).
        env, env_options: the env of the data and of evaluation.
        train_agents: the team sizes of the training data.
        data: the data spec's label ("expert", "expert+degenerate@25", ...).
        regime: "offline", or for finetune "pretrained+finetuned" or "small-only".
        algo: the algorithm.
        information: its information class (None in records written before classes existed:
            `benchmark.scores.record_information`).
        tuned: whether the experiment asked for tuned settings.
        tuned_params: the tuned settings it got.
        config_overrides: the algorithm's config overrides.
        seed: the training seed.
        data_seed: the collection seed of `datasets` (None in records written before it was
            recorded).
        datasets: the training datasets' paths.
        n_dataset_episodes: episodes of each collected dataset (None: not recorded).
        n_updates: updates of the evaluated model.
        batch_size: transitions per update.
        n_eval_episodes: evaluation episodes.
        eval_seed: seed of the first evaluation episode.
        run_dir: the run directory.
        suite, suite_job: the suite and its job (None for a curves point).
        n_run_updates, checkpoint_every: (curves) the run's updates and its checkpoint cadence.
        command, git_commit: what produced the record.
    """

    kind: str
    env: str
    env_options: dict[str, Any] = field(default_factory=dict)
    train_agents: tuple[int, ...]
    data: str
    regime: str = "offline"
    algo: str
    information: str | None = None
    tuned: bool = False
    tuned_params: dict[str, Any] = field(default_factory=dict)
    config_overrides: dict[str, Any] = field(default_factory=dict)
    seed: int
    data_seed: int | None = None
    datasets: tuple[str, ...] = ()
    n_dataset_episodes: int | None = None
    n_updates: int | None = None
    batch_size: int | None = None
    n_eval_episodes: int | None = None
    eval_seed: int | None = None
    run_dir: str | None = None
    suite: str | None = None
    suite_job: str | None = None
    n_run_updates: int | None = None
    checkpoint_every: int | None = None
    command: str | None = None
    git_commit: str | None = None


@dataclass(frozen=True, kw_only=True)
class CellRecord(JobRecord):
    """One cell: a training run evaluated at one team size (or, for curves, one checkpoint).

    Attributes:
        key: the cell's key in the store.
        eval_agents: the evaluation team size.
        status: "ok" or "failed".
        error: the failure (None when ok).
        returns: team return of each evaluation episode.
        scores: their normalized scores.
        team_return_mean, team_return_std: over the evaluation episodes.
        normalized_score: the normalized score of `team_return_mean` (None when failed).
        env_metrics: the env's own metrics, means over the episodes.
        checkpoint: (curves) the evaluated checkpoint's file.
        train_seconds, eval_seconds: wall time of training and of this evaluation.
        finished_at: when the record was made.
    """

    key: str
    eval_agents: int
    status: str
    error: str | None = None
    returns: tuple[float, ...] = ()
    scores: tuple[float, ...] = ()
    team_return_mean: float | None = None
    team_return_std: float | None = None
    normalized_score: float | None = None
    env_metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    finished_at: str | None = None

    @classmethod
    def of(cls, job: JobRecord, **cell: Any) -> CellRecord:
        """The record of one cell of `job`: the job's fields, then `cell`'s."""
        shared = {f.name: getattr(job, f.name) for f in fields(JobRecord)}
        return cls(**(shared | cell))

    def to_json(self) -> dict[str, Any]:
        """The record as one flat JSON object."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CellRecord:
        """A record as written by any version (`records_before_n_counts` reads former names).

        Raises:
            UserError: a field no version of the record has.
        """
        values = records_before_n_counts(raw)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(f"unknown field {unknown[0]!r} in record {raw.get('key')!r}")
        for name in ("train_agents", "datasets", "returns", "scores"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


#: Fields of records written before counts were named `n_...`, and their names now.
_FORMER_NAMES = {
    "updates": "n_updates",
    "eval_episodes": "n_eval_episodes",
    "dataset_episodes": "n_dataset_episodes",
    "run_updates": "n_run_updates",
}


def records_before_n_counts(raw: dict[str, Any]) -> dict[str, Any]:
    """A record written before counts were named `n_...`, with its fields' names of now; newer
    records are returned unchanged (as a copy)."""
    return {_FORMER_NAMES.get(name, name): value for name, value in raw.items()}


class ResultStore:
    """Append-only cell records in a directory.

    Args:
        directory: the suite's output directory (created when missing).
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / RECORDS_FILE

    def append(self, record: CellRecord) -> None:
        """Append one record durably."""
        if record.status not in STATUSES:
            raise ValueError(f"a record's status is 'ok' or 'failed', not {record.status!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record.to_json(), sort_keys=True, allow_nan=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            if handle.tell() > 0 and not self._ends_with_newline():
                # A previous run was killed mid-line: close that fragment off so it stays one
                # unreadable line instead of corrupting this record.
                handle.write("\n")
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def records(self) -> list[CellRecord]:
        """Every readable record in append order.

        Raises:
            UserError: a malformed line other than a truncated one left by a kill, or a line
                with a field no record has.
        """
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").split("\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                truncated = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
                # A fragment left by a kill is followed by the newline `append` adds later.
                fragment = not line.rstrip().endswith("}")
                if truncated or fragment:
                    continue
                raise UserError(f"{self.path}: line {number} is not a JSON record ({err})") from err
            try:
                records.append(CellRecord.from_json(raw))
            except (UserError, TypeError) as err:
                raise UserError(f"{self.path}: line {number}: {err}") from err
        return records

    def latest(self) -> dict[str, CellRecord]:
        """The latest record of each key."""
        return {record.key: record for record in self.records()}

    def finished_keys(self) -> set[str]:
        """Keys whose latest record succeeded (a resumed run skips these)."""
        return {key for key, record in self.latest().items() if record.status == "ok"}


def load_records(directory: Path | str) -> list[CellRecord]:
    """The latest record of each cell in a suite's output directory.

    Raises:
        UserError: when the directory holds no records.
    """
    store = ResultStore(directory)
    if not store.path.exists():
        raise UserError(f"no results in {directory}: {RECORDS_FILE} not found (run marl-bench run)")
    return list(store.latest().values())
