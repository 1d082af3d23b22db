"""Behaviour qualities: their ordering on a cheap env, the mixtures' bookkeeping, reference scores,
medium calibration and degenerate datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from datagen import load_dataset
from datagen.cli import main as datagen
from datagen.collect import CollectRequest, collect
from datagen.envs import make_env
from datagen.errors import UserError
from datagen.policies import RandomPolicy
from datagen.policies.evaluate import evaluate
from datagen.policies.mixtures import Collapsed, EpsilonMixture, Saboteurs
from datagen.policies.records import normalized_score, write_reference
from datagen.policies.reference import calibrate_medium
from datagen.policies.registry import Quality, make_policy


@pytest.fixture
def project_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data/ directory: tests never write the committed reference files."""
    monkeypatch.setenv("MARL_PROJECT_DATA", str(tmp_path / "project-data"))
    return tmp_path / "project-data"


def _mean(quality: Quality | str, n_episodes: int = 6, env: str = "prison", n: int = 4) -> float:
    return evaluate(env, n, lambda built: make_policy(quality, built), n_episodes).mean


def test_quality_ordering_on_prison() -> None:
    random = _mean("random")
    medium = _mean(Quality("medium", epsilon=0.5))
    expert = _mean("expert")
    adversarial = _mean("degenerate")
    assert adversarial < random < medium < expert
    assert adversarial == 0.0


def test_prison_expert_reaches_the_best_achievable_return() -> None:
    result = evaluate("prison", 8, lambda built: make_policy("expert", built), 5)
    assert result.returns == result.metrics["best_achievable"]


def test_pistonball_expert_brings_the_ball_home_and_the_adversary_does_not() -> None:
    expert = evaluate("pistonball", 3, lambda built: make_policy("expert", built), 3)
    adversary = evaluate("pistonball", 3, lambda built: make_policy("degenerate", built), 2)
    assert expert.metrics["ball_at_left_wall"] == [1.0, 1.0, 1.0]
    assert adversary.metrics["ball_at_left_wall"] == [0.0, 0.0]
    assert adversary.mean < 0 < expert.mean


def test_epsilon_mixture_probabilities_and_labels() -> None:
    env = make_env("prison", 4)
    obs, _ = env.reset(seed=0)
    team = np.stack([obs[agent] for agent in env.possible_agents])  # the expert reads these
    rng = np.random.default_rng(0)
    mixture = EpsilonMixture(make_policy("expert", env), 3, 0.3)
    mixture.reset(env, rng)
    step = mixture.act(env, team, np.ones(4, bool), rng)
    np.testing.assert_allclose(step.probs.sum(axis=1), 1.0, rtol=1e-6)
    # A deterministic expert's action keeps 0.7 + 0.1, the two others 0.1 each.
    assert sorted(np.round(step.probs[0], 6)) == [0.1, 0.1, 0.8]
    counts = np.zeros(2)
    for _ in range(400):
        counts += np.bincount(mixture.act(env, team, np.ones(4, bool), rng).labels, minlength=2)
    assert 0.25 < counts[1] / counts.sum() < 0.35, "about ε of the decisions are random"


def test_collapsed_and_saboteurs() -> None:
    env = make_env("prison", 8)
    obs, _ = env.reset(seed=0)
    team = np.stack([obs[agent] for agent in env.possible_agents])
    rng = np.random.default_rng(1)
    step = Collapsed(3, 2).act(env, None, np.ones(8, bool), rng)
    assert (step.actions == 2).all() and (step.probs[:, 2] == 1).all()
    saboteurs = Saboteurs(make_policy("expert", env), make_policy("degenerate", env), 0.25)
    saboteurs.reset(env, rng)
    step = saboteurs.act(env, team, np.ones(8, bool), rng)
    assert step.labels.sum() == 2, "a quarter of 8 agents"
    assert (step.actions[step.labels == 1] == 1).all(), "prison saboteurs stay"
    assert (step.actions[step.labels == 0] != 1).all(), "the experts move"
    assert Saboteurs(saboteurs.expert, saboteurs.adversary, 0.01).labels == (
        "expert",
        "adversarial",
    )
    tiny = Saboteurs(saboteurs.expert, saboteurs.adversary, 0.01)
    tiny.reset(env, rng)
    assert tiny.saboteur.sum() == 1, "a positive fraction means at least one saboteur"


def test_quality_validation() -> None:
    assert Quality("degenerate").tag == "degenerate"
    assert Quality("degenerate", "saboteur").tag == "degenerate-saboteur"
    with pytest.raises(UserError, match="unknown degenerate mode 'evil'; valid modes: adversarial"):
        Quality("degenerate", "evil")
    with pytest.raises(UserError, match="only applies to --quality degenerate"):
        Quality("expert", "collapsed")
    with pytest.raises(UserError, match="unknown quality 'great'"):
        Quality("great")


def test_normalized_score_from_reference(project_data: Path) -> None:
    with pytest.raises(UserError, match="no reference scores for prison with 4 agents; run:"):
        normalized_score("prison", 4, 1.0)
    write_reference("prison", 4, {"random": {"mean": 2.0}, "expert": {"mean": 12.0}})
    assert normalized_score("prison", 4, 2.0) == 0.0
    assert normalized_score("prison", 4, 12.0) == 100.0
    assert normalized_score("prison", 4, 7.0) == 50.0
    assert normalized_score("prison", 4, 0.0) == -20.0
    stored = json.loads((project_data / "reference_scores.json").read_text())
    assert stored["prison"]["4"]["expert"]["mean"] == 12.0


