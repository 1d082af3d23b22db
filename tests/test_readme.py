"""The README's command-line blocks run as written (the datasets block, then the published-datasets
block from an empty data home): every line, in order, as a real process of the installed console
scripts, with tiny counts substituted (the table below), in a scratch data home and a scratch copy
of `data/`, from a scratch working directory: nothing in the work tree is written."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The blocks are the ```bash blocks of the README that start with these lines, run in this order.
FIRST_LINES = ("marl-datagen envs", "marl-datagen list --remote")

#: (pattern, replacement) applied with `re.sub`, in order, to each line (comments stripped). Each
#: must change at least one line, so a README edit cannot leave the table silently stale.
TINY = [
    (r"--episodes 20\b", "--episodes 2"),
    (r"--steps 2000\b", "--steps 50"),  # prison: one 150-step episode
    (r"^marl-datagen collect --env pursuit .*", r"\g<0> --option max_cycles=20"),
    (r"^marl-datagen reference --env pursuit$", r"\g<0> --agents 2 --episodes 2"),
    (r"^marl-datagen calibrate --env pursuit$", r"\g<0> --agents 2 --episodes 1"),
    # Every env at each ladder count and quality takes minutes even at one episode; prison, seconds.
    (
        r"^marl-datagen cards --collect-episodes 5$",
        "marl-datagen cards --env prison --collect-episodes 1",
    ),
    (r"^marl-bench perf envs .*", r"\g<0> --steps 50"),
    (r"^marl-bench perf datasets$", r"\g<0> --episodes 2 --repeats 1 --option max_cycles=20"),
]


def readme_command_lines(first: str) -> list[str]:
    """The command lines of the README's ```bash block that starts with `first`, comments
    stripped."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    block = next(b for b in blocks if b.startswith(first))
    words = (shlex.split(line, comments=True) for line in block.splitlines())
    return [shlex.join(w) for w in words if w]


def tiny(line: str, used: set[int]) -> str:
    """`line` with the substitutions of `TINY` applied; adds the index of each that applied."""
    for index, (pattern, replacement) in enumerate(TINY):
        line, count = re.subn(pattern, replacement, line)
        if count:
            used.add(index)
    return line


def run_lines(lines: list[str], cwd: Path, env: dict[str, str], used: set[int]) -> None:
    """Run each line, in order, as a process of the console scripts beside this python."""
    scripts = Path(sys.executable).parent
    for line in lines:
        argv = shlex.split(tiny(line, used))
        assert (scripts / argv[0]).exists(), f"{line}: no console script {argv[0]} in {scripts}"
        result = subprocess.run(
            [str(scripts / argv[0]), *argv[1:]],
            cwd=cwd,
            env=env,
            input="y\n",  # `delete` asks first: the reader answers yes
            capture_output=True,
            text=True,
            timeout=600,  # a hang guard only
        )
        assert result.returncode == 0, (
            f"README line `{line}`, run as `{shlex.join(argv)}`, exited {result.returncode}:\n"
            f"{result.stderr[-3000:]}"
        )


def test_readme_command_lines_run_as_written(tmp_path: Path, data_home: Path) -> None:
    project_data = tmp_path / "project-data"
    shutil.copytree(ROOT / "data", project_data)
    env = {**os.environ, "MARL_DATA_HOME": str(data_home), "MARL_PROJECT_DATA": str(project_data)}
    datasets, published = (readme_command_lines(first) for first in FIRST_LINES)
    assert len(datasets) > 10 and len(published) == 4
    used: set[int] = set()
    run_lines(datasets, tmp_path, env, used)
    # The published block as a new user runs it: from an empty data home.
    published_home = tmp_path / "published-home"
    run_lines(published, tmp_path, {**env, "MARL_DATA_HOME": str(published_home)}, used)
    unused = [TINY[i][0] for i in range(len(TINY)) if i not in used]
    assert not unused, f"substitutions that match no README line: {unused}"

    # What the block says it makes, made where it says.
    pursuit = sorted(p.name for p in (data_home / "pursuit" / "n8").iterdir())
    assert pursuit == [
        "degenerate-saboteur-v1.h5",
        "degenerate-v1.h5",
        "expert-v1.h5",
        "random-v1.h5",
        "random-v1.zarr",  # converted
        "random-v2.h5",
    ]  # and pursuit-n8-both-v1, combined then deleted, is gone
    assert (data_home / "prison" / "n4" / "random-v1.zarr").is_dir()
    assert "| prison | 4 |" in (tmp_path / "docs" / "datasets.md").read_text()
    reference = json.loads((project_data / "reference_scores.json").read_text())
    assert reference["pursuit"]["2"]["episodes"] == 2
    recipes = json.loads((project_data / "medium_recipes.json").read_text())
    assert recipes["pursuit"]["2"]["episodes"] == 1
    # The published block: rebuilt (no mirror hosts it), then published for upload.
    assert (published_home / "prison" / "n2" / "expert-v2.h5").is_file()
    published = json.loads((tmp_path / "dist" / "registry.json").read_text())
    assert published["datasets"]["prison-n2-expert-v2"]["urls"] == [
        "https://host/folder/prison-n2-expert-v2.h5"
    ]
