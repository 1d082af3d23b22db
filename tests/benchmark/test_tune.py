"""`marl-bench tune`: the same budget per algorithm, reproducible studies, resumable journals,
and suites that start from the chosen settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from benchmark.cli import main
from benchmark.runner import job_overrides
from benchmark.suites import job_matches, load_suite, parse_filters, tuned_settings
from benchmark.tune import Protocol, run_study
from datagen.errors import UserError
from datagen.paths import read_json

REPO_DATA = Path(__file__).resolve().parents[2] / "data"

TINY = """
[[experiment]]
env = "prison"
env_options = { max_cycles = 30 }
train_agents = [2]
eval_agents = [2]
data = ["expert"]
algos = ["bc"]
seeds = [0]
n_dataset_episodes = 2
dataset_seed = 5000
n_updates = 30
n_eval_episodes = 2
eval_seed = 5000
config = { all = { hidden_size = 16 } }
"""


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data/ with the committed references and protocol, and a private data home."""
    project = tmp_path / "project-data"
    (project / "tuning").mkdir(parents=True)
    shutil.copy(REPO_DATA / "reference_scores.json", project)
    shutil.copy(REPO_DATA / "tuning" / "space.toml", project / "tuning")
    monkeypatch.setenv("MARL_PROJECT_DATA", str(project))
    monkeypatch.setenv("MARL_DATA_HOME", str(tmp_path / "data-home"))
    return project


def test_a_study_spends_its_budget_reproducibly_and_resumes(project: Path, tmp_path: Path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    record = run_study("bc", tmp_path / "a", trials=3, suite=suite, command="test")
    lr = Protocol.load().fields["lr"]
    assert [t["number"] for t in record["trials"]] == [0, 1, 2]
    assert all(lr.low <= t["params"]["lr"] <= lr.high for t in record["trials"])
    assert len({t["params"]["lr"] for t in record["trials"]}) == 3
    assert record["best"]["score"] == max(t["score"] for t in record["trials"])
    # The chosen settings are written for the suites, and the study's record beside them.
    assert tuned_settings("bc") == record["best"]["params"]
    assert read_json(project / "tuning" / "studies" / "bc.json")["budget"] == 3
    # A fresh study with the same protocol proposes and scores exactly the same trials.
    again = run_study("bc", tmp_path / "b", trials=3, suite=suite, command="test")
    assert [t["params"] for t in again["trials"]] == [t["params"] for t in record["trials"]]
    assert [t["score"] for t in again["trials"]] == [t["score"] for t in record["trials"]]
    # A larger budget on the first study's journal runs only the missing trial.
    more = run_study("bc", tmp_path / "a", trials=4, suite=suite, command="test")
    assert [t["number"] for t in more["trials"]] == [0, 1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "a" / "bc").glob("trial-*")) == [
        f"trial-{k}" for k in range(4)
    ]
    # Resuming restarted the sampler after 3 trials; the record says so and how to redo it, and
    # a fresh study that restarts at the same count proposes the same 4th trial.
    assert record["restarts_after"] == [] and more["restarts_after"] == [3]
    assert more["reproduce"] == [
        "marl-bench tune --algo bc --trials 3 --out FRESH_OUT",
        "marl-bench tune --algo bc --trials 4 --out FRESH_OUT",
    ]
    redone = run_study("bc", tmp_path / "b", trials=4, suite=suite, command="test")
    assert [t["params"] for t in redone["trials"]] == [t["params"] for t in more["trials"]]
    # A process stopped inside a trial leaves it running; the next one marks it failed and
    # counts a restart where it stopped (the note of its own start says the same).
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "b" / "bc" / "journal.log")))
    optuna.load_study(study_name="bc", storage=storage).ask()
    stopped = run_study("bc", tmp_path / "b", trials=5, suite=suite, command="test")
    assert [t["number"] for t in stopped["trials"]] == [0, 1, 2, 3, 5]
    assert stopped["restarts_after"] == [3, 4]
    # The committed studies as the docs' table: the last record written is bc's of 5 trials.
    table = CliRunner().invoke(main, ["tune", "--report"])
    assert table.exit_code == 0, table.output
    (row,) = [line for line in table.output.splitlines() if line.startswith("| `bc`")]
    best = f"{stopped['best']['score']:.1f}"
    assert row.startswith(f"| `bc` | {best} | 5 | `lr` ") and row.endswith("| 0.001 | 3, 4 |")
    for args, message in (
        (["tune", "--report", "--algo", "idqn"], "no committed study of idqn; studied: bc"),
        (["tune"], "--algo is required (repeatable), or --report"),
    ):
        bad = CliRunner().invoke(main, args)
        assert bad.exit_code == 2 and message in bad.output, bad.output


def test_suites_start_from_the_tuned_settings(project: Path, tmp_path: Path) -> None:
    suite = tmp_path / "tuned.toml"
    suite.write_text(TINY.replace("config = ", "tuned = true\nconfig = "))
    job = load_suite(suite).jobs()[0]
    assert job_overrides(job) == {"hidden_size": 16}, "not tuned yet: defaults"
    (project / "tuning" / "tuned.json").write_text('{"bc": {"params": {"lr": 0.002}}}')
    assert job_overrides(job) == {"lr": 0.002, "hidden_size": 16}
    # Tuned runs are told apart from default ones by name, and by the `tuned` filter.
    assert job.name == "transfer-prison-n2-expert-bc-tuned-s0"
    assert job_matches(job, parse_filters(["tuned=true"]))
    assert not job_matches(job, parse_filters(["tuned=false"]))


def test_an_ablation_runs_at_its_methods_settings_less_what_it_removes(project: Path) -> None:
    gawi = {"lr": 0.001, "beta": 4.0, "quality_beta": 9.0}
    tuned = {"gawi": {"params": gawi}, "gawi-noquality": {"params": {"lr": 0.0005}}}
    (project / "tuning" / "tuned.json").write_text(json.dumps(tuned))
    assert tuned_settings("gawi-nograph") == gawi
    assert tuned_settings("gawi-noadv") == {"lr": 0.001}  # its beta and quality_beta stay 0
    assert tuned_settings("gawi-noquality") == {"lr": 0.0005}, "a study of its own comes first"
    assert tuned_settings("bc") is None


def test_every_algorithm_has_a_search_space_of_its_own_fields() -> None:
    from algos.registry import ALGORITHMS

    protocol = Protocol.load(REPO_DATA / "tuning" / "space.toml")
    assert set(protocol.algos) == set(ALGORITHMS)
    for algo, names in protocol.algos.items():
        assert set(names) <= set(ALGORITHMS[algo].defaults()), algo


def test_an_algorithm_without_a_search_space_is_refused(project: Path) -> None:
    with pytest.raises(UserError, match="no search space for 'nope'; algorithms it tunes: bc,"):
        Protocol.load().space("nope")
