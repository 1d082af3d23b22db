"""Online evaluation of a training run at any env and team size.

`load_run` rebuilds the algorithm from a run directory (config.json + a checkpoint). Evaluation
plays all episodes of a team size as one batch (`datagen.policies.evaluate.evaluate_batched`): each
step, one forward pass for every agent of every running episode (`LearnedActors`), on pursuit's
vectorised engine or on a batch of envs, optionally across worker processes. Episode seeds are
datagen's, and `RunPolicy` wraps the algorithm as a datagen `BehaviourPolicy` for one-at-a-time
play (`datagen.policies.evaluate.evaluate`): the two give the same returns (tested). The
algorithm's networks normalise observations themselves, with the statistics of its training data,
so raw observations are passed exactly as the env returns them.

Both ways pass the env's action masks to `act` (`env_action_masks`); none of the current envs has
any, so today they pass None (every action legal). Both also pass every agent's current position
(`env_positions`, or the batch's `positions()`, pursuit's vectorised engine included): a
communicating algorithm chooses from them whom each agent hears; decentralised ones ignore them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from algos.base import Algorithm
from algos.data import DataSpec
from algos.networks import check_obs_shape
from algos.registry import build_algorithm
from algos.train import LATEST, load_checkpoint, read_run_config
from datagen.dataset import open_dataset
from datagen.envs import check_request
from datagen.envs.wrappers import TeamEnv
from datagen.errors import UserError
from datagen.policies import TeamAction
from datagen.policies.evaluate import Evaluation, evaluate_batched
from datagen.policies.records import normalized_score, reference_scores


@dataclass
class LoadedRun:
    """A run directory's algorithm, restored.

    Attributes:
        run_dir: the run directory.
        config: its config.json.
        algo: the algorithm with the checkpoint's parameters.
        step: the update count of the checkpoint.
    """

    run_dir: Path
    config: dict[str, Any]
    algo: Algorithm
    step: int


def load_run(run_dir: Path | str, checkpoint: str = LATEST, device: str = "cpu") -> LoadedRun:
    """Rebuild the algorithm of a run from config.json and a checkpoint.

    Args:
        run_dir: a run directory written by `algos.train.fit`.
        checkpoint: a file name under `checkpoints/` (default: latest.pt).
        device: where the networks go.

    Raises:
        UserError: not a run directory, or no such checkpoint.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    spec = DataSpec.from_json(config["spec"])
    algo = build_algorithm(config["algo"], spec, config["config"], config["seed"], device)
    state = load_checkpoint(run_dir / "checkpoints" / checkpoint, device)
    algo.load_state_dict(state["algorithm"])
    return LoadedRun(run_dir, config, algo, int(state["step"]))


def env_action_masks(env: Any) -> np.ndarray | None:
    """The legal actions of `env`'s agents now, by PettingZoo's convention, or None without masks.

    PettingZoo gives an agent's mask as `infos[agent]["action_mask"]` or, with dict observations,
    as the observation's `"action_mask"` entry. The rollouts that evaluation plays
    (`datagen.rollout`) hand a policy the env but not the step's infos, so the masks are read
    where the env keeps them: its base env (`env.unwrapped`, the AEC env a PettingZoo parallel
    env is built on) holds the latest `infos` and answers `observe(agent)`.

    Args:
        env: a `TeamEnv` (or any PettingZoo env) with discrete actions.

    Returns:
        (N, A) bool in `possible_agents` order, or None when no agent has a mask (every env of
        the suite today). An agent without a mask, or whose mask allows nothing (dead, or not its
        turn: the env ignores its action), gets every action.
    """
    base = env.unwrapped
    infos = getattr(base, "infos", None) or {}
    masks = []
    for agent in env.possible_agents:
        mask = infos.get(agent, {}).get("action_mask")
        space = base.observation_space(agent)
        if mask is None and isinstance(space, spaces.Dict) and "action_mask" in space.spaces:
            mask = base.observe(agent)["action_mask"]
        masks.append(mask)
    if all(mask is None for mask in masks):
        return None
    legal = np.ones((len(masks), int(env.action_space(env.possible_agents[0]).n)), dtype=bool)
    for row, mask in zip(legal, masks, strict=True):
        if mask is not None and np.any(mask):
            row[:] = np.asarray(mask, dtype=bool)
    return legal


def env_positions(env: Any) -> np.ndarray | None:
    """Every agent's position now, (N, 2) float32 in `possible_agents` order, as a `TeamEnv`
    reports it (`TeamEnv.positions`); None for any other env (a bare PettingZoo env), with which
    a communicating algorithm acts only when every agent hears the whole team."""
    return env.positions() if isinstance(env, TeamEnv) else None


def episode_generator(rng: np.random.Generator, device: torch.device) -> torch.Generator:
    """The torch generator a sampling policy draws its actions from in one episode, seeded from
    the episode's numpy generator (`numpy.random.default_rng(episode seed)`, fresh)."""
    return torch.Generator(device=device).manual_seed(int(rng.integers(2**63 - 1)))


