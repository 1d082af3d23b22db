"""Tests of the prison behaviour policies (datagen/policies/prison.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datagen.collect import CollectRequest, collect
from datagen.envs import get_spec, make_env
from datagen.errors import UserError
from datagen.policies import RandomPolicy
from datagen.policies import prison as pr
from datagen.policies.evaluate import evaluate
from datagen.policies.registry import make_policy
from tests.datagen.expert_rows import expert_rows, probs_by_observation

ENV = "prison"


def test_expert_probs_are_a_function_of_the_observation(tmp_path: Path) -> None:
    tables = [probs_by_observation(*expert_rows(ENV, n, tmp_path / f"n{n}.h5")) for n in (2, 8)]
    for table in tables:
        assert all(len(distinct) == 1 for distinct in table.values())
    shared = set(tables[0]) & set(tables[1])
    assert len(shared) >= 20  # the two team sizes meet on many observations
    assert all(tables[0][key] == tables[1][key] for key in shared)


def test_expert_reads_the_observation_only() -> None:
    env = make_env(ENV, 4)
    assert get_spec(ENV).options["include_last_wall"] is True
    policy = make_policy("expert", env)
    assert policy.spec()["privileged"] is False and policy.spec()["name"] == "expert"
    obs = np.array([[0.2, 0.0], [0.6, 0.0], [0.3, 1.0], [0.7, -1.0]], dtype=np.float32)
    decision = policy.act(None, obs, np.ones(4, dtype=bool), np.random.default_rng(0))
    # No wall yet: the nearer wall; then the wall opposite the last one.
    assert decision.actions.tolist() == [0, 2, 0, 2]
    assert decision.probs.tolist() == [[1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, 1]]
    privileged = make_policy("privileged", env)
    assert privileged.spec()["privileged"] is True
    with pytest.raises(UserError, match="include_last_wall=True"):
        make_policy("expert", make_env(ENV, 2, include_last_wall=False))


@pytest.mark.parametrize("n", [2, 8])
def test_expert_reaches_the_best_achievable_return(n: int) -> None:
    expert = evaluate(ENV, n, pr.make_expert, 3, seed=5)
    privileged = evaluate(ENV, n, pr.make_privileged, 3, seed=5)
    random = evaluate(ENV, n, lambda env: RandomPolicy(3), 3, seed=5)
    assert expert.returns == expert.metrics["best_achievable"] == privileged.returns
    assert expert.mean > 3 * random.mean


@pytest.mark.slow
def test_bc_learns_the_expert(tmp_path: Path) -> None:
    from algos.data import OfflineData
    from algos.registry import build_algorithm
    from algos.train import TrainSettings, fit
    from benchmark.evaluate import evaluate_algorithm

    n = 4
    request = CollectRequest(ENV, n, "expert", n_episodes=20, seed=1, out=tmp_path / "e.h5")
    data = OfflineData.from_datasets([collect(request)])
    algo = build_algorithm("bc", data.spec, {"hidden_size": 64}, seed=0)
    fit(algo, data, TrainSettings(2000, batch_size=256, seed=0), tmp_path / "run", progress=False)
    evaluation, score = evaluate_algorithm(algo, ENV, n, 10, seed=100)
    print(f"bc on prison n={n}: return {evaluation.mean:.2f}, normalized {score:.1f}")
    assert score >= 80
