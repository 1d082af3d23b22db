"""The two command lines: real commands through click's runner, bad input as one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmark.cli import main as bench
from datagen.cli import main as datagen
from datagen.envs import env_names

SEVEN = {
    "pursuit",
    "pistonball",
    "knights_archers_zombies",
    "multiwalker",
    "waterworld",
    "prison",
    "space_invaders",
}


def test_envs_json_lists_the_suite() -> None:
    result = CliRunner().invoke(datagen, ["envs", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    names = [row["name"] for row in rows]
    assert SEVEN <= set(names)
    assert names == env_names()
    by_name = {row["name"]: row for row in rows}
    assert by_name["pursuit"]["pettingzoo_id"] == "sisl/pursuit-v5"
    assert by_name["waterworld"]["pettingzoo_id"] is None
    assert by_name["prison"]["source"] == "ours"
    assert by_name["space_invaders"]["n_max"] == 2


def test_envs_without_the_atari_extra_still_lists_the_rest(monkeypatch) -> None:
    # A machine without ale-py: space_invaders is reported unavailable, the others still listed.
    from datagen.envs import registry

    def no_ale() -> str:
        raise registry.EnvConfigError("space_invaders needs the atari extra")

    monkeypatch.setattr(registry, "ale_rom_directory", no_ale)
    rows = json.loads(CliRunner().invoke(datagen, ["envs", "--json"]).stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["space_invaders"] == {
        "name": "space_invaders",
        "available": False,
        "error": "space_invaders needs the atari extra",
    }
    assert by_name["pursuit"]["available"] is True
    asked = CliRunner().invoke(datagen, ["envs", "--env", "space_invaders"])
    assert asked.exit_code == 2
    assert "needs the atari extra" in asked.output


def test_envs_table() -> None:
    result = CliRunner().invoke(datagen, ["envs", "--env", "pursuit", "--env", "prison"])
    assert result.exit_code == 0, result.output
    assert "sisl/pursuit-v5" in result.output
    assert "(7, 7, 3) float32" in result.output
    assert "pistonball" not in result.output


def _run(cli, args: list[str], **kwargs):
    return CliRunner().invoke(cli, args, **kwargs)


COLLECT = ["collect", "--env", "pursuit", "--agents", "2", "--option", "max_cycles=30"]


def test_dataset_commands_end_to_end(data_home: Path) -> None:
    result = _run(datagen, [*COLLECT, "--episodes", "2", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "pursuit-n2-random-v1" in result.output
    path = data_home / "pursuit" / "n2" / "random-v1.h5"

    info = _run(datagen, ["info", "pursuit-n2-random-v1", "--json"])
    metadata = json.loads(info.stdout)
    assert metadata["totals"] == {"episodes": 2, "steps": 60}
    assert len(metadata["content_checksum"]) == 64

    listed = json.loads(_run(datagen, ["list", "--json"]).stdout)
    assert [(r["dataset_id"], r["episodes"], r["format"]) for r in listed] == [
        ("pursuit-n2-random-v1", 2, "hdf5")
    ]
    assert "pursuit-n2-random-v1" in _run(datagen, ["list"]).output

    verified = _run(datagen, ["verify", "pursuit-n2-random-v1"])
    assert verified.exit_code == 0
    assert f"content_checksum {metadata['content_checksum']}" in verified.output

    converted = _run(datagen, ["convert", "pursuit-n2-random-v1", "--format", "zarr"])
    assert converted.exit_code == 0, converted.output
    assert metadata["content_checksum"] in converted.output
    assert path.with_suffix(".zarr").is_dir()

    second = _run(
        datagen,
        [
            *COLLECT,
            "--episodes",
            "3",
            "--seed",
            "1",
            "--quality",
            "random",
            "--out",
            str(data_home / "pursuit" / "n2" / "random-v2.h5"),
        ],
    )
    assert second.exit_code == 0, second.output
    combined = _run(
        datagen,
        ["combine", str(path), "pursuit-n2-random-v2", "--into", "pursuit-n2-both-v1"],
    )
    assert combined.exit_code == 0, combined.output
    both = json.loads(_run(datagen, ["info", "pursuit-n2-both-v1", "--json"]).stdout)
    assert both["totals"] == {"episodes": 5, "steps": 150}

    declined = _run(datagen, ["delete", "pursuit-n2-both-v1"], input="n\n")
    assert declined.exit_code == 1 and (data_home / "pursuit" / "n2" / "both-v1.h5").exists()
    deleted = _run(datagen, ["delete", "pursuit-n2-both-v1", "--yes"])
    assert deleted.exit_code == 0
    assert not (data_home / "pursuit" / "n2" / "both-v1.h5").exists()


def test_verify_exits_1_naming_the_array(data_home: Path) -> None:
    import h5py

    assert _run(datagen, [*COLLECT, "--episodes", "1"]).exit_code == 0
    path = data_home / "pursuit" / "n2" / "random-v1.h5"
    with h5py.File(path, "r+") as handle:
        handle["actions"][0, 0] = (handle["actions"][0, 0] + 1) % 5
    result = _run(datagen, ["verify", str(path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"FAILED {path}: array 'actions' does not match its checksum"


def test_collect_defaults_to_ten_episodes(data_home: Path) -> None:
    result = _run(datagen, [*COLLECT[:-2], "--option", "max_cycles=5", "--quality", "degenerate"])
    assert result.exit_code == 0, result.output
    info = json.loads(_run(datagen, ["info", "pursuit-n2-degenerate-v1", "--json"]).stdout)
    assert info["totals"] == {"episodes": 10, "steps": 50}
    assert info["quality"]["mode"] == "adversarial"


def test_collect_zarr_with_steps(data_home: Path) -> None:
    result = _run(datagen, [*COLLECT, "--steps", "45", "--format", "zarr"])
    assert result.exit_code == 0, result.output
    assert (data_home / "pursuit" / "n2" / "random-v1.zarr").is_dir()
    assert "60" in result.output  # two whole 30-step episodes


def test_collect_version_names_the_dataset(data_home: Path) -> None:
    result = _run(datagen, [*COLLECT, "--episodes", "1", "--seed", "1", "--version", "2"])
    assert result.exit_code == 0, result.output
    info = json.loads(_run(datagen, ["info", "pursuit-n2-random-v2", "--json"]).stdout)
    assert (info["dataset_id"], info["version"], info["seed"]) == ("pursuit-n2-random-v2", 2, 1)
    assert sorted(p.name for p in (data_home / "pursuit" / "n2").iterdir()) == ["random-v2.h5"]
    for bad, message in [("0", "--version must be at least 1, got 0"), ("two", "'two' is not")]:
        refused = _run(datagen, [*COLLECT, "--episodes", "1", "--version", bad])
        assert refused.exit_code == 2
        assert refused.output.strip().splitlines() == [refused.output.strip()]
        assert refused.output.startswith("Error: ") and message in refused.output


@pytest.mark.parametrize(
    ("cli", "args", "message"),
    [
        (datagen, ["envs", "--env", "chess"], "unknown env 'chess'; valid envs: pursuit"),
        (datagen, ["envs", "--env", "pistonball", "--agents", "1"], "supports 2 to 40 agents"),
        (datagen, ["envs", "--env", "space_invaders", "--agents", "3"], "supports 1 to 2 agents"),
        (
            datagen,
            [
                "collect",
                "--env",
                "pursuit",
                "--agents",
                "2",
                "--episodes",
                "1",
                "--option",
                "fog=1",
            ],
            "unknown option 'fog' for env pursuit; valid options:",
        ),
        (
            datagen,
            ["collect", "--env", "pursuit", "--agents", "two"],
            "'two' is not a valid integer",
        ),
        (datagen, ["launch"], "No such command 'launch'"),
        (datagen, ["info", "pursuit-n2-nothing-v1"], "no local dataset 'pursuit-n2-nothing-v1'"),
        (datagen, ["info", "garbage"], "'garbage' is not a dataset id"),
        (datagen, ["verify", "/nonexistent/x.h5"], "/nonexistent/x.h5: no such dataset"),
        (datagen, [*COLLECT, "--episodes", "1", "--format", "csv"], "unknown format 'csv'"),
        (datagen, [*COLLECT, "--episodes", "1", "--workers", "0"], "--workers must be at least 1"),
        (
            datagen,
            [*COLLECT, "--episodes", "2", "--steps", "9"],
            "give exactly one of --episodes and --steps",
        ),
        (
            datagen,
            [*COLLECT, "--episodes", "1", "--quality", "degenerate", "--degenerate-mode", "evil"],
            "unknown degenerate mode 'evil'; valid modes: adversarial, collapsed, saboteur",
        ),
        (datagen, ["reference", "--env", "prison", "--agents", "0"], "supports 1 to 64 agents"),
        (bench, ["perf", "envs", "--env", "tetris"], "unknown env 'tetris'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_perf_envs_reports_ratios() -> None:
    args = ["perf", "envs", "--env", "prison", "--agents", "2", "--agents", "8", "--steps", "40"]
    result = CliRunner().invoke(bench, [*args, "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [(r["env"], r["n_agents"]) for r in records] == [("prison", 2), ("prison", 8)]
    small, large = records
    assert small["ratio_to_smallest"] == 1.0
    assert large["agent_steps_per_s"] == pytest.approx(large["env_steps_per_s"] * 8)
    assert large["ratio_to_smallest"] == pytest.approx(
        large["agent_steps_per_s"] / small["agent_steps_per_s"]
    )
    assert all(r["env_steps"] == 40 and r["seconds"] > 0 for r in records)


def test_perf_envs_measures_pursuit_both_ways_in_one_run() -> None:
    args = ["perf", "envs", "--env", "pursuit", "--agents", "2", "--steps", "5", "--batch", "1"]
    result = CliRunner().invoke(bench, [*args, "--batch", "3", "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [(r["label"], r["batch"]) for r in records] == [
        ("pursuit (pettingzoo)", 1),
        ("pursuit (vectorised)", 1),
        ("pursuit (vectorised, batch 3)", 3),
    ]
    reference, single, batch = records
    assert reference["ratio_to_pettingzoo"] is None
    assert [single["env_steps"], batch["env_steps"]] == [5, 15]  # no episode ends in 5 steps
    for record in (single, batch):
        assert record["ratio_to_pettingzoo"] == pytest.approx(
            record["env_steps_per_s"] / reference["env_steps_per_s"]
        )


def test_perf_datasets_reports_consistent_ratios() -> None:
    args = ["perf", "datasets", "--env", "prison", "--agents", "2", "--episodes", "2"]
    result = _run(bench, [*args, "--repeats", "1", "--option", "max_cycles=40", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["steps"] == 80
    assert record["collect_vs_raw"] == pytest.approx(
        record["collect_steps_per_s"] / record["raw_steps_per_s"]
    )
    assert record["workers2_vs_1"] == pytest.approx(
        record["collect2_steps_per_s"] / record["collect_steps_per_s"]
    )
    assert set(record["load_mb_per_s"]) == {"hdf5", "zarr"}
    assert all(v > 0 for v in record["load_mb_per_s"].values())


def test_perf_eval_reports_the_cost_model() -> None:
    args = ["perf", "eval", "--env", "prison", "--agents", "2", "--agents", "4"]
    result = _run(
        bench,
        [*args, "--episodes", "2", "--updates", "10", "--set", "hidden_size=32"]
        + ["--option", "max_cycles=40", "--json"],
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [(r["env"], r["n_agents"], r["algo"], r["hidden_size"]) for r in records] == [
        ("prison", 2, "bc", 32),
        ("prison", 4, "bc", 32),
    ]
    assert all(r["options"] == {"max_cycles": 40} for r in records)
    assert all(r["mean_length"] == 40 and r["episodes"] == 2 for r in records)  # the option's cap
    assert all(r["seconds_per_episode"] > 0 and r["seconds_per_1k_updates"] > 0 for r in records)
    bad = CliRunner().invoke(bench, ["perf", "eval", "--algo", "dqn9"])
    assert bad.exit_code == 2 and "valid algorithms" in bad.output
    bad = CliRunner().invoke(bench, ["perf", "eval", "--set", "nonsense=1"])
    assert bad.exit_code == 2 and "no algorithm of bc has the config field 'nonsense'" in bad.output


def test_help_teaches() -> None:
    result = CliRunner().invoke(datagen, ["collect", "--help"])
    assert result.exit_code == 0
    assert "--episodes" in result.output and "Example" in result.output
