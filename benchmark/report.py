"""Score tables, plots and exports from a suite's records: a pure function of the records.

The statistics and why they are these are `benchmark.scores`'s: per cell the mean with a 95 %
t-interval over seeds; across tasks rliable's IQM, mean, optimality gap and probability of
improvement with stratified bootstrap intervals.

- Transfer tables (kinds transfer and finetune): one per env, training team sizes, data and regime;
  rows are algorithms, columns evaluation team sizes, cells `mean [lo, hi]` of the normalized score
  across seeds (`[n/a]` with one seed).
- Degenerate-robustness tables (kind degenerate): one per env and team size; rows are algorithms,
  columns the data (clean expert first), cells `mean [lo, hi]` and the change against the same
  algorithm on clean expert data.
- Transfer-ratio tables: where a setup also trained at an evaluation size alone (the
  in-distribution ceiling), each training's mean score at n divided by the ceiling's at n.
- Tuning-effect tables: where a setup ran both at default and at tuned settings, each
  algorithm's mean before -> after. A table at tuned settings marks an algorithm that had no
  tuned settings yet "(not tuned)"; tables never pool the two.
- Across-task tables: one per kind and setting with at least two tasks and two runs; rows are
  algorithms with their numbers of tasks and runs, IQM, mean, optimality gap and the probability
  of improvement over the BC of the same information class.
- Formats: markdown, CSV, LaTeX, JSON; PNG plots of score against evaluation team size with
  interval bands, and performance profiles across tasks; a marl-eval-compatible JSON export.
Failed cells are marked in every table ("n failed"), never dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.scores import (
    ACROSS_TASKS_INTERVAL,
    BASELINES,
    CELL_STATISTIC,
    GAMMA,
    GROUP_FIELDS,
    TASK_FIELDS,
    AcrossTasks,
    Aggregate,
    Estimate,
    across_tasks,
    aggregate,
    performance_profile,
    task_matrices,
)
from benchmark.store import CellRecord

FORMATS = ("md", "csv", "latex", "json")


@dataclass(frozen=True)
class ScoreTable:
    """A rendered-agnostic table.

    Attributes:
        title: what the table shows.
        columns: header labels, the first naming the row label column.
        rows: each row's cells as text, the first being its label.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.1f}"


def _cell(agg: Aggregate | None, reference: Aggregate | None = None) -> str:
    if agg is None:
        return ""
    if not agg.scores:
        return f"— ({agg.n_failed} failed)"
    text = f"{_fmt(agg.mean)} {_interval(agg.t_interval)}"
    if reference is not None and reference.scores and reference is not agg:
        text += f" ({agg.mean - reference.mean:+.1f})"
    if agg.n_failed:
        text += f" ({agg.n_failed} failed)"
    return text


def _interval(interval: tuple[float, float] | None) -> str:
    """`[lo, hi]`, or `[n/a]` where there is none (a cell of one seed)."""
    if interval is None:
        return "[n/a]"
    return f"[{_fmt(interval[0])}, {_fmt(interval[1])}]"


def _train_label(train: tuple[int, ...]) -> str:
    return "+".join(str(n) for n in train)