class RunPolicy:
    """A trained algorithm acting as a datagen behaviour policy, for any team size, within the
    env's action masks (`env_action_masks`).

    Args:
        algo: the algorithm.
        greedy: take the best action (default); else sample from the algorithm's softmax with a
            torch generator seeded from the episode's `rng`, so an episode replays from its seed.
    """

    labels = ("learned",)

    def __init__(self, algo: Algorithm, greedy: bool = True) -> None:
        self.algo = algo
        self.greedy = greedy
        self.generator = torch.Generator(device=algo.device)

    def reset(self, env: Any, rng: np.random.Generator) -> None:
        self.generator = episode_generator(rng, self.algo.device)

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        masks = env_action_masks(env)
        actions = self.algo.act(
            obs, alive, masks, self.greedy, self.generator, positions=env_positions(env)
        )
        actions = actions.cpu().numpy()
        n_actions = self.algo.spec.n_actions
        probs = np.zeros((len(actions), n_actions), dtype=np.float32)
        probs[np.arange(len(actions)), actions] = 1.0
        return TeamAction(actions.astype(np.int64), probs, np.zeros(len(actions), dtype=np.int8))

    def spec(self) -> dict[str, Any]:
        return {"name": f"learned-{self.algo.name}", "labels": list(self.labels)}


def check_env_fits(algo: Algorithm, env: Any, where: str) -> None:
    """The model reads the env's observations and acts in its action space.

    Raises:
        UserError: naming the mismatch.
    """
    agent = env.possible_agents[0]
    check_obs_shape(algo.spec, env.observation_space(agent).shape, where)
    n_actions = int(env.action_space(agent).n)
    if n_actions != algo.spec.n_actions:
        raise UserError(
            f"{where} has {n_actions} actions, the model was trained on {algo.spec.n_actions}"
        )


class LearnedActors:
    """Builds the batch actor of a trained algorithm for an env batch (`evaluate_batched`): every
    running episode's team in one forward pass; sampled actions (greedy False) draw, episode by
    episode, from the generator `RunPolicy` would use, so a batch plays what one-at-a-time
    evaluation plays; each episode's action masks come from its env (`env_action_masks`) and its
    agents' positions from the batch, as they do for `RunPolicy`. Picklable: the algorithm
    travels to worker processes as its state.

    Args:
        algo: the algorithm.
        greedy: greedy actions, else sampled.
        where: the env and team size, for errors.
    """

    def __init__(self, algo: Algorithm, greedy: bool, where: str) -> None:
        self.algo, self.greedy, self.where = algo, greedy, where

    def __call__(self, batch: Any, seeds: list[int]) -> Callable[..., np.ndarray]:
        check_env_fits(self.algo, batch, self.where)
        generators = None
        if not self.greedy:
            rngs = (np.random.default_rng(seed) for seed in seeds)
            generators = [episode_generator(rng, self.algo.device) for rng in rngs]
        # A batch of `TeamEnv`s has its envs; pursuit's vectorised engine has none (and no masks).
        envs = getattr(batch, "envs", None)

        def act(
            obs: np.ndarray, alive: np.ndarray, positions: np.ndarray, rows: np.ndarray
        ) -> np.ndarray:
            chosen = None if generators is None else [generators[b] for b in rows]
            masks = None
            found = [] if envs is None else [env_action_masks(envs[b]) for b in rows]
            if any(mask is not None for mask in found):
                every = np.ones((alive.shape[1], self.algo.spec.n_actions), dtype=bool)
                masks = np.stack([every if mask is None else mask for mask in found])  # (R, N, A)
            with torch.no_grad():
                actions = self.algo.act(obs, alive, masks, self.greedy, chosen, positions=positions)
                return actions.cpu().numpy()

        return act

    def __getstate__(self) -> dict[str, Any]:
        algo = self.algo
        rebuild = (algo.name, algo.spec, algo.config, algo.seed, str(algo.device))
        return {
            "rebuild": rebuild,
            "state": algo.state_dict(),
            "greedy": self.greedy,
            "where": self.where,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        name, spec, config, seed, device = state["rebuild"]
        self.algo = build_algorithm(name, spec, config, seed, device)
        self.algo.load_state_dict(state["state"])
        self.greedy, self.where = state["greedy"], state["where"]


@dataclass
class RunEvaluation:
    """Online returns of a run at one env and team size.

    Attributes:
        run_dir: the run evaluated.
        algo: algorithm name.
        step: the checkpoint's update count.
        env: env name.
        n_agents: team size.
        options: env options.
        evaluation: every episode's return, length and env metrics.
        normalized_score: 100 × (mean − random) / (expert − random) at this team size, or None
            without reference scores for it.
    """

    run_dir: Path
    algo: str
    step: int
    env: str
    n_agents: int
    options: dict[str, Any]
    evaluation: Evaluation
    normalized_score: float | None = None

    @property
    def mean(self) -> float:
        return self.evaluation.mean

    @property
    def std(self) -> float:
        return self.evaluation.std

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "algo": self.algo,
            "step": self.step,
            "env": self.env,
            "n_agents": self.n_agents,
            "options": self.options,
            "episodes": len(self.evaluation.returns),
            "team_return_mean": self.mean,
            "team_return_std": self.std,
            "normalized_score": self.normalized_score,
            "returns": self.evaluation.returns,
            **{f"mean_{k}": v for k, v in self.evaluation.metric_means().items()},
        }


