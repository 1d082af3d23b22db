"""A real collection process killed with SIGKILL never leaves a dataset claiming to be complete, and
--resume ends with exactly the content of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datagen import load_dataset
from datagen.collect import Staging

ARGS = ["--env", "pursuit", "--agents", "2", "--episodes", "8", "--seed", "3"]
ARGS += ["--option", "max_cycles=60"]


def _cli(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "datagen.cli", "collect", *ARGS, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_staged(staging: Staging, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while len(list(staging.root.glob("episode_*.npz"))) < count:
        assert process.poll() is None, "the collection ended before it could be killed"
        assert time.monotonic() < deadline, "no progress within 2 minutes"
        time.sleep(0.02)


@pytest.mark.parametrize(("fmt", "kill_after"), [("hdf5", 1), ("zarr", 4)])
def test_sigkill_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, fmt: str, kill_after: int
) -> None:
    env = {**os.environ, "MARL_DATA_HOME": str(tmp_path / "home")}
    suffix = ".h5" if fmt == "hdf5" else ".zarr"
    target = tmp_path / f"killed{suffix}"
    staging = Staging(target)

    process = _cli("--format", fmt, "--out", str(target), env=env)
    _wait_for_staged(staging, kill_after, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not target.exists(), "a killed collection must not leave a dataset at its final path"

    rerun = _cli("--format", fmt, "--out", str(target), env=env)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 2
    assert "interrupted collection exists" in err and "--resume" in err

    resumed = _cli("--format", fmt, "--out", str(target), "--resume", env=env)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err

    reference = tmp_path / f"reference{suffix}"
    whole = _cli("--format", fmt, "--out", str(reference), env=env)
    _, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err

    with load_dataset(target) as a, load_dataset(reference) as b:
        assert a.metadata["content_checksum"] == b.metadata["content_checksum"]
        assert a.metadata["totals"]["episodes"] == 8
    assert not staging.root.exists()


def test_kills_at_many_moments_never_leave_a_partial_dataset(tmp_path: Path) -> None:
    """Kill at growing delays until a run finishes by itself: every kill — while starting, while
    playing, while writing the final file — leaves either no dataset or a complete one."""
    from datagen.dataset.ops import verify

    env = {**os.environ, "MARL_DATA_HOME": str(tmp_path / "home")}
    target = tmp_path / "swept.h5"
    delay, kills = 0.8, 0
    while True:
        process = _cli("--out", str(target), "--resume", env=env)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
        if process.returncode == 0:
            break
        assert process.returncode == -signal.SIGKILL, process.stderr.read()
        assert not target.exists() or verify(target).ok
        delay += 0.3
        assert kills < 40
    assert kills >= 2
    reference = _cli("--out", str(tmp_path / "reference.h5"), env=env)
    assert reference.wait(timeout=300) == 0
    with load_dataset(target) as a, load_dataset(tmp_path / "reference.h5") as b:
        assert a.metadata["content_checksum"] == b.metadata["content_checksum"]