def build_tables(aggregates: list[Aggregate], across: list[AcrossTasks]) -> list[ScoreTable]:
    """Every table of a report, in a stable order: transfer tables, degenerate ones, tuning
    effects, then the across-task tables."""
    tables = []
    transfer: dict[tuple, dict[str, dict[int, Aggregate]]] = {}
    degenerate: dict[tuple, dict[str, dict[str, Aggregate]]] = {}
    data_order: dict[tuple, list[str]] = {}
    for agg in aggregates:
        kind, env, train, data, regime, tuned, eval_n = agg.group
        if kind == "degenerate":
            key = (env, train, tuned, eval_n)
            degenerate.setdefault(key, {}).setdefault(agg.algo, {})[data] = agg
            order = data_order.setdefault(key, [])
            if data not in order:
                order.append(data)
        else:
            key = (kind, env, train, data, regime, tuned)
            transfer.setdefault(key, {}).setdefault(agg.algo, {})[eval_n] = agg
    for (kind, env, train, data, regime, tuned), by_algo in transfer.items():
        sizes = sorted({n for cells in by_algo.values() for n in cells})
        title = f"{env}: trained at n={_train_label(train)} on {data} data"
        if kind != "transfer":
            title = f"{kind} — {title}"
        if regime != "offline":
            title += f", {regime}"
        title += _settings_label(tuned)
        title += f" — normalized score, {CELL_STATISTIC}"
        rows = [
            (_row_label(algo, cells), _information(cells), *(_cell(cells.get(n)) for n in sizes))
            for algo, cells in sorted(by_algo.items(), key=_algo_order)
        ]
        columns = ("algorithm", "acts from", *(f"n={n}" for n in sizes))
        tables.append(ScoreTable(title, columns, tuple(rows)))
    for (env, train, tuned, eval_n), by_algo in degenerate.items():
        order = sorted(data_order[(env, train, tuned, eval_n)], key=lambda d: (d != "expert", d))
        title = (
            f"{env}: degenerate robustness at n={_train_label(train)} (evaluated at n={eval_n})"
            f"{_settings_label(tuned)} — {CELL_STATISTIC} and change against clean expert data"
        )
        rows = [
            (
                _row_label(algo, cells),
                _information(cells),
                *(_cell(cells.get(d), cells.get("expert")) for d in order),
            )
            for algo, cells in sorted(by_algo.items(), key=_algo_order)
        ]
        tables.append(ScoreTable(title, ("algorithm", "acts from", *order), tuple(rows)))
    tables += transfer_ratio_tables(transfer)
    tables += tuning_effect_tables(transfer)
    tables += across_task_tables(across)
    return tables


def transfer_ratio_tables(
    transfer: dict[tuple, dict[str, dict[int, Aggregate]]],
) -> list[ScoreTable]:
    """Where a setup also trained at an evaluation size on its own (the in-distribution
    ceiling): one table per env, data and settings, rows (algorithm, training sizes), cells the
    transfer ratio at each evaluation size n, the mean score at n of the models trained on the
    row's sizes divided by the mean score at n of the same algorithm trained at n alone. A ratio
    of two means over seeds, shown without an interval; the ceiling's row reads 1.00."""
    setups: dict[tuple, dict[tuple[int, ...], dict[str, dict[int, Aggregate]]]] = {}
    for (kind, env, train, data, regime, tuned), by_algo in transfer.items():
        if kind == "transfer" and regime == "offline":
            setups.setdefault((env, data, tuned), {})[train] = by_algo
    tables = []
    for (env, data, tuned), by_train in setups.items():
        ceilings = {train[0]: cells for train, cells in by_train.items() if len(train) == 1}
        sizes = sorted(
            {n for by_algo in by_train.values() for cells in by_algo.values() for n in cells}
            & set(ceilings)
        )
        rows, transfers = [], False
        for train in sorted(by_train, key=lambda t: (len(t), t)):
            for algo, cells in sorted(by_train[train].items(), key=_algo_order):
                ratios = [
                    _ratio_cell(cells.get(n), ceilings[n].get(algo, {}).get(n)) for n in sizes
                ]
                if any(ratios):
                    label = f"{_row_label(algo, cells)}, trained at n={_train_label(train)}"
                    rows.append((label, _information(cells), *ratios))
                    # A cell away from the diagonal: trained on other sizes than it is scored at.
                    transfers |= any(
                        r and train != (n,) for r, n in zip(ratios, sizes, strict=True)
                    )
        if transfers:
            title = (
                f"{env}: transfer ratio on {data} data{_settings_label(tuned)} — mean score at n "
                "when trained on the row's sizes ÷ mean score at n when trained at n (ratio of "
                "means over seeds, no interval)"
            )
            columns = ("algorithm, training sizes", "acts from", *(f"n={n}" for n in sizes))
            tables.append(ScoreTable(title, columns, tuple(rows)))
    return tables


