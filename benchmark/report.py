"""Score tables, plots and exports from a suite's records: a pure function of the records.

- Transfer tables (kinds transfer and finetune): one per env, training team sizes, data and regime;
  rows are algorithms, columns evaluation team sizes, cells `IQM [lo, hi]` of the normalized score
  across seeds (95 % stratified bootstrap), with the probability of improvement over BC beside it.
- Degenerate-robustness tables (kind degenerate): one per env and team size; rows are algorithms,
  columns the data (clean expert first), cells `IQM [lo, hi]` and the change against the same
  algorithm on clean expert data.
- Tuning-effect tables: where a setup ran both at default and at tuned settings, each
  algorithm's IQM before -> after. A table at tuned settings marks an algorithm that had no
  tuned settings yet "(not tuned)"; tables never pool the two.
- Formats: markdown, CSV, LaTeX, JSON; PNG plots of score against evaluation team size with CI
  bands; and a marl-eval-compatible JSON export.
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

from benchmark.scores import BASELINES, Aggregate, aggregate

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
    text = f"{_fmt(agg.iqm)} [{_fmt(agg.iqm_ci[0])}, {_fmt(agg.iqm_ci[1])}]"
    if reference is not None and reference.scores and reference is not agg:
        text += f" ({agg.iqm - reference.iqm:+.1f})"
    if agg.n_failed:
        text += f" ({agg.n_failed} failed)"
    return text


def _train_label(train: tuple[int, ...]) -> str:
    return "+".join(str(n) for n in train)


def _improvement_cell(agg: Aggregate | None) -> str:
    if agg is None or agg.improvement is None:
        return ""
    lo, hi = agg.improvement_ci or (math.nan, math.nan)
    return f"{agg.improvement:.2f} [{lo:.2f}, {hi:.2f}]"


def build_tables(aggregates: list[Aggregate]) -> list[ScoreTable]:
    """Every table of a report, in a stable order: transfer tables, then degenerate ones."""
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
        title += " — normalized score, IQM [95% CI] across seeds"
        rows = [
            (_row_label(algo, cells), _information(cells), *(_cell(cells.get(n)) for n in sizes))
            for algo, cells in sorted(by_algo.items(), key=_algo_order)
        ]
        columns = ("algorithm", "acts from", *(f"n={n}" for n in sizes))
        tables.append(ScoreTable(title, columns, tuple(rows)))
        if any(agg.improvement is not None for cells in by_algo.values() for agg in cells.values()):
            rows = [
                (
                    _row_label(algo, cells),
                    _information(cells),
                    *(_improvement_cell(cells.get(n)) for n in sizes),
                )
                for algo, cells in sorted(by_algo.items(), key=_algo_order)
                if algo not in BASELINES.values()
            ]
            baselines = ", ".join(f"{algo} ({name})" for name, algo in BASELINES.items())
            tables.append(
                ScoreTable(
                    title.split(" — ")[0]
                    + f" — probability of improvement over the BC of the same class: {baselines}",
                    columns,
                    tuple(rows),
                )
            )
    for (env, train, tuned, eval_n), by_algo in degenerate.items():
        order = sorted(data_order[(env, train, tuned, eval_n)], key=lambda d: (d != "expert", d))
        title = (
            f"{env}: degenerate robustness at n={_train_label(train)} (evaluated at n={eval_n})"
            f"{_settings_label(tuned)} — IQM [95% CI] and change against clean expert data"
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
    tables += tuning_effect_tables(transfer)
    return tables


def tuning_effect_tables(
    transfer: dict[tuple, dict[str, dict[int, Aggregate]]],
) -> list[ScoreTable]:
    """Where a setup ran both at default and at tuned settings (suite `tuning-effect`): one table
    per setup, rows the algorithms run both ways, cells `default -> tuned (change)` of the IQM
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
        title += " — what tuning changed: IQM at default settings -> at tuned settings (change)"
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
    return f"{_fmt(before.iqm)} -> {_fmt(after.iqm)} ({after.iqm - before.iqm:+.1f})"


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