def normalized(env: str, n_agents: int, team_return: float) -> float | None:
    """The normalised score of a return (datagen's reference scores), or None without them."""
    if reference_scores(env, n_agents) is None:
        return None
    return normalized_score(env, n_agents, team_return)


def evaluate_algorithm(
    algo: Algorithm,
    env: str,
    n_agents: int,
    n_episodes: int,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    greedy: bool = True,
    workers: int = 1,
) -> tuple[Evaluation, float | None]:
    """Play `n_episodes` of `algo` on `env` with `n_agents` agents as one batch (episode i seeded
    from (seed, i) as in datagen; `workers` processes share the episodes); returns the
    evaluation and the normalised mean score.

    Raises:
        UserError: a bad env request, or an env whose observations the model cannot read.
    """
    options = dict(options or {})
    check_request(env, n_agents, options)
    actors = LearnedActors(algo, greedy, f"{env} with {n_agents} agents")
    result = evaluate_batched(env, n_agents, actors, n_episodes, seed, options, workers)
    return result, normalized(env, n_agents, result.mean)


def evaluate_algorithm_sizes(
    algo: Algorithm,
    env: str,
    sizes: list[int],
    n_episodes: int,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    greedy: bool = True,
    workers: int = 1,
) -> dict[int, tuple[Evaluation, float | None]]:
    """`evaluate_algorithm` of one model at every team size of `sizes`, by size."""
    return {
        n: evaluate_algorithm(algo, env, n, n_episodes, seed, options, greedy, workers)
        for n in sizes
    }


def evaluate_run(
    run_dir: Path | str,
    env: str | None = None,
    n_agents: int | list[int] | None = None,
    n_episodes: int = 10,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    checkpoint: str = LATEST,
    greedy: bool = True,
    workers: int = 1,
) -> list[RunEvaluation]:
    """Evaluate a run online at one or several team sizes (the checkpoint is loaded once).

    Args:
        run_dir: the run directory.
        env: env name (default: the run's env).
        n_agents: a team size or a list of them (default: the run's largest training team).
        n_episodes: episodes per team size.
        seed: evaluation seed.
        options: env options overriding the run's (default: exactly the run's options, so the
            env is the one the data came from, at any team size).
        checkpoint: a file under `checkpoints/`.
        greedy: greedy actions (default) or sampled.
        workers: processes sharing each size's episodes.

    Returns:
        One evaluation per team size, in the order given.

    Raises:
        UserError: not a run, a bad env request, or observations the model cannot read.
    """
    run = load_run(run_dir, checkpoint)
    run_env = run.config["env"]
    env = env or run_env["name"]
    sizes = [n_agents] if isinstance(n_agents, int) else list(n_agents or [])
    sizes = sizes or [max(run_env["n_agents"])]
    merged = {**run_env["options"], **(options or {})} if env == run_env["name"] else options
    results = evaluate_algorithm_sizes(
        run.algo, env, sizes, n_episodes, seed, merged or {}, greedy, workers
    )
    return [
        RunEvaluation(
            run_dir=Path(run_dir),
            algo=run.config["algo"],
            step=run.step,
            env=env,
            n_agents=n,
            options=merged or {},
            evaluation=evaluation,
            normalized_score=score,
        )
        for n, (evaluation, score) in results.items()
    ]


def training_evaluator(
    datasets: list[str], n_episodes: int, seed: int = 0
) -> Callable[[Algorithm], dict[str, float]]:
    """An `eval_fn` for `algos.train.fit`: play the datasets' env at their largest team size.

    Returns:
        A function of the algorithm returning `team_return_mean`, `team_return_std` and, when
        reference scores exist for that team size, `normalized_score`.
    """
    with open_dataset(datasets[0]) as first:
        env, options = first.metadata["env"]["name"], first.metadata["env"]["options"]
    n_agents = 0
    for dataset_id in datasets:
        with open_dataset(dataset_id) as dataset:
            n_agents = max(n_agents, dataset.n_agents)

    def evaluate_now(algo: Algorithm) -> dict[str, float]:
        result, score = evaluate_algorithm(algo, env, n_agents, n_episodes, seed, options)
        values = {"team_return_mean": result.mean, "team_return_std": result.std}
        if score is not None:
            values["normalized_score"] = score
        return values

    return evaluate_now