def _ratio_cell(small: Aggregate | None, ceiling: Aggregate | None) -> str:
    if small is None or ceiling is None or not small.scores or not ceiling.scores:
        return ""
    if ceiling.mean <= 0:
        return f"— (ceiling {_fmt(ceiling.mean)})"
    return f"{small.mean / ceiling.mean:.2f}"


def tuning_effect_tables(
    transfer: dict[tuple, dict[str, dict[int, Aggregate]]],
) -> list[ScoreTable]:
    """Where a setup ran both at default and at tuned settings (suite `tuning-effect`): one table
    per setup, rows the algorithms run both ways, cells `default -> tuned (change)` of the mean
    at each evaluation size."""
    tables = []
    for (kind, env, train, data, regime, tuned), after in transfer.items():
        before = transfer.get((kind, env, train, data, regime, False))
        if not tuned or before is None:
            continue
        sizes = sorted({n for cells in after.values() for n in cells})
        title = f"{env}: trained at n={_train_label(train)} on {data} data"
        if regime != "offline":
            title += f", {regime}"
        title += (
            " — what tuning changed: mean over seeds at default settings -> at tuned settings"
            " (change)"
        )
        rows = []
        for algo, cells in sorted(after.items(), key=_algo_order):
            if algo not in before or any(agg.untuned for agg in cells.values()):
                continue
            rows.append(
                (
                    algo,
                    _information(cells),
                    *(_change_cell(before[algo].get(n), cells.get(n)) for n in sizes),
                )
            )
        if rows:
            columns = ("algorithm", "acts from", *(f"n={n}" for n in sizes))
            tables.append(ScoreTable(title, columns, tuple(rows)))
    return tables


def _change_cell(before: Aggregate | None, after: Aggregate | None) -> str:
    if before is None or after is None or not before.scores or not after.scores:
        return ""
    return f"{_fmt(before.mean)} -> {_fmt(after.mean)} ({after.mean - before.mean:+.1f})"


def across_task_tables(across: list[AcrossTasks]) -> list[ScoreTable]:
    """One table per kind and setting where some algorithm has `MIN_TASKS` tasks and `MIN_RUNS`
    runs: every algorithm of those experiments a row, with its numbers of tasks and runs, so an
    algorithm left out of the statistics is seen to be."""
    by_experiment: dict[tuple[str, bool], list[AcrossTasks]] = {}
    for row in across:
        by_experiment.setdefault((row.kind, row.tuned), []).append(row)
    tables = []
    for (kind, tuned), rows in by_experiment.items():
        if all(row.iqm is None for row in rows):
            continue
        title = (
            f"across tasks — {kind}{_settings_label(tuned)} — normalized score"
            f" [{ACROSS_TASKS_INTERVAL}]: IQM, mean, optimality gap to {GAMMA:g}, and the"
            " probability of improvement over the BC of the same class on the tasks both ran;"
            " tasks: env × training n × data × regime × evaluation n, runs: the seeds that"
            " succeeded in every task of the algorithm"
        )
        columns = (
            "algorithm",
            "acts from",
            "tasks",
            "runs",
            "IQM",
            "mean",
            "optimality gap",
            f"P(improvement over {' / '.join(BASELINES.values())})",
        )
        cells = [
            (
                f"{row.algo} (not tuned)" if row.untuned else row.algo,
                row.information,
                str(row.matrix.scores.shape[1]),
                str(row.matrix.scores.shape[0])
                + (f" ({row.n_failed} failed)" if row.n_failed else ""),
                _estimate_cell(row.iqm),
                _estimate_cell(row.mean),
                _estimate_cell(row.optimality_gap),
                _improvement_cell(row),
            )
            for row in sorted(rows, key=lambda row: _row_order(row.algo, row.information))
        ]
        tables.append(ScoreTable(title, columns, tuple(cells)))
    return tables


