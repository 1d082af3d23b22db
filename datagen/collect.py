"""Roll out a behaviour policy on an env of the suite and write the episodes as a dataset.

Determinism: episode e of a collection has its own seed, drawn from (collection seed, e); the env is
reset with it and the policy samples from a generator seeded with it. An episode therefore depends
only on (seed, e) — not on which process ran it or when — so `--workers K` gives the same content
for every K, and any episode can be replayed from the metadata alone.

Crash safety: each finished episode is staged as one file in `<dataset path>.partial/`, written
under a temporary name and renamed, so a collection killed at any moment (SIGKILL included) leaves
only whole staged episodes and no dataset at the final path. `resume=True` keeps the staged episodes
and collects the rest; the result is identical to an uninterrupted run. Once every episode is
staged, the dataset is written in episode order by `write_dataset` (itself atomic) and the
staging is removed. With `MARL_DATAGEN_EVENTS=1` a collection prints its progress as events on
stderr, and `MARL_DATAGEN_PAUSE_AT` freezes it at one (`datagen.events`), so tests kill it at chosen
moments.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from datagen import __version__
from datagen.dataset.backends import BACKENDS
from datagen.dataset.format import FORMAT_VERSION, Episode
from datagen.dataset.ids import FORMAT_SUFFIXES, DatasetId
from datagen.dataset.writer import EpisodeStats, write_dataset
from datagen.envs import check_request, make_env
from datagen.errors import UserError
from datagen.events import emit
from datagen.paths import git_commit
from datagen.policies import BehaviourPolicy
from datagen.policies.records import medium_recipe, normalized_score, reference_scores
from datagen.policies.registry import Quality, make_policy
from datagen.rollout import episode_seed, play

#: Called after each staged episode with (index, length, team return).
EpisodeCallback = Callable[[int, int, float], None]


def rollout_episode(
    env: Any, policy: BehaviourPolicy, seed: int, index: int | None = None
) -> Episode:
    """Play one episode of `policy` on `env` from `env.reset(seed=seed)` and record it.

    Args:
        index: the episode's index in its collection; given, the episode announces its start and
            each step as progress events (`datagen.events`).

    Returns:
        The episode, agents on axis 1 in `env.possible_agents` order.
    """
    if index is None:
        steps = list(play(env, policy, seed, with_state=True))
    else:
        emit("episode-start", index)
        steps = []
        for step in play(env, policy, seed, with_state=True):
            steps.append(step)
            emit("step", index, len(steps))
    has_state = steps[0].state is not None
    return Episode(
        observations=np.stack([steps[0].obs] + [s.next_obs for s in steps]),
        alive=np.stack([steps[0].alive] + [s.next_alive for s in steps]),
        positions=np.stack([steps[0].positions] + [s.next_positions for s in steps]),
        actions=np.stack([s.decision.actions for s in steps]).astype(np.int64),
        rewards=np.stack([s.rewards for s in steps]),
        terminations=np.stack([s.terminated for s in steps]),
        truncations=np.stack([s.truncated for s in steps]),
        behaviour_probs=np.stack([s.decision.probs for s in steps]).astype(np.float32),
        policy_labels=np.stack([s.decision.labels for s in steps]).astype(np.int8),
        state=np.stack([steps[0].state] + [s.next_state for s in steps]) if has_state else None,
    )


@dataclass(frozen=True)
class CollectRequest:
    """Everything that determines a collection.

    Attributes:
        env: env name.
        n_agents: team size.
        quality: behaviour quality (random, medium, expert, degenerate).
        n_episodes: episodes to collect (or None when `n_steps` is given).
        n_steps: collect whole episodes until at least this many steps (or None).
        seed: collection seed.
        fmt: storage backend, "hdf5" or "zarr".
        out: explicit output path, else the data home's path for the dataset id.
        force: replace an existing dataset; without `resume`, also discard an interrupted
            collection.
        resume: continue an interrupted collection of the same request (with `force`, one that
            is replacing an existing dataset).
        workers: processes collecting episodes in parallel.
        options: env options.
        version: dataset version.
        degenerate_mode: adversarial (default), collapsed or saboteur, for degenerate quality.
        saboteur_fraction: share of saboteurs in saboteur mode.
    """

    env: str
    n_agents: int
    quality: str
    n_episodes: int | None = None
    n_steps: int | None = None
    seed: int = 0
    fmt: str = "hdf5"
    out: Path | None = None
    force: bool = False
    resume: bool = False
    workers: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    degenerate_mode: str | None = None
    saboteur_fraction: float = 0.25

    @property
    def behaviour(self) -> Quality:
        """The quality with its recipe (validates the quality and mode)."""
        return Quality(self.quality, self.degenerate_mode, self.saboteur_fraction)

    @property
    def dataset_id(self) -> DatasetId:
        return DatasetId(self.env, self.n_agents, self.behaviour.tag, self.version)

    def path(self) -> Path:
        return Path(self.out) if self.out is not None else self.dataset_id.path(self.fmt)

    def identity(self) -> dict[str, Any]:
        """The fields that determine the content (not where or how fast it is written)."""
        ignored = ("fmt", "out", "force", "resume", "workers")
        return {key: value for key, value in asdict(self).items() if key not in ignored}

    def validate(self) -> None:
        """Raises: UserError naming the first bad field."""
        if (self.n_episodes is None) == (self.n_steps is None):
            raise UserError("give exactly one of --episodes and --steps")
        if (self.n_episodes or self.n_steps or 0) < 1:
            raise UserError("--episodes / --steps must be at least 1")
        if self.workers < 1:
            raise UserError(f"--workers must be at least 1, got {self.workers}")
        if self.version < 1:
            raise UserError(f"--version must be at least 1, got {self.version}")
        if self.fmt not in BACKENDS:
            raise UserError(f"unknown format {self.fmt!r}; valid formats: {', '.join(BACKENDS)}")
        suffix = FORMAT_SUFFIXES[self.fmt]
        if self.out is not None and Path(self.out).suffix != suffix:
            raise UserError(f"--out for format {self.fmt} must end in {suffix}, got {self.out}")
        check_request(self.env, self.n_agents, self.options)
        if not 0.0 <= self.saboteur_fraction <= 1.0:
            raise UserError(f"--saboteur-fraction must be in [0, 1], got {self.saboteur_fraction}")
        _ = self.behaviour


class Staging:
    """Finished episodes of a collection in progress, one `.npz` file each.

    Args:
        dataset_path: final path of the dataset; staging lives at `<dataset_path>.partial/`.
    """

    def __init__(self, dataset_path: Path) -> None:
        self.root = Path(dataset_path).with_name(Path(dataset_path).name + ".partial")
        self._lengths: dict[int, int] = {}

    def _file(self, index: int) -> Path:
        return self.root / f"episode_{index:06d}.npz"

    def start(self, identity: dict[str, Any], *, resume: bool, force: bool) -> None:
        """Create the staging, or reopen it to resume the same request.

        Raises:
            UserError: an interrupted collection exists and neither resume nor force was given, or
                resume was asked for a collection made with other arguments.
        """
        request_file = self.root / "request.json"
        if self.root.exists():
            if resume:
                if not self.holds(identity):
                    staged = json.loads(request_file.read_text()) if request_file.exists() else None
                    raise UserError(
                        f"cannot resume {self.root}: it was started with other arguments "
                        f"({staged}); drop --resume and pass --force to start over"
                    )
            elif force:
                shutil.rmtree(self.root)
            else:
                raise UserError(
                    f"an interrupted collection exists at {self.root}; "
                    "pass --resume to continue it or --force to start over"
                )
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob("*.tmp*"):
            leftover.unlink()
        if not request_file.exists():
            tmp = request_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(identity, indent=2))
            os.replace(tmp, request_file)

    def holds(self, identity: dict[str, Any]) -> bool:
        """Whether this staging exists and was started for the request of `identity`."""
        request_file = self.root / "request.json"
        if not request_file.exists():
            return False
        return json.loads(request_file.read_text()) == json.loads(json.dumps(identity))

    def done(self) -> list[int]:
        """Indices of the episodes already staged."""
        return sorted(int(p.stem.split("_")[1]) for p in self.root.glob("episode_*.npz"))

    def save(self, index: int, episode: Episode) -> None:
        tmp = self.root / f"episode_{index:06d}.tmp.npz"
        np.savez(tmp, **episode.arrays())
        os.replace(tmp, self._file(index))
        emit("episode-staged", index)

    def episode(self, index: int) -> Episode:
        with np.load(self._file(index), allow_pickle=False) as archive:
            return Episode(**{name: archive[name] for name in archive.files})

    def __len__(self) -> int:
        return len(self.done())

    def length(self, index: int) -> int:
        if index not in self._lengths:
            with np.load(self._file(index), allow_pickle=False) as archive:
                self._lengths[index] = len(archive["actions"])
        return self._lengths[index]

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# Worker processes build their env and policy once, then play episodes by index.
_WORKER: dict[str, Any] = {}


def _worker_start(env: str, n_agents: int, quality: Quality, options: dict[str, Any]) -> None:
    built = make_env(env, n_agents, **options)
    _WORKER.update(env=built, policy=make_policy(quality, built))


def _worker_play(dataset_path: str, collection_seed: int, index: int) -> tuple[int, int, float]:
    episode = rollout_episode(
        _WORKER["env"], _WORKER["policy"], episode_seed(collection_seed, index), index
    )
    Staging(Path(dataset_path)).save(index, episode)
    return index, episode.length, episode.team_return()


def _play_episodes(
    request: CollectRequest,
    staging: Staging,
    env: Any,
    policy: BehaviourPolicy,
    on_episode: EpisodeCallback | None,
) -> int:
    """Stage episodes until the request is met; return how many episodes the dataset holds.

    Episodes are started in index order; in steps mode the dataset is the shortest prefix of
    episodes whose lengths reach `n_steps`, so extra episodes finished by other workers are dropped.
    """
    done = set(staging.done())
    lengths = {i: staging.length(i) for i in done}

    def needed() -> int | None:
        """How many episodes the dataset holds, once the staged ones decide it (else None)."""
        if request.n_episodes is not None:
            return (
                request.n_episodes if all(i in lengths for i in range(request.n_episodes)) else None
            )
        total, index = 0, 0
        while index in lengths:
            total += lengths[index]
            index += 1
            if total >= request.n_steps:
                return index
        return None

    def next_indices() -> Any:
        index = 0
        while True:
            if request.n_episodes is not None and index >= request.n_episodes:
                return
            if index not in done:
                yield index
            index += 1

    def record(index: int, length: int, team_return: float) -> None:
        lengths[index] = length
        if on_episode is not None:
            on_episode(index, length, team_return)

    todo = next_indices()
    if request.workers == 1:
        while needed() is None:
            index = next(todo)
            episode = rollout_episode(env, policy, episode_seed(request.seed, index), index)
            staging.save(index, episode)
            record(index, episode.length, episode.team_return())
        return needed()
    with ProcessPoolExecutor(
        max_workers=request.workers,
        mp_context=get_context("spawn"),
        initializer=_worker_start,
        initargs=(request.env, request.n_agents, request.behaviour, request.options),
    ) as pool:
        in_flight: set = set()
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < 2 * request.workers and needed() is None:
                index = next(todo, None)
                if index is None:
                    exhausted = True
                    break
                in_flight.add(pool.submit(_worker_play, str(request.path()), request.seed, index))
            if not in_flight:
                break
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                record(*future.result())
    return needed()


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape the data, and the git commit when known."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for name in ("pettingzoo", "supersuit", "gymnasium", "numpy", "h5py", "zarr", "ale-py"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    versions["marl-offline-coordination"] = __version__
    versions["git_commit"] = git_commit()
    return versions


def space_dict(space: Any) -> dict[str, Any]:
    """A JSON-ready description of a gymnasium space."""
    if hasattr(space, "n"):
        return {"type": "Discrete", "n": int(space.n)}
    return {"type": type(space).__name__, "shape": list(space.shape), "dtype": str(space.dtype)}


def quality_recipe(request: CollectRequest, policy: BehaviourPolicy) -> dict[str, Any]:
    """The `quality` block of dataset metadata: how the behaviour was made."""
    behaviour = request.behaviour
    recipe: dict[str, Any] = {"name": behaviour.name, "tag": behaviour.tag}
    if behaviour.name == "degenerate":
        recipe["mode"] = behaviour.mode
        if behaviour.mode == "saboteur":
            recipe["fraction"] = behaviour.saboteur_fraction
        if behaviour.mode == "collapsed":
            recipe["action"] = behaviour.collapsed_action
    if behaviour.name == "medium":
        recipe["epsilon"] = policy.spec()["epsilon"]
        recipe["calibration"] = medium_recipe(request.env, request.n_agents)
    return recipe


def collect(request: CollectRequest, on_episode: EpisodeCallback | None = None) -> Path:
    """Collect a dataset and write it atomically (see the module docstring).

    Args:
        request: what to collect.
        on_episode: called after each staged episode with (index, length, team return).

    Returns:
        The path of the finished dataset.

    Raises:
        UserError: bad env, agent count, quality, format or options; neither or both of
            episodes/steps; an existing dataset without `force`; an interrupted collection without
            `resume` or `force`.
    """
    request.validate()
    path = request.path()
    if path.exists() and not request.force:
        staging = Staging(path)
        if request.resume and staging.holds(request.identity()):
            # Killed after the dataset was renamed into place, before its staging was removed:
            # the dataset is this very collection, finished.
            staging.remove()
            return path
        raise UserError(f"{path} already exists; pass --force to replace it")
    env = make_env(request.env, request.n_agents, **request.options)
    policy = make_policy(request.behaviour, env)  # fails early: unknown quality, no recipe
    try:
        staging = Staging(path)
        staging.start(request.identity(), resume=request.resume, force=request.force)
        emit("started")
        n_episodes = _play_episodes(request, staging, env, policy, on_episode)
        source = EpisodeStats(staging, n_episodes)
        agent = env.possible_agents[0]
        reference = reference_scores(request.env, request.n_agents)

        def metadata() -> dict[str, Any]:
            return {
                "format_version": FORMAT_VERSION,
                "dataset_id": str(request.dataset_id),
                "version": request.version,
                "env": env.record,
                "packages": package_versions(),
                "n_agents": request.n_agents,
                "agent_ids": list(env.possible_agents),
                "observation_space": space_dict(env.observation_space(agent)),
                "action_space": space_dict(env.action_space(agent)),
                "state_space": None if env.state_space is None else space_dict(env.state_space),
                "view_radius": env.view_radius,
                "policy": policy.spec(),
                "quality": quality_recipe(request, policy),
                "seed": request.seed,
                "episode_seeds": [episode_seed(request.seed, i) for i in range(n_episodes)],
                **(summary := source.summary()),
                "reference_scores": reference,
                "normalized_score": None
                if reference is None
                else normalized_score(request.env, request.n_agents, summary["stats"]["mean"]),
                "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            }

        write_dataset(path, request.fmt, source, metadata)
        staging.remove()
    finally:
        env.close()
    return path
