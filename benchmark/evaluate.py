"""Online evaluation of a training run at any env and team size.

`load_run` rebuilds the algorithm from a run directory (config.json + a checkpoint); `RunPolicy`
wraps it as a datagen `BehaviourPolicy`, so evaluation plays episodes through datagen's own
`evaluate` and `play` — the same episode loop and seeding as collection. The algorithm's networks
normalise observations themselves, with the statistics of its training data, so the policy passes
raw observations exactly as the env returns them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from algos.base import Algorithm
from algos.data import DataSpec
from algos.networks import check_obs_shape
from algos.registry import build_algorithm
from algos.train import LATEST, load_checkpoint, read_run_config
from datagen.dataset import open_dataset
from datagen.envs import check_request
from datagen.errors import UserError
from datagen.policies import TeamAction
from datagen.policies.evaluate import Evaluation, evaluate
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


class RunPolicy:
    """A trained algorithm acting as a datagen behaviour policy, for any team size.

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
        self.generator.manual_seed(int(rng.integers(2**63 - 1)))

    def act(
        self, env: Any, obs: np.ndarray, alive: np.ndarray, rng: np.random.Generator
    ) -> TeamAction:
        actions = self.algo.act(obs, alive, None, self.greedy, self.generator).cpu().numpy()
        n_actions = self.algo.spec.n_actions
        probs = np.zeros((len(actions), n_actions), dtype=np.float32)
        probs[np.arange(len(actions)), actions] = 1.0
        return TeamAction(actions.astype(np.int64), probs, np.zeros(len(actions), dtype=np.int8))

    def spec(self) -> dict[str, Any]:
        return {"name": f"learned-{self.algo.name}", "labels": list(self.labels)}


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
    metrics: dict[str, float] = field(default_factory=dict)

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
            "mean": self.mean,
            "std": self.std,
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
) -> tuple[Evaluation, float | None]:
    """Play `n_episodes` of `algo` on `env` with `n_agents` agents (episode i seeded from
    (seed, i) as in datagen); returns the evaluation and the normalised mean score.

    Raises:
        UserError: a bad env request, or an env whose observations the model cannot read.
    """
    options = dict(options or {})
    check_request(env, n_agents, options)

    def make(built: Any) -> RunPolicy:
        agent = built.possible_agents[0]
        check_obs_shape(
            algo.spec, built.observation_space(agent).shape, f"{env} with {n_agents} agents"
        )
        n_actions = int(built.action_space(agent).n)
        if n_actions != algo.spec.n_actions:
            raise UserError(
                f"{env} has {n_actions} actions, the model was trained on {algo.spec.n_actions}"
            )
        return RunPolicy(algo, greedy)

    result = evaluate(env, n_agents, make, n_episodes, seed=seed, options=options)
    return result, normalized(env, n_agents, result.mean)


def evaluate_run(
    run_dir: Path | str,
    env: str | None = None,
    n_agents: int | None = None,
    n_episodes: int = 10,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    checkpoint: str = LATEST,
    greedy: bool = True,
) -> RunEvaluation:
    """Evaluate a run online.

    Args:
        run_dir: the run directory.
        env: env name (default: the run's env).
        n_agents: team size (default: the run's largest training team).
        n_episodes: episodes.
        seed: evaluation seed.
        options: env options overriding the run's (default: exactly the run's options, so the
            env is the one the data came from, at any team size).
        checkpoint: a file under `checkpoints/`.
        greedy: greedy actions (default) or sampled.

    Raises:
        UserError: not a run, a bad env request, or observations the model cannot read.
    """
    run = load_run(run_dir, checkpoint)
    run_env = run.config["env"]
    env = env or run_env["name"]
    n_agents = n_agents or max(run_env["n_agents"])
    merged = {**run_env["options"], **(options or {})} if env == run_env["name"] else options
    evaluation, score = evaluate_algorithm(
        run.algo, env, n_agents, n_episodes, seed, merged or {}, greedy
    )
    return RunEvaluation(
        run_dir=Path(run_dir),
        algo=run.config["algo"],
        step=run.step,
        env=env,
        n_agents=n_agents,
        options=merged or {},
        evaluation=evaluation,
        normalized_score=score,
    )


def training_evaluator(
    datasets: list[str], n_episodes: int, seed: int = 0
) -> Callable[[Algorithm], dict[str, float]]:
    """An `eval_fn` for `algos.train.fit`: play the datasets' env at their largest team size.

    Returns:
        A function of the algorithm returning `return_mean`, `return_std` and, when reference
        scores exist for that team size, `normalized_score`.
    """
    with open_dataset(datasets[0]) as first:
        env, options = first.metadata["env"]["name"], first.metadata["env"]["options"]
    n_agents = 0
    for dataset_id in datasets:
        with open_dataset(dataset_id) as dataset:
            n_agents = max(n_agents, dataset.n_agents)

    def evaluate_now(algo: Algorithm) -> dict[str, float]:
        result, score = evaluate_algorithm(algo, env, n_agents, n_episodes, seed, options)
        values = {"return_mean": result.mean, "return_std": result.std}
        if score is not None:
            values["normalized_score"] = score
        return values

    return evaluate_now