def _algo_order(item: tuple[str, dict[Any, Aggregate] | list[Aggregate]]) -> tuple[int, int, str]:
    """Rows grouped by information class, each class's BC baseline first."""
    algo, cells = item
    information = _information(cells)
    rank = _CLASS_ORDER.index(information) if information in _CLASS_ORDER else len(_CLASS_ORDER)
    return (rank, 0 if algo == BASELINES.get(information) else 1, algo)


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


def report_json(aggregates: list[Aggregate]) -> str:
    """Every aggregate as JSON (NaN as null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, tuple | list):
            return [clean(v) for v in value]
        return value

    rows = []
    for agg in aggregates:
        row = {name: clean(agg.field(name)) for name in ("kind", "env", "train_agents", "data")}
        row |= {"regime": agg.field("regime"), "tuned": agg.field("tuned")}
        row["eval_agents"] = agg.field("eval_agents")
        for name in ("algo", "seeds", "scores", "iqm", "iqm_ci", "mean", "mean_ci"):
            row[name] = clean(getattr(agg, name))
        for name in ("return_mean", "n_failed", "improvement", "improvement_ci", "untuned"):
            row[name] = clean(getattr(agg, name))
        rows.append(row)
    return json.dumps(rows, indent=2) + "\n"


def marl_eval_json(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The records in marl-eval's raw-data layout: env -> task -> algorithm -> run -> steps.

    A task is one training setup evaluated at one team size
    (`<kind>-n<train>-<data>[-<regime>][-tuned]-eval-n<n>`); each seed is a run whose single
    step holds the per-episode `normalized_score` and `return`, repeated as its
    `absolute_metrics`.
    """
    out: dict[str, Any] = {}
    for record in records:
        if record["status"] != "ok":
            continue
        task = f"{record['kind']}-n{_train_label(tuple(record['train_agents']))}-{record['data']}"
        if record.get("regime", "offline") != "offline":
            task += f"-{record['regime']}"
        if record.get("tuned"):
            task += "-tuned"
        task += f"-eval-n{record['eval_agents']}"
        metrics = {"normalized_score": list(record["scores"]), "return": list(record["returns"])}
        run = {
            "step_1": {"step_count": int(record.get("updates", 0)), **metrics},
            "absolute_metrics": metrics,
        }
        algos = out.setdefault(record["env"], {}).setdefault(task, {})
        algos.setdefault(record["algo"], {})[f"run_{record['seed']}"] = run
    return out


def plot(aggregates: list[Aggregate], directory: Path) -> list[Path]:
    """One PNG per transfer setup: IQM normalized score against evaluation team size, one line
    per algorithm with its 95 % CI band. Returns the files written."""
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
            axes.plot(
                sizes, [a.iqm for a in aggs], style, marker="o", label=f"{algo} ({information})"
            )
            axes.fill_between(
                sizes, [a.iqm_ci[0] for a in aggs], [a.iqm_ci[1] for a in aggs], alpha=0.2
            )
        for n in train:
            axes.axvline(n, color="grey", linestyle=":", linewidth=1)
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted({a.field("eval_agents") for v in by_algo.values() for a in v}))
        axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axes.set_xlabel("evaluation team size (dotted: training sizes)")
        axes.set_ylabel("normalized score (IQM, 95% CI)")
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
        path = directory / (name.replace("+", "_").replace("@", "_at_") + ".png")
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path)
    return paths


def make_report(records: list[dict[str, Any]], fmt: str = "md", reps: int | None = None) -> str:
    """The report of `records` in `fmt` (md, csv, latex or json)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    aggregates = aggregate(records) if reps is None else aggregate(records, reps=reps)
    if fmt == "json":
        return report_json(aggregates)
    commands = sorted({r["command"] for r in records if r.get("command")})
    return render(build_tables(aggregates), fmt, commands)
