"""Replaying datasets from their metadata alone: the plain-Python recipe of
docs/dataset-format.md, run as written on every env with a PettingZoo id, and `marl-datagen replay`
on every env of the suite."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datagen.cli import main as datagen_cli
from datagen.collect import CollectRequest, collect
from datagen.dataset.backends import replace_metadata
from datagen.dataset.reader import Dataset
from datagen.replay import replay

DOC = Path(__file__).resolve().parents[2] / "docs" / "dataset-format.md"

#: (env, agents, options) kept tiny; long enough that knights die and walkers fall.
SMALL = {
    "pursuit": (2, {"max_cycles": 25}),
    "pistonball": (3, {"max_cycles": 12}),
    "knights_archers_zombies": (2, {"max_cycles": 250}),
    "multiwalker": (3, {"max_cycles": 120}),
    "cooperative_pong": (2, {"max_cycles": 30}),
    "space_invaders": (2, {"max_cycles": 120}),
    "prison": (2, {"max_cycles": 25}),
    "waterworld": (2, {"max_cycles": 25}),
}
PETTINGZOO_ENVS = [name for name in SMALL if name not in ("prison", "waterworld")]


def doc_recipe() -> dict[str, Any]:
    """The code block of the doc's replay section, executed as a module."""
    text = DOC.read_text()
    section = text.split("## Replaying an episode without this package", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "import datagen" not in code and "from datagen" not in code, "nothing of ours"
    namespace: dict[str, Any] = {"__name__": "replay_recipe"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two random episodes of every env (pursuit also as Zarr), collected once."""
    root = tmp_path_factory.mktemp("replay-datasets")
    made = {}
    for name, (n_agents, options) in SMALL.items():
        formats = ("hdf5", "zarr") if name == "pursuit" else ("hdf5",)
        for fmt in formats:
            suffix = ".h5" if fmt == "hdf5" else ".zarr"
            key = name if fmt == "hdf5" else f"{name}-zarr"
            made[key] = collect(
                CollectRequest(
                    env=name,
                    n_agents=n_agents,
                    quality="random",
                    n_episodes=2,
                    seed=5,
                    fmt=fmt,
                    options=options,
                    out=root / f"{key}{suffix}",
                )
            )
    return made


def test_the_episodes_exercise_deaths(datasets: dict[str, Path]) -> None:
    """The replays below must cover agents that die mid-episode (KAZ) and walkers that fall."""
    for name in ("knights_archers_zombies", "multiwalker"):
        with Dataset(datasets[name]) as dataset:
            alive = dataset.load(["alive"])["alive"]
        assert not alive.all(), f"no agent of {name} died: lengthen its episodes"


@pytest.mark.parametrize("name", [*PETTINGZOO_ENVS, "pursuit-zarr"])
def test_the_documented_recipe_replays_every_pettingzoo_env(
    name: str, datasets: dict[str, Path]
) -> None:
    if name.startswith("pursuit"):  # made by our vectorised pursuit, replayed on PettingZoo's
        with Dataset(datasets[name]) as dataset:
            assert dataset.metadata["env"]["options"]["implementation"] == "vectorised"
    recipe = doc_recipe()
    for episode in (0, 1):
        recipe["replay_episode"](str(datasets[name]), episode)


def test_the_documented_recipe_catches_a_wrong_record(
    datasets: dict[str, Path], tmp_path: Path
) -> None:
    path = _with_metadata(
        datasets["pursuit"], tmp_path, lambda meta: meta["episode_seeds"].reverse()
    )
    with pytest.raises(AssertionError, match="differs at episode 0"):
        doc_recipe()["replay_episode"](str(path), 0)


@pytest.mark.parametrize("name", list(SMALL))
def test_replay_matches_on_every_env(name: str, datasets: dict[str, Path]) -> None:
    report = replay(datasets[name])
    assert report.ok, str(report.mismatch)
    with Dataset(datasets[name]) as dataset:
        assert (report.n_episodes, report.n_steps) == (len(dataset), dataset.n_steps)


def _with_metadata(source: Path, tmp_path: Path, change: Any) -> Path:
    import shutil

    target = tmp_path / source.name
    shutil.copyfile(source, target)
    with Dataset(target) as dataset:
        meta = json.loads(json.dumps(dataset.metadata))
    change(meta)
    replace_metadata(target, meta)
    return target


def test_replay_command_exits_0_then_1_naming_the_first_mismatch(
    datasets: dict[str, Path], tmp_path: Path
) -> None:
    result = CliRunner().invoke(datagen_cli, ["replay", str(datasets["prison"]), "--episodes", "1"])
    assert result.exit_code == 0, result.output
    assert "1 episodes (25 steps) replay exactly" in result.output

    def cheaper_urgency(meta: dict) -> None:
        meta["env"]["pettingzoo_kwargs"]["urgency_reward"] = -0.2

    changed = _with_metadata(datasets["pursuit"], tmp_path, cheaper_urgency)
    result = CliRunner().invoke(datagen_cli, ["replay", str(changed)])
    assert result.exit_code == 1
    assert "episode 0, step 0, agent pursuer_0, array rewards" in result.output


def test_replay_rejects_bad_input_in_one_line(datasets: dict[str, Path]) -> None:
    result = CliRunner().invoke(datagen_cli, ["replay", str(datasets["prison"]), "--episodes", "0"])
    assert result.exit_code == 2
    result = CliRunner().invoke(datagen_cli, ["replay", "nowhere-n2-random-v1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
