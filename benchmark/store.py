"""The result store: one JSON record per cell, appended to `<out>/records.jsonl`.

Every suite writes through this one store. Appends are single `write` calls of one line followed by
an fsync, so a run killed mid-way leaves at most one truncated last line; reading skips such a line
(and only such a line: a malformed line elsewhere is corruption and an error). A cell may be
recorded more than once (a failed cell retried on resume); the latest record of a key wins.

A record holds at least: `key`, `status` ("ok" or "failed"), `error` (None or the message), the
cell's coordinates (`suite`, `kind`, `env`, `train_agents`, `eval_agents`, `data`, `algo`, `seed`,
`regime`) and, when ok, `returns` (team return per evaluation episode), `scores` (their normalized
scores), `team_return_mean`, `team_return_std`, `normalized_score`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from datagen.errors import UserError

RECORDS_FILE = "records.jsonl"


class ResultStore:
    """Append-only cell records in a directory.

    Args:
        directory: the suite's output directory (created when missing).
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / RECORDS_FILE

    def append(self, record: dict[str, Any]) -> None:
        """Append one record durably."""
        if "key" not in record or record.get("status") not in ("ok", "failed"):
            raise ValueError("a record needs a key and a status of 'ok' or 'failed'")
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, allow_nan=True) + "\n"
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

    def records(self) -> list[dict[str, Any]]:
        """Every readable record in append order.

        Raises:
            UserError: a malformed line other than a truncated one left by a kill.
        """
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").split("\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                truncated = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
                # A fragment left by a kill is followed by the newline `append` adds later.
                fragment = not line.rstrip().endswith("}")
                if truncated or fragment:
                    continue
                raise UserError(f"{self.path}: line {number} is not a JSON record ({err})") from err
        return records

    def latest(self) -> dict[str, dict[str, Any]]:
        """The latest record of each key."""
        return {record["key"]: record for record in self.records()}

    def finished_keys(self) -> set[str]:
        """Keys whose latest record succeeded (a resumed run skips these)."""
        return {key for key, record in self.latest().items() if record["status"] == "ok"}


def load_records(directory: Path | str) -> list[dict[str, Any]]:
    """The latest record of each cell in a suite's output directory.

    Raises:
        UserError: when the directory holds no records.
    """
    store = ResultStore(directory)
    if not store.path.exists():
        raise UserError(f"no results in {directory}: {RECORDS_FILE} not found (run marl-bench run)")
    return list(store.latest().values())
