"""Tests of the knights_archers_zombies behaviour policies (datagen/policies/).

Short episodes (`max_cycles` 300, 15 zombies spawn) keep the file fast; the full-length figures are
in the module docstring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datagen.collect import CollectRequest, collect
from datagen.dataset import Dataset
from datagen.envs import make_env
from datagen.policies import RandomPolicy
from datagen.policies import knights_archers_zombies as kaz
from datagen.policies.evaluate import evaluate
from datagen.policies.registry import make_policy
from datagen.rollout import episode_seed, play

ENV = "knights_archers_zombies"
SHORT = {"max_cycles": 300}
W, H = 1280.0, 720.0  # the screen: views hold positions divided by it
N_ZOMBIE_ROWS = 10  # the suite's max_zombies: the zombie slots are a view's last 10 rows


def _random(env):
    return RandomPolicy(env.action_space(env.possible_agents[0]).n)


def _kills(make, n: int, episodes: int) -> np.ndarray:
    result = evaluate(ENV, n, make, episodes, seed=0, options=SHORT)
    return np.array(result.metrics["zombies_killed"])


@pytest.mark.parametrize("n", [2, 4])
def test_expert_kills_far_more_than_random(n: int) -> None:
    expert = _kills(kaz.make_expert, n, 1)
    random = _kills(_random, n, 4)
    # 15 zombies spawn in 300 cycles; the expert kills all but the one or two still walking in.
    assert expert.min() >= 11
    assert expert.mean() >= 3 * random.mean() + 5


def test_adversary_kills_less_than_random() -> None:
    adversary = evaluate(ENV, 4, kaz.make_adversary, 5, seed=0, options=SHORT)
    random = evaluate(ENV, 4, _random, 5, seed=0, options=SHORT)
    assert adversary.mean < random.mean
    assert np.mean(adversary.metrics["zombies_killed"]) < np.mean(random.metrics["zombies_killed"])


@pytest.mark.parametrize(
    ("make", "name", "privileged"),
    [(kaz.make_expert, "expert", False), (kaz.make_privileged, "privileged", True)],
)
def test_controllers_are_deterministic_and_well_formed(make, name: str, privileged: bool) -> None:
    runs = []
    for _ in range(2):
        # A fresh env each time: PettingZoo's KAZ does not reset its zombie spawn timer on
        # reset(), so a reused env replays a seed only after episodes of a multiple of 20 cycles.
        env = make_env(ENV, 4, max_cycles=150)
        policy = make(env)
        actions, rewards = [], []
        for step in play(env, policy, seed=7):
            decision = step.decision
            assert decision.actions.shape == (4,)
            assert decision.actions.dtype == np.int64
            assert ((decision.actions >= 0) & (decision.actions < 6)).all()
            assert np.array_equal(decision.probs.argmax(axis=1), decision.actions)
            assert np.allclose(decision.probs.sum(axis=1), 1.0)
            actions.append(decision.actions)
            rewards.append(step.rewards)
        runs.append((np.stack(actions), np.stack(rewards)))
        env.close()
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.array_equal(runs[0][1], runs[1][1])
    assert runs[0][1].sum() > 0
    # The agents do more than wait: they turn and shoot.
    used = set(np.unique(runs[0][0]).tolist())
    assert {kaz.ATTACK, kaz.TURN_CW, kaz.TURN_CCW} <= used
    spec = policy.spec()
    assert spec["privileged"] is privileged and spec["name"] == name
    assert kaz.make_adversary(make_env(ENV, 2, **SHORT)).spec()["privileged"] is True


def test_qualities_name_the_two_controllers() -> None:
    env = make_env(ENV, 2, **SHORT)
    assert isinstance(make_policy("expert", env), kaz.KazViewExpert)
    assert isinstance(make_policy("privileged", env), kaz.KazExpert)
    env.close()


# --- The observation-only expert reads each agent's own view ----------------------------------


def _view(n_rows: int, heading: tuple[float, float], zombies: list[tuple[float, float]]):
    """A view of the archer that starts at centre (400, 610), facing `heading`, with zombies at
    the given centres, in the env's layout: row 0 the agent, the zombie slots last."""
    view = np.zeros((n_rows, 5), dtype=np.float32)
    side = round(32 * (abs(heading[0]) + abs(heading[1])))  # the rotated image's rect
    corner = np.array([400 - side // 2, 610 - side // 2], dtype=np.float64)
    view[0] = [0.0, corner[0] / W, corner[1] / H, *heading]
    for slot, (x, y) in enumerate(zombies):
        rel = (np.array([x - 14, y - 15]) - corner) / np.array([W, H])
        view[n_rows - N_ZOMBIE_ROWS + slot] = [np.hypot(*rel) / np.sqrt(2), *rel, 0.0, 1.0]
    return view


def _act(policy, views: np.ndarray) -> np.ndarray:
    """The expert's (N, A) probs for a team of views, with no env, nobody alive, no rng state."""
    decision = policy.act(None, views, np.zeros(len(views), dtype=bool), np.random.default_rng(0))
    return decision.probs


def test_expert_acts_on_each_view_alone() -> None:
    env = make_env(ENV, 2, **SHORT)
    policy = kaz.make_expert(env)
    env.close()
    assert policy.spec()["privileged"] is False
    rows = 1 + 1 + 2 * 1 + 10 + N_ZOMBIE_ROWS  # n = 2: agent, 1 archer + 2 x 1 knight, arrows
    up, right = (0.0, -1.0), (1.0, 0.0)
    views = np.stack(
        [
            _view(rows, up, [(400, 300)]),  # straight above: fire
            _view(rows, up, [(700, 300), (150, 520)]),  # the lowest is left: turn CCW
            _view(rows, up, [(800, 200)]),  # up and right: turn CW
            _view(rows, right, [(700, 580)]),  # right, walking into the arrow's path: fire
            _view(rows, right, []),  # no zombie: face up
            _view(rows, up, []),  # no zombie, facing up: wait
            np.zeros((rows, 5), dtype=np.float32),  # dead: all zeros
        ]
    )
    expected = [kaz.ATTACK, kaz.TURN_CCW, kaz.TURN_CW, kaz.ATTACK, kaz.TURN_CCW, kaz.NOTHING]
    expected.append(kaz.NOTHING)
    probs = _act(policy, views)
    assert probs.argmax(axis=1).tolist() == expected
    # One agent at a time or the whole team: the same distribution (no agent index, no team).
    one_by_one = np.concatenate([_act(policy, views[i : i + 1]) for i in range(len(views))])
    assert np.array_equal(one_by_one, probs)
    assert np.array_equal(_act(policy, views[::-1]), probs[::-1])


def _expert_rows(n_agents: int, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """(views (R, rows, 5), behaviour_probs (R, 6)) of every live agent-step of a freshly
    collected expert dataset (2 episodes of 200 cycles)."""
    request = CollectRequest(
        ENV, n_agents, "expert", n_episodes=2, seed=3, out=out, options={"max_cycles": 200}
    )
    with Dataset(collect(request)) as dataset:
        data = dataset.transitions()
    alive = data.alive.reshape(-1)
    obs = data.obs.reshape(-1, *data.obs.shape[2:])[alive]
    return obs, data.behaviour_probs.reshape(-1, data.behaviour_probs.shape[-1])[alive]


def _probs_by(keys: list[bytes], probs: np.ndarray) -> dict[bytes, set[bytes]]:
    table: dict[bytes, set[bytes]] = {}
    for key, p in zip(keys, probs, strict=True):
        table.setdefault(key, set()).add(p.tobytes())
    return table


def _own_and_zombie_rows(views: np.ndarray) -> list[bytes]:
    """The part of a view laid out alike at every team size: the agent's row and the zombies'."""
    part = np.concatenate([views[:, :1], views[:, -N_ZOMBIE_ROWS:]], axis=1)
    return [np.ascontiguousarray(row).tobytes() for row in part]


def _as_team_of_four(views: np.ndarray) -> np.ndarray:
    """n = 2 views (1 archer, 1 knight) laid out as views of a team of 4 whose second archer and
    second knight are dead: their rows and their swords' rows are zeros, everything else the same.
    n = 2 rows: agent, archer, knight, sword, 10 arrows, 10 zombies; n = 4: agent, 2 archers,
    2 knights, 2 swords, 10 arrows, 10 zombies."""
    four = np.zeros((len(views), 27, 5), dtype=views.dtype)
    four[:, 0:2] = views[:, 0:2]  # the agent, archer_0
    four[:, 3] = views[:, 2]  # knight_0
    four[:, 5] = views[:, 3]  # knight_0's sword
    four[:, 7:] = views[:, 4:]  # arrows and zombies
    return four


def test_expert_probs_are_a_function_of_the_view(tmp_path: Path) -> None:
    (views2, probs2), (views4, probs4) = (_expert_rows(n, tmp_path / f"n{n}.h5") for n in (2, 4))
    # Within a team size: identical views, identical distributions.
    for views, probs in ((views2, probs2), (views4, probs4)):
        table = _probs_by([np.ascontiguousarray(v).tobytes() for v in views], probs)
        assert all(len(distinct) == 1 for distinct in table.values())
        # ...and the distribution depends on the agent's own row and the zombies' rows only.
        table = _probs_by(_own_and_zombie_rows(views), probs)
        assert all(len(distinct) == 1 for distinct in table.values())
    # Across team sizes: views never coincide byte for byte (a team of 4 has more rows), but the
    # rows the expert reads do, often, and carry the same distribution.
    tables = [
        _probs_by(_own_and_zombie_rows(v), p) for v, p in ((views2, probs2), (views4, probs4))
    ]
    shared = set(tables[0]) & set(tables[1])
    assert len(shared) >= 20
    assert all(tables[0][key] == tables[1][key] for key in shared)
    # An n = 2 view laid out as a team of 4 with two dead members: the same distribution.
    env = make_env(ENV, 4, **SHORT)
    policy = kaz.make_expert(env)
    env.close()
    assert np.array_equal(_act(policy, _as_team_of_four(views2)), probs2)


class _Switch:
    """The adversary for the first `switch` steps (knights walk into zombies and die), then the
    expert: the expert must carry on with dead team-mates."""

    labels = ("switch",)

    def __init__(self, env, switch: int) -> None:
        self.first = kaz.make_adversary(env)
        self.then = kaz.make_expert(env)
        self.switch = switch
        self.dead_at_switch = 0

    def reset(self, env, rng) -> None:
        self.t = 0

    def act(self, env, obs, alive, rng):
        self.t += 1
        if self.t == self.switch:
            self.dead_at_switch = int((~alive).sum())
        return (self.first if self.t < self.switch else self.then).act(env, obs, alive, rng)


def test_expert_plays_on_with_dead_agents() -> None:
    env = make_env(ENV, 4, **SHORT)
    policy = _Switch(env, switch=60)
    total = 0.0
    last_alive = None
    for step in play(env, policy, seed=episode_seed(0, 0)):
        total += float(step.rewards.sum())
        # Dead agents' actions are still well formed.
        assert ((step.decision.actions >= 0) & (step.decision.actions < 6)).all()
        last_alive = step.next_alive
    assert policy.dead_at_switch >= 1
    assert not last_alive.all()
    assert total >= 8  # the archers still clear most of the 15 zombies
    env.close()


def test_zombies_killed_counts_every_kill() -> None:
    """The metric equals the zombies that vanished (only a weapon removes a zombie) and is never
    below the team return."""
    env = make_env(ENV, 4, **SHORT)
    raw = env.unwrapped
    for episode, make in enumerate([kaz.make_expert, _random]):
        policy = make(env)
        vanished, total, before = 0, 0.0, set()
        for step in play(env, policy, seed=episode_seed(1, episode)):
            now = {id(zombie) for zombie in raw.zombie_list}
            vanished += len(before - now)
            before = now
            total += float(step.rewards.sum())
        killed = kaz.episode_metrics(env)["zombies_killed"]
        assert killed == vanished
        assert total <= killed <= total + 2
    env.close()


def test_metric_withheld_when_the_zombie_cap_can_fill() -> None:
    env = make_env(ENV, 2, max_cycles=50, max_zombies=3)
    for _ in play(env, _random(env), seed=0):
        pass
    assert kaz.episode_metrics(env) == {}
    assert kaz.zombies_spawned(env.unwrapped) is None
    env.close()


@pytest.mark.slow
def test_bc_learns_the_expert(tmp_path: Path) -> None:
    """Plain BC on 20 expert episodes at n = 4 plays at >= 80 normalized at n = 4."""
    from algos.data import OfflineData
    from algos.registry import build_algorithm
    from algos.train import TrainSettings, fit
    from benchmark.evaluate import evaluate_algorithm

    n = 4
    request = CollectRequest(ENV, n, "expert", n_episodes=20, seed=1, out=tmp_path / "e.h5")
    data = OfflineData.from_datasets([collect(request)])
    algo = build_algorithm("bc", data.spec, {"hidden_size": 64}, seed=0)
    fit(algo, data, TrainSettings(1000, batch_size=256, seed=0), tmp_path / "run", progress=False)
    evaluation, score = evaluate_algorithm(algo, ENV, n, 10, seed=100)
    kills = np.mean(evaluation.metrics["zombies_killed"])
    print(
        f"bc on {ENV} n={n}: return {evaluation.mean:.2f}, {kills:.1f} kills, "
        f"normalized {score:.1f}"
    )
    assert score >= 80