def _estimate_cell(estimate: Estimate | None) -> str:
    if estimate is None:
        return "—"
    return f"{_fmt(estimate.value)} {_interval(estimate.ci)}"


def _improvement_cell(row: AcrossTasks) -> str:
    """Blank where there is nothing to compare with (a baseline, or its class's baseline did not
    run); the task count where it differs from the row's."""
    if row.baseline is None:
        return ""
    if row.improvement is None:
        return "—"
    lo, hi = row.improvement.ci
    text = f"{row.improvement.value:.2f} [{lo:.2f}, {hi:.2f}]"
    if row.n_improvement_tasks != row.matrix.scores.shape[1]:
        text += f" (on {row.n_improvement_tasks} tasks)"
    return text


def _settings_label(tuned: bool) -> str:
    return ", tuned settings" if tuned else ""


def _row_label(algo: str, cells: dict[Any, Aggregate]) -> str:
    """The algorithm, marked when a tuned table holds it at its defaults (no study yet)."""
    untuned = any(agg.untuned for agg in cells.values())
    return f"{algo} (not tuned)" if untuned else algo


def _information(cells: dict[Any, Aggregate] | list[Aggregate]) -> str:
    """The information class of one algorithm's aggregates (a row's cells)."""
    return next(iter(cells.values() if isinstance(cells, dict) else cells)).information


#: Row order of the information classes: the classes are compared within, never across.
_CLASS_ORDER = ("decentralised", "communicating")


def _row_order(algo: str, information: str) -> tuple[int, int, str]:
    """Rows grouped by information class, each class's BC baseline first."""
    rank = _CLASS_ORDER.index(information) if information in _CLASS_ORDER else len(_CLASS_ORDER)
    return (rank, 0 if algo == BASELINES.get(information) else 1, algo)


def _algo_order(item: tuple[str, dict[Any, Aggregate] | list[Aggregate]]) -> tuple[int, int, str]:
    algo, cells = item
    return _row_order(algo, _information(cells))


