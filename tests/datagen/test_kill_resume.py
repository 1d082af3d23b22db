"""A real collection process killed with SIGKILL never leaves a dataset claiming to be complete, and
--resume ends with exactly the content of an uninterrupted run.

Kill points come from the child's progress, never from timeouts: the child prints its progress
events and freezes at a chosen one (`datagen.events`), the test reads that line from its stderr,
looks at the disk and kills it. The same moments are hit on a fast machine and a slow one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from datagen import load_dataset
from datagen.collect import Staging
from datagen.dataset.ops import verify
from datagen.dataset.writer import temporary_path
from datagen.events import EVENTS_VAR, PAUSE_VAR

N_EPISODES, MAX_CYCLES = 8, 60
ARGS = ["--env", "pursuit", "--agents", "2", "--episodes", str(N_EPISODES), "--seed", "3"]
ARGS += ["--option", f"max_cycles={MAX_CYCLES}"]
#: Only a guard against a child that hangs; no assertion depends on how long anything takes.
HANG_GUARD_S = 300


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `marl-datagen collect` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "datagen.cli", "collect", *ARGS, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )


def _kill_at(event: str, *args: str, env: dict[str, str]) -> None:
    """Run `marl-datagen collect` frozen at progress event `event`, and SIGKILL it as soon as it
    prints that event: what it left on disk is exactly the state at that event."""
    process = subprocess.Popen(
        [sys.executable, "-m", "datagen.cli", "collect", *ARGS, *args],
        env={**env, EVENTS_VAR: "1", PAUSE_VAR: event},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(HANG_GUARD_S, process.kill)
    guard.start()
    seen: list[str] = []
    try:
        for line in process.stderr:
            seen.append(line)
            if line.strip() == f"event {event}":
                break
        else:
            pytest.fail(f"the collection ended before event {event!r}:\n{''.join(seen[-20:])}")
    finally:
        guard.cancel()
        process.kill()
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize(("fmt", "kill_after"), [("hdf5", 1), ("zarr", 4)])
def test_sigkill_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, fmt: str, kill_after: int
) -> None:
    env = {**os.environ, "MARL_DATA_HOME": str(tmp_path / "home")}
    suffix = ".h5" if fmt == "hdf5" else ".zarr"
    target = tmp_path / f"killed{suffix}"
    staging = Staging(target)

    # Mid-episode, `kill_after` episodes after the start: exactly that many are staged.
    _kill_at(f"step {kill_after} {MAX_CYCLES // 2}", "--format", fmt, "--out", str(target), env=env)
    assert staging.done() == list(range(kill_after))
    assert not target.exists(), "a killed collection must not leave a dataset at its final path"

    rerun = _cli("--format", fmt, "--out", str(target), env=env)
    assert rerun.returncode == 2
    assert "interrupted collection exists" in rerun.stderr and "--resume" in rerun.stderr

    resumed = _cli("--format", fmt, "--out", str(target), "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr

    reference = tmp_path / f"reference{suffix}"
    whole = _cli("--format", fmt, "--out", str(reference), env=env)
    assert whole.returncode == 0, whole.stderr

    with load_dataset(target) as a, load_dataset(reference) as b:
        assert a.metadata["content_checksum"] == b.metadata["content_checksum"]
        assert a.metadata["totals"]["episodes"] == N_EPISODES
    assert not staging.root.exists()


def test_kills_at_many_moments_never_leave_a_partial_dataset(tmp_path: Path) -> None:
    """Kill while starting, mid-episode, after some episodes are staged and while writing the
    final file: each kill leaves no dataset at the final path, the staged episodes stay whole, and
    --resume after the last one ends with the content of an uninterrupted run."""
    env = {**os.environ, "MARL_DATA_HOME": str(tmp_path / "home")}
    target = tmp_path / "swept.h5"
    staging, writing = Staging(target), temporary_path(target)
    middle = MAX_CYCLES // 2

    # (event to kill at, episodes staged then, whether the temporary final file exists then)
    kills = [
        ("started", 0, False),  # (a) starting: staging open, nothing played yet
        ("step 0 1", 0, False),  # (a) the first step of the first episode
        (f"step 0 {middle}", 0, False),  # (b) mid-episode
        ("episode-staged 2", 3, False),  # (c) some episodes staged
        (f"step 5 {middle}", 5, False),  # (b) mid-episode of a resumed collection
        ("writing", N_EPISODES, True),  # (d) the final file just opened
        ("writing-episode 4", N_EPISODES, True),  # (d) half written
        ("renaming", N_EPISODES, True),  # (d) complete and synced, not yet renamed
    ]
    for event, n_staged, writing_exists in kills:
        _kill_at(event, "--out", str(target), "--resume", env=env)
        # Every kill lands before the rename, so not even a complete dataset may be there yet.
        assert not target.exists(), f"killed at {event!r}"
        assert staging.done() == list(range(n_staged)), f"killed at {event!r}"
        assert not list(staging.root.glob("*.tmp*")), f"killed at {event!r}: no staged half-file"
        assert writing.exists() == writing_exists, f"killed at {event!r}"

    # (e) after the rename, before the staging is removed: a complete dataset, and --resume
    # recognises it as the finished collection.
    _kill_at("written", "--out", str(target), "--resume", env=env)
    assert verify(target).ok and staging.done() == list(range(N_EPISODES))
    plain = _cli("--out", str(target), env=env)
    assert plain.returncode == 2 and "already exists" in plain.stderr
    resumed = _cli("--out", str(target), "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert verify(target).ok and not staging.root.exists() and not writing.exists()
    reference = _cli("--out", str(tmp_path / "reference.h5"), env=env)
    assert reference.returncode == 0, reference.stderr
    with load_dataset(target) as a, load_dataset(tmp_path / "reference.h5") as b:
        assert a.metadata["content_checksum"] == b.metadata["content_checksum"]
        assert a.metadata["totals"] == {"episodes": N_EPISODES, "steps": N_EPISODES * MAX_CYCLES}
