"""Dataset cards: `docs/datasets.md`, generated from the reference scores and the local datasets.

Two tables: the behaviour targets per env and team size (read from `data/reference_scores.json`,
each checked against the target the project set for that env), and one row per env, team size and
quality of the local datasets (episodes, steps, team return, normalised score, coverage, size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datagen.dataset.ops import list_local
from datagen.envs import env_names, get_spec
from datagen.paths import project_data_dir, read_json
from datagen.policies.records import REFERENCE_FILE

QUALITY_ORDER = (
    "random",
    "medium",
    "expert",
    "degenerate",
    "degenerate-collapsed",
    "degenerate-saboteur",
)


def _metric(record: dict[str, Any], name: str) -> float | None:
    return record.get(f"mean_{name}")


@dataclass(frozen=True)
class Target:
    """What an env's expert must reach, and how to check it from a reference record."""

    text: str
    met: Callable[[int, dict[str, Any]], bool | None]


def _ratio(metric: str, factor: float) -> Callable[[int, dict[str, Any]], bool | None]:
    def check(n: int, record: dict[str, Any]) -> bool | None:
        expert, random = _metric(record["expert"], metric), _metric(record["random"], metric)
        if expert is None or random is None:
            return None
        return expert >= factor * random and expert > 0

    return check


def _pursuit_met(n: int, record: dict[str, Any]) -> bool:
    expert = record["expert"]
    caught = _metric(expert, "evaders_caught") or 0.0
    if n == 8:
        return expert["mean"] >= 12 and caught >= 18
    return expert["mean"] > 0 and (n < 16 or caught >= 25)


TARGETS: dict[str, Target] = {
    "pursuit": Target(
        "team return > 0; n = 8: >= 18 of 30 caught and return >= +12; n >= 16: >= 25 caught",
        _pursuit_met,
    ),
    "pistonball": Target(
        "ball at the left wall in >= 90 % of episodes",
        lambda n, r: (_metric(r["expert"], "ball_at_left_wall") or 0) >= 0.9,
    ),
    "knights_archers_zombies": Target(
        ">= 3x the zombies random kills", _ratio("zombies_killed", 3.0)
    ),
    "prison": Target(
        ">= 95 % of the best achievable return",
        lambda n, r: r["expert"]["mean"] >= 0.95 * (_metric(r["expert"], "best_achievable") or 0),
    ),
    "multiwalker": Target(
        "mean return above random and above doing nothing",
        lambda n, r: (
            r["expert"]["mean"] > r["random"]["mean"]
            and ("nothing" not in r or r["expert"]["mean"] > r["nothing"]["mean"])
        ),
    ),
    "waterworld": Target(">= 5x the food random catches", _ratio("food_caught", 5.0)),
    "space_invaders": Target(
        ">= 3x random's score", lambda n, r: r["expert"]["mean"] >= 3 * r["random"]["mean"]
    ),
}

#: The reference records' policies that have their own column.
_COLUMNS = ("random", "expert", "privileged")


def _fmt(record: dict[str, Any]) -> str:
    extras = [
        f"{key[5:].replace('_', ' ')} {value:.2f}"
        for key, value in record.items()
        if key.startswith("mean_") and key != "mean_length"
    ]
    text = f"{record['mean']:.1f} ± {record['std']:.1f}"
    return text + (f" ({', '.join(extras)})" if extras else "")


def _of_privileged(record: dict[str, Any]) -> str:
    """The expert on the privileged scale: 100 x (expert - random) / (privileged - random)."""
    if "privileged" not in record:
        return "–"
    low, high = record["random"]["mean"], record["privileged"]["mean"]
    return f"{100.0 * (record['expert']['mean'] - low) / (high - low):.1f}"


def reference_counts(env: str, reference: dict[str, Any]) -> list[int]:
    """The team sizes of the targets table: the ladder, twice its top count, and any other count
    with a stored reference, smallest first."""
    ladder = get_spec(env).ladder
    counts = {*ladder, 2 * ladder[-1], *(int(n) for n in reference.get(env, {}))}
    spec = get_spec(env)
    return sorted(n for n in counts if spec.n_min <= n <= spec.n_max)


