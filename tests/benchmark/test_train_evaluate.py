"""marl-bench train / evaluate / algos / perf algos through click's runner, and evaluate_run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from algos.registry import algorithm_names
from benchmark.cli import main as bench
from benchmark.evaluate import RunPolicy, evaluate_run, load_run
from datagen.envs import make_env
from datagen.policies.records import normalized_score


@pytest.fixture(scope="module")
def prison_run(tiny_paths: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "bc-prison"
    args = ["train", "--algo", "bc", "--dataset", str(tiny_paths["prison"]), "--updates", "30"]
    args += ["--batch-size", "32", "--out", str(out), "--set", "hidden_size=16"]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    assert f"{out}: 30 updates" in result.output
    return out


def test_algos_lists_the_registry() -> None:
    result = CliRunner().invoke(bench, ["algos", "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["name"] for r in records] == algorithm_names()
    idqn = next(r for r in records if r["name"] == "idqn")
    assert idqn["config"]["cql_alpha"]["default"] == 1.0 and idqn["config"]["cql_alpha"]["doc"]
    table = CliRunner().invoke(bench, ["algos"])
    assert table.exit_code == 0 and "top_fraction" in table.output


def test_train_then_evaluate_at_another_team_size(prison_run: Path) -> None:
    config = json.loads((prison_run / "config.json").read_text())
    assert config["config"]["hidden_size"] == 16
    result = CliRunner().invoke(
        bench, ["evaluate", str(prison_run), "--agents", "8", "--episodes", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["n_agents"] == 8 and record["episodes"] == 2 and record["step"] == 30
    assert record["options"]["include_last_wall"] is True  # the run's env options
    assert record["normalized_score"] == pytest.approx(
        normalized_score("prison", 8, record["team_return_mean"])
    )
    text = CliRunner().invoke(bench, ["evaluate", str(prison_run), "--episodes", "1"])
    assert text.exit_code == 0, text.output
    assert "with 2 agents, 1 episodes: team return" in text.output
    assert "normalized score" in text.output


def test_evaluate_run_is_deterministic_and_matches_the_policy(prison_run: Path) -> None:
    (first,) = evaluate_run(prison_run, n_agents=4, n_episodes=2, seed=3)
    second, at_two = evaluate_run(prison_run, n_agents=[4, 2], n_episodes=2, seed=3)
    assert (second.n_agents, at_two.n_agents) == (4, 2)
    assert first.evaluation.returns == second.evaluation.returns
    run = load_run(prison_run)
    policy = RunPolicy(run.algo)
    obs = torch.rand(4, 2).numpy()
    alive = torch.ones(4, dtype=torch.bool).numpy()
    env = make_env("prison", 4, include_last_wall=True)  # the policy reads its (absent) masks
    env.reset(seed=0)
    decision = policy.act(env, obs, alive, None)
    env.close()
    assert decision.actions.tolist() == run.algo.act(obs, alive).tolist()
    assert decision.probs.sum(axis=1).tolist() == [1.0] * 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--algo", "dqn9", "--dataset", "x", "--updates", "1"], "valid algorithms: bc"),
        (
            ["train", "--algo", "idqn", "--dataset", "x", "--updates", "1", "--set", "gama=0.9"],
            "valid keys: hidden_size, encoder, reward_scale, graph_rounds, n_heads, "
            "graph_neighbours, graph_neighbourhood, lr, gamma, tau, cql_alpha",
        ),
        (
            ["train", "--algo", "idqn", "--dataset", "x", "--updates", "1", "--set", "gamma"],
            "must look like key=value",
        ),
        (["evaluate", "no-such-run"], "not a run directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_evaluating_on_an_env_the_model_cannot_read(prison_run: Path) -> None:
    result = CliRunner().invoke(
        bench, ["evaluate", str(prison_run), "--env", "pursuit", "--agents", "2"]
    )
    assert result.exit_code == 2
    assert "pursuit with 2 agents gives observations of shape (7, 7, 3)" in result.output
    assert "trained on (2,)" in result.output


def test_perf_algos_reports_ratios(tiny_paths: dict[str, Path]) -> None:
    args = ["perf", "algos", "--dataset", str(tiny_paths["prison"]), "--updates", "5"]
    result = CliRunner().invoke(bench, args + ["--repeats", "1", "--batch-size", "16", "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["algo"] for r in records] == algorithm_names()
    for record in records:
        assert record["bare_updates_per_s"] > 0 and record["fit_updates_per_s"] > 0
        assert record["update_vs_bare"] == pytest.approx(
            record["update_updates_per_s"] / record["bare_updates_per_s"]
        )
        assert 0 < record["sample_fraction"] < 1
