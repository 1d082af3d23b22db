"""The stored reference records: reference scores (random and expert returns per env and team
size), normalised scores, and the calibrated medium recipes.

`data/reference_scores.json` holds, for every env and every team size of its ladder, the mean and
std team return of the uniform random policy and of the env's expert over many episodes;
`normalized_score` maps a team return to 0 (random) .. 100 (expert), as D4RL does.
`data/medium_recipes.json` holds the ε of each env and team size's medium behaviour (expert with
probability 1 − ε, random with probability ε). `datagen.policies.reference` measures and
calibrates them; this module only reads and writes what was measured, so the policy registry can
use it without evaluating anything.
"""

from __future__ import annotations

from typing import Any

from datagen.errors import UserError
from datagen.paths import project_data_dir, read_json, update_json

REFERENCE_FILE = "reference_scores.json"
RECIPES_FILE = "medium_recipes.json"


def reference_scores(env: str, n_agents: int) -> dict[str, Any] | None:
    """The stored reference record of (env, n_agents), or None."""
    return read_json(project_data_dir() / REFERENCE_FILE).get(env, {}).get(str(n_agents))


#: The references a normalised score can be measured against.
REFERENCES = ("expert", "privileged")


def normalized_score(
    env: str, n_agents: int, team_return: float, reference: str = "expert"
) -> float:
    """100 × (R − R_random) / (R_ref − R_random) at this env and team size: with the default
    reference the observation-only expert is 100; with `reference="privileged"`, the privileged
    controller (the ceiling scale).

    Raises:
        UserError: no reference scores measured for (env, n_agents), or none for `reference`.
    """
    if reference not in REFERENCES:
        raise UserError(
            f"unknown reference {reference!r}; valid references: {', '.join(REFERENCES)}"
        )
    record = reference_scores(env, n_agents)
    if record is None:
        raise UserError(
            f"no reference scores for {env} with {n_agents} agents; "
            f"run: marl-datagen reference --env {env} --agents {n_agents}"
        )
    if reference not in record:
        raise UserError(
            f"no {reference} reference for {env} with {n_agents} agents; "
            f"run: marl-datagen reference --env {env} --agents {n_agents}"
        )
    low, high = record["random"]["mean"], record[reference]["mean"]
    return 100.0 * (team_return - low) / (high - low)


def write_reference(env: str, n_agents: int, record: dict[str, Any]) -> None:
    """Store the reference record of (env, n_agents) in `data/reference_scores.json`."""
    update_json(
        project_data_dir() / REFERENCE_FILE,
        lambda content: content.setdefault(env, {}).__setitem__(str(n_agents), record),
    )


def medium_recipe(env: str, n_agents: int) -> dict[str, Any] | None:
    """The stored medium recipe of (env, n_agents), or None."""
    return read_json(project_data_dir() / RECIPES_FILE).get(env, {}).get(str(n_agents))


def write_medium_recipe(env: str, n_agents: int, recipe: dict[str, Any]) -> None:
    """Store the medium recipe of (env, n_agents) in `data/medium_recipes.json`."""
    update_json(
        project_data_dir() / RECIPES_FILE,
        lambda content: content.setdefault(env, {}).__setitem__(str(n_agents), recipe),
    )