def targets_table(envs: list[str]) -> list[str]:
    """Markdown lines: one row per env and team size with reference scores."""
    reference = read_json(project_data_dir() / REFERENCE_FILE)
    lines = [
        "| env | n | episodes | random | expert | privileged | expert, % of privileged | "
        "other baselines | target | met | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for env in envs:
        for n in reference_counts(env, reference):
            command = f"`marl-datagen reference --env {env} --agents {n}"
            record = reference.get(env, {}).get(str(n))
            if record is None:
                lines.append(
                    f"| {env} | {n} | – | not measured | | | | | {TARGETS[env].text} | – | "
                    f"{command}` |"
                )
                continue
            privileged = _fmt(record["privileged"]) if "privileged" in record else "–"
            others = ", ".join(
                f"{name}: {_fmt(value)}"
                for name, value in record.items()
                if isinstance(value, dict) and name not in _COLUMNS
            )
            met = TARGETS[env].met(n, record)
            verdict = "yes" if met else ("no" if met is not None else "unknown")
            lines.append(
                f"| {env} | {n} | {record['episodes']} | {_fmt(record['random'])} | "
                f"{_fmt(record['expert'])} | {privileged} | {_of_privileged(record)} | {others} | "
                f"{TARGETS[env].text} | {verdict} | "
                f"{command} --episodes {record['episodes']} --seed {record.get('seed', 0)}` |"
            )
    return lines


def datasets_table(envs: list[str]) -> list[str]:
    """Markdown lines: one row per local dataset of `envs` (HDF5 preferred over a Zarr copy)."""
    rows = [r for r in list_local() if r.get("dataset_id") and r["env"] in envs]
    seen: set[str] = set()
    chosen = []
    for row in sorted(rows, key=lambda r: r["format"]):  # "hdf5" < "zarr"
        if row["dataset_id"] not in seen:
            seen.add(row["dataset_id"])
            chosen.append(row)

    def order(row: dict[str, Any]) -> tuple:
        quality = row["quality"]
        rank = QUALITY_ORDER.index(quality) if quality in QUALITY_ORDER else len(QUALITY_ORDER)
        return envs.index(row["env"]), row["n_agents"], rank, quality

    reference = read_json(project_data_dir() / REFERENCE_FILE)

    def ceiling_scale(row: dict[str, Any]) -> str:
        record = reference.get(row["env"], {}).get(str(row["n_agents"]), {})
        if "privileged" not in record:
            return "–"
        low, high = record["random"]["mean"], record["privileged"]["mean"]
        return f"{100.0 * (row['team_return_mean'] - low) / (high - low):.1f}"

    lines = [
        "| env | n | quality | episodes | steps | team return | normalised score | "
        "privileged scale | coverage | size on disk |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(chosen, key=order):
        score = "–" if row["normalized_score"] is None else f"{row['normalized_score']:.1f}"
        lines.append(
            f"| {row['env']} | {row['n_agents']} | {row['quality']} | {row['episodes']} | "
            f"{row['steps']} | {row['team_return_mean']:.1f} ± {row['team_return_std']:.1f} | "
            f"{score} | {ceiling_scale(row)} | {row['coverage']:.3f} | "
            f"{row['size_bytes'] / 1e6:.2f} MB |"
        )
    return lines


def render_cards(envs: list[str] | None = None, command: str = "marl-datagen cards") -> str:
    """The whole of docs/datasets.md."""
    envs = envs or env_names()
    envs = [env for env in envs if env in TARGETS]
    return "\n".join(
        [
            "# Dataset cards",
            "",
            f"Generated by `{command}` from `data/reference_scores.json` (written by",
            "`marl-datagen reference`) and the datasets in the data home. Team return is the sum",
            "over agents and steps of an episode; the normalised score is 0 for the random policy",
            "and 100 for the expert (observation-only) at the same team size; the privileged scale",
            "puts 100 at the privileged controller instead (`normalized_score(...,",
            'reference="privileged")`), the ceiling of what reading the env\'s internals achieves.',
            "",
            "## Behaviour targets",
            "",
            "Random, expert and privileged team returns, mean ± std over the episodes shown, with",
            "the env-specific measures in brackets, at every ladder count and twice the top count;",
            "each row's last column is the command that measured it. The expert acts from each",
            "agent's own observation; the privileged controller reads the env's internal state",
            "(oracle data, not imitable from the observations; docs/behaviour-policies.md). '–'",
            "in the privileged columns: the env has no privileged controller (multiwalker's expert",
            "is its only controller) or, for space_invaders, its expert is the privileged one.",
            "",
            *targets_table(envs),
            "",
            "## Datasets",
            "",
            *datasets_table(envs),
            "",
        ]
    )