def render(tables: list[ScoreTable], fmt: str, commands: list[str] = ()) -> str:
    """Render tables as markdown, CSV or LaTeX (JSON goes through `report_json`)."""
    if fmt == "md":
        parts = []
        for table in tables:
            lines = [f"### {table.title}", "", "| " + " | ".join(table.columns) + " |"]
            lines.append("|" + "---|" * len(table.columns))
            lines += ["| " + " | ".join(row) + " |" for row in table.rows]
            parts.append("\n".join(lines))
        if commands:
            parts.append("Produced by: " + "; ".join(f"`{c}`" for c in commands))
        return "\n\n".join(parts) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("table", "row", "column", "value"))
        for table in tables:
            for row in table.rows:
                for column, value in zip(table.columns[1:], row[1:], strict=True):
                    writer.writerow((table.title, row[0], column, value))
        return buffer.getvalue()
    if fmt == "latex":
        parts = []
        for table in tables:
            spec = "l" + "r" * (len(table.columns) - 1)
            lines = [f"% {table.title}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
            lines.append(" & ".join(_latex(c) for c in table.columns) + " \\\\")
            lines.append("\\midrule")
            lines += [" & ".join(_latex(c) for c in row) + " \\\\" for row in table.rows]
            lines += ["\\bottomrule", "\\end{tabular}"]
            parts.append("\n".join(lines))
        return "\n\n".join(parts) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def _latex(text: str) -> str:
    return text.replace("%", "\\%").replace("_", "\\_").replace("—", "--").replace("&", "\\&")


def report_json(aggregates: list[Aggregate], across: list[AcrossTasks]) -> str:
    """Every cell and every across-task aggregate as JSON (NaN as null), each section naming
    its statistic and interval."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, tuple | list):
            return [clean(v) for v in value]
        if isinstance(value, Estimate):
            return {"value": clean(value.value), "ci": clean(value.ci)}
        return value

    cells = []
    for agg in aggregates:
        row = {name: clean(agg.field(name)) for name in GROUP_FIELDS}
        for name in ("algo", "information", "seeds", "scores", "mean", "t_interval"):
            row[name] = clean(getattr(agg, name))
        for name in ("team_return_mean", "n_failed", "untuned"):
            row[name] = clean(getattr(agg, name))
        cells.append(row)
    pooled = []
    for row in across:
        out = {"kind": row.kind, "tuned": row.tuned, "algo": row.algo}
        out["information"] = row.information
        out["tasks"] = [
            dict(zip(TASK_FIELDS, clean(task), strict=True)) for task in row.matrix.tasks
        ]
        out["seeds"] = list(row.matrix.seeds)
        out["scores"] = row.matrix.scores.tolist()
        for name in ("iqm", "mean", "optimality_gap", "baseline", "improvement"):
            out[name] = clean(getattr(row, name))
        for name in ("n_improvement_tasks", "n_failed", "untuned"):
            out[name] = getattr(row, name)
        pooled.append(out)
    document = {
        "cells": {"statistic": CELL_STATISTIC, "rows": cells},
        "across_tasks": {
            "interval": ACROSS_TASKS_INTERVAL,
            "optimality_gap_threshold": GAMMA,
            "rows": pooled,
        },
    }
    return json.dumps(document, indent=2) + "\n"


def marl_eval_json(records: list[CellRecord]) -> dict[str, Any]:
    """The records in marl-eval's raw-data layout: env -> task -> algorithm -> run -> steps.

    A task is one training setup evaluated at one team size
    (`<kind>-n<train>-<data>[-<regime>][-tuned]-eval-n<n>`); each seed is a run whose single
    step holds the per-episode `normalized_score` and `return`, repeated as its
    `absolute_metrics`.
    """
    out: dict[str, Any] = {}
    for record in records:
        if record.status != "ok":
            continue
        task = f"{record.kind}-n{_train_label(record.train_agents)}-{record.data}"
        if record.regime != "offline":
            task += f"-{record.regime}"
        if record.tuned:
            task += "-tuned"
        task += f"-eval-n{record.eval_agents}"
        metrics = {"normalized_score": list(record.scores), "return": list(record.returns)}
        run = {
            "step_1": {"step_count": record.n_updates or 0, **metrics},
            "absolute_metrics": metrics,
        }
        algos = out.setdefault(record.env, {}).setdefault(task, {})
        algos.setdefault(record.algo, {})[f"run_{record.seed}"] = run
    return out


def plot(aggregates: list[Aggregate], directory: Path) -> list[Path]:
    """One PNG per transfer setup: mean normalized score against evaluation team size, one line
    per algorithm with its t-interval band; and one performance profile per kind and setting
    (`plot_profiles`). Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    setups: dict[tuple, dict[str, list[Aggregate]]] = {}
    for agg in aggregates:
        kind, env, train, data, regime, tuned, _ = agg.group
        if kind != "degenerate" and agg.scores:
            setup = (kind, env, train, data, regime, tuned)
            setups.setdefault(setup, {}).setdefault(agg.algo, []).append(agg)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for (kind, env, train, data, regime, tuned), by_algo in setups.items():
        figure, axes = plt.subplots(figsize=(6, 4))
        for algo, aggs in sorted(by_algo.items(), key=_algo_order):
            aggs = sorted(aggs, key=lambda a: a.field("eval_agents"))
            sizes = [a.field("eval_agents") for a in aggs]
            information = _information(aggs)
            style = "--" if information == "communicating" else "-"
            (line,) = axes.plot(
                sizes, [a.mean for a in aggs], style, marker="o", label=f"{algo} ({information})"
            )
            # (cells, 2); a cell of one seed has no interval and leaves a gap in the band
            bands = np.array([a.t_interval or (np.nan, np.nan) for a in aggs])
            axes.fill_between(sizes, bands[:, 0], bands[:, 1], color=line.get_color(), alpha=0.2)
        for n in train:
            axes.axvline(n, color="grey", linestyle=":", linewidth=1)
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted({a.field("eval_agents") for v in by_algo.values() for a in v}))
        axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axes.set_xlabel("evaluation team size (dotted: training sizes)")
        axes.set_ylabel(f"normalized score, {CELL_STATISTIC}", fontsize=8)
        axes.set_title(
            f"{env}, trained at n={_train_label(train)} on {data}{_settings_label(tuned)}",
            fontsize=10,
        )
        axes.legend(fontsize=8)
        figure.tight_layout()
        name = f"{kind}-{env}-n{_train_label(train)}-{data}"
        if regime != "offline":
            name += f"-{regime}"
        if tuned:
            name += "-tuned"
        paths.append(_save(figure, directory, name))
    return paths + plot_profiles(aggregates, directory)


