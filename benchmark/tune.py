"""The tuning protocol: the same search budget for every algorithm, on tasks apart from the
evaluation tasks (`marl-bench tune`).

The protocol lives in `data/tuning/space.toml`: the number of trials, the sampler's seed, the
range of every tunable field and the fields each algorithm tunes (its learning rates and the one
weight that defines it). A trial runs the tuning suite (`data/suites/tuning.toml`: other team
sizes and seeds than the evaluation suites') for one algorithm with the trial's settings,
through the same runner, training loop and online evaluation as every benchmark, and scores the
mean normalized score over the suite's cells (a failed cell, e.g. a diverged loss, counts as 0,
the random policy's score). Optuna's TPE sampler, seeded from the protocol, proposes the
settings (its first 10 trials are drawn at random).

What a study leaves:
- `<out>/<algo>/journal.log`, Optuna's journal, from which an interrupted study resumes (a trial
  that was running is marked failed and its budget given to a new trial), and one run directory
  per trial, `<out>/<algo>/trial-<k>/` (its records and runs; the datasets are shared under
  `<out>/datasets`);
- `data/tuning/studies/<algo>.json`, the study's record: protocol, suite, command, and every
  trial's settings, score and cells;
- `data/tuning/tuned.json`, each algorithm's best settings, which suites with `tuned = true`
  apply before their own config.
"""

from __future__ import annotations

import hashlib
import math
import shlex
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmark.runner import run_suite
from benchmark.store import CellRecord, load_records
from benchmark.suites import TUNED_FILE, Suite, load_suite
from datagen.errors import UserError
from datagen.paths import project_data_dir, read_json, update_json, write_json

#: The protocol, the studies' records and the chosen settings, under the project's data dir.
SPACE_FILE = Path("tuning") / "space.toml"
STUDY_DIR = Path("tuning") / "studies"
#: The suite of tuning tasks.
TUNING_SUITE = "tuning"


@dataclass(frozen=True)
class FieldRange:
    """The search range of one config field."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial: Any, name: str) -> float:
        """The trial's value of field `name` (Optuna's `suggest_float`)."""
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Protocol:
    """`data/tuning/space.toml`, validated.

    Attributes:
        trials: trials per algorithm.
        seed: the TPE sampler's seed (the same for every algorithm).
        fields: every tunable field's range.
        algos: the fields each algorithm tunes.
        text: the file's text (its hash goes into every study record).
    """

    trials: int
    seed: int
    fields: dict[str, FieldRange]
    algos: dict[str, tuple[str, ...]]
    text: str

    @classmethod
    def load(cls, path: Path | None = None) -> Protocol:
        """Read and check the protocol file.

        Raises:
            UserError: invalid TOML, a field without a range, a bad range or trial count.
        """
        path = path or project_data_dir() / SPACE_FILE
        text = path.read_text()
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise UserError(f"{path} is not valid TOML: {err}") from err
        fields = {name: FieldRange(**spec) for name, spec in raw.get("fields", {}).items()}
        for name, spec in fields.items():
            if not spec.low < spec.high or (spec.log and spec.low <= 0):
                raise UserError(f"{path.name}: bad range for {name}: {spec}")
        algos = {name: tuple(names) for name, names in raw.get("algos", {}).items()}
        for algo, names in algos.items():
            missing = [n for n in names if n not in fields]
            if missing:
                raise UserError(f"{path.name}: {algo} tunes {missing[0]!r}, which has no range")
        trials = int(raw.get("trials", 0))
        if trials < 1:
            raise UserError(f"{path.name}: trials must be at least 1")
        return cls(trials, int(raw.get("seed", 0)), fields, algos, text)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def space(self, algo: str) -> dict[str, FieldRange]:
        """The ranges algorithm `algo` searches.

        Raises:
            UserError: an algorithm the protocol does not tune, naming those it does.
        """
        if algo not in self.algos:
            raise UserError(
                f"the tuning protocol has no search space for {algo!r}; "
                f"algorithms it tunes: {', '.join(self.algos)}"
            )
        return {name: self.fields[name] for name in self.algos[algo]}


def trial_suite(suite: Suite, algo: str, params: dict[str, Any]) -> Suite:
    """`suite` for one trial: every experiment runs only `algo`, with the experiment's shared
    ("all") config and the trial's settings on top."""
    experiments = tuple(
        replace(
            exp,
            algos=(algo,),
            config={"all": dict(exp.config.get("all", {})), algo: dict(params)},
            tuned=False,
        )
        for exp in suite.experiments
    )
    return replace(suite, experiments=experiments)