def test_calibration_lands_medium_in_range_and_collect_records_it(project_data: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        datagen, ["reference", "--env", "prison", "--agents", "4", "--episodes", "10"]
    )
    assert result.exit_code == 0, result.output
    recipe = calibrate_medium("prison", 4, n_episodes=8)
    assert 30 <= recipe["normalized_score"] <= 60
    assert 0 < recipe["epsilon"] < 1
    result = runner.invoke(
        datagen, ["calibrate", "--env", "prison", "--agents", "4", "--episodes", "8"]
    )
    assert result.exit_code == 0, result.output
    path = collect(CollectRequest("prison", 4, "medium", n_episodes=4))
    with load_dataset(path) as dataset:
        meta = dataset.metadata
        labels = dataset.load(["policy_labels"])["policy_labels"]
    assert meta["dataset_id"] == "prison-n4-medium-v1"
    assert meta["quality"]["epsilon"] == meta["quality"]["calibration"]["epsilon"]
    assert meta["policy"]["labels"] == ["expert", "random"]
    assert set(np.unique(labels)) == {0, 1}
    assert meta["reference_scores"]["random"]["episodes"] == 10
    assert meta["normalized_score"] == pytest.approx(
        normalized_score("prison", 4, meta["stats"]["mean"])
    )


def test_degenerate_datasets_are_labelled_and_score_below_zero(project_data: Path) -> None:
    write_reference("prison", 8, {"random": {"mean": 3.2}, "expert": {"mean": 29.4}})
    adversarial = collect(CollectRequest("prison", 8, "degenerate", n_episodes=2))
    saboteur = collect(
        CollectRequest(
            "prison",
            8,
            "degenerate",
            n_episodes=2,
            degenerate_mode="saboteur",
            saboteur_fraction=0.5,
        )
    )
    with load_dataset(adversarial) as dataset:
        assert dataset.metadata["dataset_id"] == "prison-n8-degenerate-v1"
        assert dataset.metadata["quality"] == {
            "name": "degenerate",
            "tag": "degenerate",
            "mode": "adversarial",
        }
        assert dataset.metadata["normalized_score"] < 0
    with load_dataset(saboteur) as dataset:
        assert dataset.metadata["dataset_id"] == "prison-n8-degenerate-saboteur-v1"
        assert dataset.metadata["quality"]["fraction"] == 0.5
        labels = dataset.load(["policy_labels"])["policy_labels"]
        # Per episode, the same 4 of 8 agents sabotage at every step.
        first = labels[: int(dataset.episode_lengths[0])]
        assert (first == first[0]).all() and first[0].sum() == 4
        assert dataset.metadata["policy"]["labels"] == ["expert", "adversarial"]


def test_medium_without_a_recipe_says_what_to_run(project_data: Path) -> None:
    with pytest.raises(UserError, match="marl-datagen calibrate --env prison --agents 4"):
        make_policy("medium", make_env("prison", 4))


def test_random_policy_is_uniform() -> None:
    step = RandomPolicy(5).act(None, None, np.ones(3, bool), np.random.default_rng(0))
    np.testing.assert_allclose(step.probs, 0.2)


def test_cards_check_targets_and_list_datasets(project_data: Path, data_home: Path) -> None:
    from datagen.cards import render_cards

    write_reference(
        "prison",
        2,
        {
            "episodes": 10,
            "random": {"mean": 1.0, "std": 0.5, "mean_best_achievable": 7.5},
            "expert": {"mean": 7.4, "std": 0.2, "mean_best_achievable": 7.5},
            "privileged": {"mean": 7.5, "std": 0.1, "mean_best_achievable": 7.5},
            "seed": 3,
        },
    )
    write_reference(
        "prison",
        4,
        {
            "episodes": 10,
            "random": {"mean": 1.5, "std": 0.5, "mean_best_achievable": 15.0},
            "expert": {"mean": 11.0, "std": 0.2, "mean_best_achievable": 15.0},
        },
    )
    collect(CollectRequest("prison", 2, "expert", n_episodes=2))
    text = render_cards(["prison"], "marl-datagen cards --env prison")
    lines = text.splitlines()
    row2 = next(line for line in lines if line.startswith("| prison | 2 | 10 |"))
    row4 = next(line for line in lines if line.startswith("| prison | 4 | 10 |"))
    assert "| yes | `marl-datagen reference --env prison --agents 2 --episodes 10 --seed 3` |" in (
        row2
    ), "7.4 >= 0.95 x 7.5"
    # 100 x (7.4 - 1.0) / (7.5 - 1.0): the expert on the privileged scale.
    assert "| 7.5 ± 0.1 (best achievable 7.50) | 98.5 |" in row2
    assert "| no | `marl-datagen reference --env prison --agents 4" in row4, "11.0 < 0.95 x 15.0"
    assert "| – | – |" in row4, "no privileged reference at n = 4"
    assert "| prison | 8 | – | not measured |" in text
    assert "| prison | 32 | – | not measured |" in text, "twice the ladder's top count"
    dataset_row = next(line for line in lines if line.startswith("| prison | 2 | expert |"))
    # Two 150-step episodes; the expert scores 7 or 8 per episode against these references.
    assert "| 2 | 300 |" in dataset_row
    cells = [cell.strip() for cell in dataset_row.split("|")]
    team_return = float(cells[6].split("±")[0])
    # The privileged scale: 100 x (R - 1.0) / (7.5 - 1.0).
    assert float(cells[8]) == pytest.approx(100 * (team_return - 1.0) / 6.5, abs=0.06)
    assert "Generated by `marl-datagen cards --env prison`" in text