def plot_profiles(aggregates: list[Aggregate], directory: Path) -> list[Path]:
    """One PNG per kind and setting: each algorithm's performance profile across tasks (the
    fraction of its runs × tasks scoring above each threshold) with its stratified bootstrap
    band, for the algorithms with enough tasks and runs (`TaskMatrix.enough`). Returns the files
    written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    information = {agg.algo: agg.information for agg in aggregates}
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for (kind, tuned), by_algo in task_matrices(aggregates).items():
        matrices = {algo: m for algo, m in by_algo.items() if m.enough}
        if not matrices:
            continue
        every = np.concatenate([m.scores.ravel() for m in matrices.values()])
        taus = np.linspace(min(0.0, every.min()), max(GAMMA, every.max()), 101)
        figure, axes = plt.subplots(figsize=(6, 4))
        for algo in sorted(matrices, key=lambda algo: _row_order(algo, information[algo])):
            matrix = matrices[algo]
            profile, band = performance_profile(matrix.scores, taus)
            style = "--" if information[algo] == "communicating" else "-"
            n_runs, n_tasks = matrix.scores.shape
            label = f"{algo} ({information[algo]}; {n_tasks} tasks × {n_runs} runs)"
            (line,) = axes.plot(taus, profile, style, label=label)
            axes.fill_between(taus, band[0], band[1], color=line.get_color(), alpha=0.2)
        axes.set_xlabel("normalized score τ (100: expert)")
        axes.set_ylabel("fraction of runs with score > τ")
        axes.set_title(
            f"across tasks — {kind}{_settings_label(tuned)}: performance profiles\n"
            f"bands: {ACROSS_TASKS_INTERVAL}",
            fontsize=9,
        )
        axes.legend(fontsize=7)
        figure.tight_layout()
        paths.append(_save(figure, directory, f"profile-{kind}" + ("-tuned" if tuned else "")))
    return paths


def _save(figure: Any, directory: Path, name: str) -> Path:
    import matplotlib.pyplot as plt

    path = directory / (name.replace("+", "_").replace("@", "_at_") + ".png")
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def make_report(records: list[CellRecord], fmt: str = "md", reps: int | None = None) -> str:
    """The report of `records` in `fmt` (md, csv, latex or json); `reps` sets the across-task
    bootstrap's resamples (default `benchmark.scores.DEFAULT_REPS`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    aggregates = aggregate(records)
    across = across_tasks(aggregates) if reps is None else across_tasks(aggregates, reps=reps)
    if fmt == "json":
        return report_json(aggregates, across)
    commands = sorted({r.command for r in records if r.command})
    return render(build_tables(aggregates, across), fmt, commands)