def trial_score(records: list[CellRecord]) -> tuple[float, dict[str, float], int]:
    """(mean score, score per cell, failed cells) of a trial's records; a failed cell scores 0."""
    cells = {r.key: float(r.normalized_score) if r.status == "ok" else 0.0 for r in records}
    failed = sum(r.status != "ok" for r in records)
    return (sum(cells.values()) / len(cells) if cells else math.nan), cells, failed


def run_study(
    algo: str,
    out: Path | str,
    trials: int | None = None,
    suite: str | Path = TUNING_SUITE,
    command: str | None = None,
    on_trial: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Tune `algo` (resuming the study in `<out>/<algo>` when there is one) and write its record
    and its best settings into the project's data dir.

    Args:
        algo: a registered algorithm the protocol tunes.
        out: where the journal, the trials' runs and the shared datasets go.
        trials: the budget (default: the protocol's).
        suite: the suite of tuning tasks.
        command: recorded in the study record (default: this process's command line).
        on_trial: called after each trial with (trials done, budget, its score).

    Returns:
        The study record written to `data/tuning/studies/<algo>.json`.

    Raises:
        UserError: an algorithm the protocol does not tune, a bad budget, or a suite error.
    """
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    protocol = Protocol.load()
    space = protocol.space(algo)
    budget = protocol.trials if trials is None else trials
    if budget < 1:
        raise UserError(f"--trials must be at least 1, got {budget}")
    tasks = load_suite(suite)
    out = Path(out)
    study_dir = out / algo
    study_dir.mkdir(parents=True, exist_ok=True)
    shared = out / "datasets"
    shared.mkdir(exist_ok=True)
    command = command or " ".join(["marl-bench", *map(shlex.quote, sys.argv[1:])])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(study_dir / "journal.log")))
    sampler = optuna.samplers.TPESampler(seed=protocol.seed)
    study = optuna.create_study(
        study_name=algo,
        storage=storage,
        sampler=sampler,
        direction="maximize",
        load_if_exists=True,
    )
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(stale.number, state=TrialState.FAIL)  # interrupted: its budget is re-spent

    def objective(trial: Any) -> float:
        params = {name: spec.suggest(trial, name) for name, spec in space.items()}
        trial_dir = study_dir / f"trial-{trial.number}"
        trial_dir.mkdir(exist_ok=True)
        link = trial_dir / "datasets"
        if not link.exists():
            link.symlink_to(shared.resolve(), target_is_directory=True)
        run_suite(
            trial_suite(tasks, algo, params),
            trial_dir,
            resume=True,
            command=command,
            progress=False,
        )
        score, cells, failed = trial_score(load_records(trial_dir))
        trial.set_user_attr("cells", cells)
        trial.set_user_attr("failed_cells", failed)
        return score

    def done() -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    finished = done() >= budget
    if not finished:
        # This process's sampler starts from its seed: note where, so the study can be redone.
        study.set_user_attr("starts", [*study.user_attrs.get("starts", []), done()])
    while done() < budget:
        study.optimize(objective, n_trials=1)
        if on_trial:
            last = study.trials[-1]
            on_trial(done(), budget, last.value if last.value is not None else math.nan)
    record = study_record(study, algo, protocol, tasks, budget, command)
    path = project_data_dir() / STUDY_DIR / f"{algo}.json"
    before = read_json(path)
    if finished and before.get("trials") == record["trials"]:
        # Nothing ran: the record is rewritten from the journal but stays the study's own.
        record |= {key: before[key] for key in ("command", "finished_at")}
    write_json(path, record)
    update_json(
        project_data_dir() / TUNED_FILE,
        lambda content: content.__setitem__(
            algo,
            {
                "params": record["best"]["params"],
                "score": record["best"]["score"],
                "trials": budget,
                "study": str(STUDY_DIR / f"{algo}.json"),
            },
        ),
    )
    return record


def study_record(
    study: Any, algo: str, protocol: Protocol, tasks: Suite, budget: int, command: str
) -> dict[str, Any]:
    """The JSON record of a finished study: the first `budget` completed trials and the best."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))[:budget]
    trials = [
        {
            "number": t.number,
            "params": dict(t.params),
            "score": t.value,
            "failed_cells": t.user_attrs.get("failed_cells", 0),
            "cells": t.user_attrs.get("cells", {}),
        }
        for t in complete
    ]
    best = max(trials, key=lambda t: t["score"])
    restarts = sampler_restarts(study, budget)
    redo = [f"marl-bench tune --algo {algo} --trials {k} --out FRESH_OUT" for k in restarts]
    redo.append(f"marl-bench tune --algo {algo} --trials {budget} --out FRESH_OUT")
    return {
        "algo": algo,
        "protocol": str(SPACE_FILE),
        "protocol_sha256": protocol.digest,
        "suite": tasks.name,
        "sampler": f"optuna TPESampler(seed={protocol.seed})",
        "budget": budget,
        "command": command,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "restarts_after": restarts,
        "reproduce": redo,
        "best": {"number": best["number"], "params": best["params"], "score": best["score"]},
        "trials": trials,
    }


def sampler_restarts(study: Any, budget: int) -> list[int]:
    """The completed-trial counts (between 1 and `budget` - 1) after which a new process resumed
    `study`, its TPE sampler starting again from the seed.

    A resumed study proposes what a fresh one proposes only if the fresh one restarts at the same
    counts (`--trials K`, then the rest), so the record lists them. They are the counts each
    process noted at its start and, for processes that predate the note, the count before each
    trial a stopped process left unfinished (marked failed when the next one started).
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = set(study.user_attrs.get("starts", []))
    for trial in trials:
        if trial.state == TrialState.FAIL:  # a process stopped in it (interrupted or raised)
            counts.add(
                sum(
                    other.state == TrialState.COMPLETE and other.number < trial.number
                    for other in trials
                )
            )
    return sorted(k for k in counts if 0 < k < budget)


def studies_table(algos: tuple[str, ...] | list[str] = ()) -> str:
    """The committed studies as a markdown table: each algorithm's best score, its tuned settings
    beside the defaults they replace, and where its sampler restarted (`restarts_after`).

    Reads `data/tuning/tuned.json` and the study record each entry names; `algos` limits the
    rows (default: every tuned algorithm, in the file's order).

    Raises:
        UserError: an algorithm named in `algos` without a committed study.
    """
    from algos.registry import get_entry

    tuned = read_json(project_data_dir() / TUNED_FILE)
    missing = [algo for algo in algos if algo not in tuned]
    if missing:
        raise UserError(
            f"no committed study of {missing[0]}; studied: {', '.join(tuned) or 'none'}"
        )
    rows = [
        "| algorithm | best (normalized) | trials | tuned settings | defaults | sampler restarted "
        "after |",
        "|---|---|---|---|---|---|",
    ]
    for algo in algos or list(tuned):
        entry = tuned[algo]
        record = read_json(project_data_dir() / entry["study"])
        defaults = get_entry(algo).defaults()
        names = sorted(entry["params"])
        settings = ", ".join(f"`{name}` {entry['params'][name]:.3g}" for name in names)
        before = ", ".join(f"{defaults[name]:.3g}" for name in names)
        restarts = ", ".join(map(str, record.get("restarts_after", []))) or "—"
        rows.append(
            f"| `{algo}` | {entry['score']:.1f} | {entry['trials']} | {settings} | {before} | "
            f"{restarts} |"
        )
    return "\n".join(rows)
