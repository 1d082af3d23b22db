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


TARGETS: dict[str, Target] = {
    "pursuit": Target(
        "team return > 0 at every count, > 81 at n = 8",
        lambda n, r: r["expert"]["mean"] > (81 if n == 8 else 0),
    ),
    "pistonball": Target(
        "ball at the left wall in >= 90 % of episodes",
        lambda n, r: (_metric(r["expert"], "ball_at_left_wall") or 0) >= 0.9,
    ),
    "knights_archers_zombies": Target(
        ">= 3x the zombies random kills", _ratio("zombies_killed", 3.0)
    ),
    "prison": Target(
        ">= 80 % of the best achievable return",
        lambda n, r: r["expert"]["mean"] >= 0.8 * (_metric(r["expert"], "best_achievable") or 0),
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


def _fmt(record: dict[str, Any]) -> str:
    extras = [
        f"{key[5:].replace('_', ' ')} {value:.2f}"
        for key, value in record.items()
        if key.startswith("mean_") and key != "mean_length"
    ]
    text = f"{record['mean']:.1f} ± {record['std']:.1f}"
    return text + (f" ({', '.join(extras)})" if extras else "")


def targets_table(envs: list[str]) -> list[str]:
    """Markdown lines: one row per env and team size with reference scores."""
    reference = read_json(project_data_dir() / REFERENCE_FILE)
    lines = [
        "| env | n | episodes | random | expert | other baselines | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for env in envs:
        for n in get_spec(env).ladder:
            record = reference.get(env, {}).get(str(n))
            if record is None:
                lines.append(f"| {env} | {n} | – | not measured | | | {TARGETS[env].text} | – |")
                continue
            others = ", ".join(
                f"{name}: {_fmt(value)}"
                for name, value in record.items()
                if isinstance(value, dict) and name not in ("random", "expert")
            )
            met = TARGETS[env].met(n, record)
            verdict = "yes" if met else ("no" if met is not None else "unknown")
            lines.append(
                f"| {env} | {n} | {record['episodes']} | {_fmt(record['random'])} | "
                f"{_fmt(record['expert'])} | {others} | {TARGETS[env].text} | {verdict} |"
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

    lines = [
        "| env | n | quality | episodes | steps | team return | normalised score | coverage | "
        "size on disk |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(chosen, key=order):
        score = "–" if row["normalized_score"] is None else f"{row['normalized_score']:.1f}"
        lines.append(
            f"| {row['env']} | {row['n_agents']} | {row['quality']} | {row['episodes']} | "
            f"{row['steps']} | {row['mean_return']:.1f} ± {row['std_return']:.1f} | {score} | "
            f"{row['coverage']:.3f} | {row['size_bytes'] / 1e6:.2f} MB |"
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
            "and 100 for the expert at the same team size.",
            "",
            "## Behaviour targets",
            "",
            "Random and expert team returns, mean ± std over the episodes shown (seed 0), with the",
            "env-specific measures in brackets.",
            "",
            *targets_table(envs),
            "",
            "## Datasets",
            "",
            *datasets_table(envs),
            "",
        ]
    )
