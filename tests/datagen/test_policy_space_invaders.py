"""Tests of the space_invaders behaviour policies (datagen/policies/space_invaders.py): the RAM map
against the screen, the planning helpers on hand-made cases, and the policies' returns."""

from __future__ import annotations

import numpy as np
import pytest

from datagen.envs import make_env
from datagen.policies import RandomPolicy
from datagen.policies.evaluate import evaluate
from datagen.policies.registry import make_policy
from datagen.policies.space_invaders import (
    ALIEN_HEIGHT,
    ALIEN_WIDTH,
    PLAYER_MAX_X,
    PLAYER_TOP,
    ale_of,
    assign_columns,
    first_hit,
    make_adversary,
    make_expert,
    read_state,
    reflect,
    safest_move,
    team_score,
)

ALIEN_COLOUR = (134, 134, 29)
PLAYER_COLOURS = ((50, 132, 50), (162, 134, 56))
BULLET_COLOUR = (142, 142, 142)


def _mask(screen: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return (screen == np.array(colour, dtype=np.uint8)).all(axis=-1)


@pytest.fixture(scope="module")
def frames():
    """(RAM, screen) pairs of the two-player game, frame by frame, under random play."""
    env = make_env("space_invaders", 2, seed=3)
    env.reset()
    raw, ale = env.unwrapped, ale_of(env)
    rng = np.random.default_rng(0)
    out = []
    try:
        for frame in range(1200):
            if frame % 4 == 0:
                actions = {agent: int(rng.integers(6)) for agent in raw.possible_agents}
            raw.step(actions)
            if ale.game_over():
                break
            out.append((ale.getRAM().copy(), ale.getScreenRGB().copy()))
    finally:
        env.close()
    return out


def test_ram_aliens_match_the_screen(frames) -> None:
    checked = 0
    for ram, screen in frames[::7]:
        state = read_state(ram)
        aliens = _mask(screen, ALIEN_COLOUR)
        aliens[:25] = False  # the scores share the colour
        predicted = np.zeros_like(aliens)
        for row, column in zip(*np.nonzero(state["alive"]), strict=True):
            top, left = state["rows_top"][row], state["columns_left"][column]
            box = aliens[top : top + ALIEN_HEIGHT, left : left + ALIEN_WIDTH]
            assert box.any(), f"no alien drawn at row {row}, column {column}"
            predicted[top : top + ALIEN_HEIGHT, left : left + ALIEN_WIDTH] = True
        # Pixels outside the boxes are the explosion of an alien just shot: one alien's worth.
        assert (aliens & ~predicted).sum() <= 2 * ALIEN_WIDTH * ALIEN_HEIGHT
        checked += 1
    assert checked > 100


def test_ram_players_match_the_screen(frames) -> None:
    matched = 0
    for ram, screen in frames[300::5]:
        for player, colour in enumerate(PLAYER_COLOURS):
            xs = np.flatnonzero(_mask(screen[PLAYER_TOP : PLAYER_TOP + 10], colour).any(axis=0))
            if len(xs) == 0 or xs.max() - xs.min() > 8:
                continue  # not drawn (hit, respawning) or drawn beside something else
            x = int(read_state(ram)["players"][player])
            # The sprite spans x - 1 .. x + 6 (give or take the frame it was drawn on).
            assert np.isin(np.arange(x - 2, x + 8), xs).sum() >= 6
            matched += 1
    assert matched > 100


def test_ram_enemy_bullets_match_the_screen(frames) -> None:
    # Enemy bullets are drawn every other frame: look for each on its frame or the next.
    seen, confirmed = 0, 0
    for (ram, screen), (_, after) in zip(frames[:-1], frames[1:], strict=True):
        for x, top, bottom in read_state(ram)["bullets"]:
            if bottom >= PLAYER_TOP - 12:
                continue  # near the ground it may already have hit something
            seen += 1
            x, top, bottom = int(x), int(top), int(bottom)
            drawn = [
                _mask(s[top - 2 : bottom + 4, x - 1 : x + 2], BULLET_COLOUR).any()
                for s in (screen, after)
            ]
            confirmed += any(drawn)
    assert seen > 200
    assert confirmed / seen > 0.95


def test_team_score_reads_the_bcd_scores() -> None:
    ram = np.zeros(128, dtype=np.uint8)
    ram[[102, 103, 104, 105]] = [0x12, 0x03, 0x45, 0x70]
    assert team_score(ram, 1) == 1245
    assert team_score(ram, 2) == 1245 + 370


def test_reflect_bounces_between_the_walls() -> None:
    assert reflect(50.0, 23.0, 130.0) == 50.0
    assert reflect(135.0, 23.0, 130.0) == 125.0
    assert reflect(20.0, 23.0, 130.0) == 26.0
    assert reflect(130.0 + 107.0 + 5.0, 23.0, 130.0) == 28.0


def test_first_hit_and_safest_move() -> None:
    # A bullet falling straight onto a player at x = 70 (sprite 69 .. 76), 20 px above its row.
    bullets = np.array([[72.0, PLAYER_TOP - 27, PLAYER_TOP - 20]])
    assert first_hit(70.0, 0, 0.0, bullets) == 20.0
    assert first_hit(70.0, 1, 24.0, bullets) == np.inf
    assert first_hit(70.0, 0, 0.0, np.zeros((0, 3))) == np.inf
    # Its goal is where it stands, but standing is fatal: it steps aside.
    assert safest_move(70.0, 70.0, bullets) != 0
    # With no bullet it walks towards its goal, and stands at it.
    assert safest_move(70.0, 90.0, np.zeros((0, 3))) == 1
    assert safest_move(70.0, 40.0, np.zeros((0, 3))) == -1
    assert safest_move(PLAYER_MAX_X, PLAYER_MAX_X, np.zeros((0, 3))) == 0


def test_assign_columns_splits_the_players() -> None:
    goals = np.array([40.0, 60.0, 100.0])
    rows = np.zeros(3, dtype=np.int64)
    assert assign_columns(np.array([50.0, 55.0]), goals, rows) in ([0, 1], [1, 0])
    assert assign_columns(np.array([95.0]), goals, rows) == [2]
    # A lower alien outweighs a short walk.
    assert assign_columns(np.array([95.0]), goals, np.array([0, 0, 2])) == [1]


@pytest.mark.parametrize("n_agents", [1, 2])
def test_policies_act_with_the_team_shapes(n_agents: int) -> None:
    env = make_env("space_invaders", n_agents, seed=0)
    obs, _ = env.reset()
    team_obs = np.stack([obs[a] for a in env.possible_agents])
    alive = np.ones(n_agents, dtype=bool)
    rng = np.random.default_rng(0)
    try:
        for policy in (make_policy("expert", env), make_adversary(env)):
            policy.reset(env, rng)
            decision = policy.act(env, team_obs, alive, rng)
            assert decision.actions.shape == (n_agents,)
            assert decision.probs.shape == (n_agents, 6)
            np.testing.assert_allclose(decision.probs.sum(axis=1), 1.0)
            assert ((decision.actions >= 0) & (decision.actions < 6)).all()
            assert policy.spec()["privileged"] is True
    finally:
        env.close()


def test_expert_outscores_random() -> None:
    # Single-player game, 600 decisions at most: about as long as random's three lives last.
    short = {"max_cycles": 2400}
    expert = evaluate("space_invaders", 1, make_expert, 1, seed=1, options=short)
    random = evaluate("space_invaders", 1, lambda env: RandomPolicy(6), 1, seed=1, options=short)
    assert expert.mean > 3 * random.mean
    assert expert.metrics["alien_points"] == expert.returns
    assert expert.metrics["lives_lost"][0] < random.metrics["lives_lost"][0]


def test_adversary_scores_below_random() -> None:
    short = {"max_cycles": 4000}  # both end well before: random at about 1,700 frames
    random = evaluate("space_invaders", 2, lambda env: RandomPolicy(6), 1, seed=1, options=short)
    adversary = evaluate("space_invaders", 2, make_adversary, 1, seed=1, options=short)
    # It never fires: its return is only the partner's 200 for each of the three lives.
    assert adversary.metrics["alien_points"][0] == 0
    assert adversary.metrics["lives_lost"][0] == 3
    assert adversary.mean == 600
    assert adversary.mean < random.mean
