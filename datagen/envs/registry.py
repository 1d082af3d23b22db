"""The environment suite: every env of the project is described and built here, and only here.

Each entry of `ENV_SPECS` says where an env comes from (a PettingZoo id, or our own implementation),
which agent counts it supports, its default agent-count ladder, and every option a user may set
with its default. `make_env` validates a request against the entry and builds the env through its
builder, then wraps it in `TeamEnv` (fixed agent axis, `alive` flags, float32, discrete actions).
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from datagen.envs.prison import PrisonEnv
from datagen.envs.waterworld import WaterworldEnv
from datagen.envs.wrappers import GymnasiumParallelEnv, TeamEnv
from datagen.errors import UserError


class EnvConfigError(UserError):
    """A request for an env that cannot be built: unknown name, agent count or option."""


@dataclass(frozen=True)
class EnvSpec:
    """What the suite knows about one env before building it.

    Attributes:
        name: the suite's name, used on the command line and in dataset ids.
        source: where the dynamics come from ("PettingZoo 1.27" or "ours").
        pettingzoo_id: the PettingZoo registry id, or None for our own envs.
        n_min: the smallest supported agent count.
        n_max: the largest supported agent count.
        ladder: the default agent counts of transfer experiments, smallest first.
        default_n: the agent count used when describing the env.
        options: every option a user may set, with its default.
        builder: `builder(n_agents, options) -> BuiltEnv`.
        notes: one line on what is special (agent split, preprocessing, action set).
    """

    name: str
    source: str
    pettingzoo_id: str | None
    n_min: int
    n_max: int
    ladder: tuple[int, ...]
    default_n: int
    options: dict[str, Any]
    builder: Callable[[int, dict[str, Any]], BuiltEnv]
    notes: str = ""


def _pettingzoo_parallel(env_id: str, **kwargs: Any) -> ParallelEnv:
    """`pettingzoo.make` for parallel envs, without the registry's deprecation chatter."""
    import pettingzoo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pettingzoo.make("parallel", env_id, **kwargs)


@dataclass(frozen=True)
class BuiltEnv:
    """What a builder returns: the env, its discrete action table (or None), the preprocessing
    wrappers applied, outermost last, as recorded in dataset metadata, and a fix-up to run after
    every reset (or None)."""

    env: ParallelEnv
    action_table: np.ndarray | None = None
    wrappers: tuple[str, ...] = ()
    on_reset: Callable[[ParallelEnv], None] | None = None


def _image_pipeline(
    env: ParallelEnv,
    *,
    obs_size: int,
    grayscale: bool,
    frame_stack: int,
    frame_skip: int = 1,
    sticky_prob: float = 0.0,
) -> BuiltEnv:
    """The seed's pixel preprocessing: sticky actions, frame skip, grayscale, resize, frame stack.

    `obs_size=0` keeps the native resolution. Observations come out (H, W, C) uint8, with C = 1 or
    3 (grayscale or colour) times `frame_stack`.
    """
    import supersuit

    applied = []
    if sticky_prob > 0:
        env = supersuit.sticky_actions_v0(env, repeat_action_probability=sticky_prob)
        applied.append(f"supersuit.sticky_actions_v0(repeat_action_probability={sticky_prob})")
    if frame_skip > 1:
        env = supersuit.frame_skip_v0(env, frame_skip)
        applied.append(f"supersuit.frame_skip_v0({frame_skip})")
    if grayscale:
        env = supersuit.color_reduction_v0(env, mode="full")
        applied.append("supersuit.color_reduction_v0(mode='full')")
    if obs_size:
        env = supersuit.resize_v1(env, obs_size, obs_size)
        applied.append(f"supersuit.resize_v1({obs_size}, {obs_size})")
    # frame_stack_v1 also gives grayscale frames their channel axis: (H, W) -> (H, W, k).
    if grayscale or frame_stack > 1:
        env = supersuit.frame_stack_v1(env, frame_stack)
        applied.append(f"supersuit.frame_stack_v1({frame_stack})")
    return BuiltEnv(env, wrappers=tuple(applied))


def _split_options(options: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {key: options.pop(key) for key in names}


IMAGE_OPTIONS = ("obs_size", "grayscale", "frame_stack")


def _build_pursuit(n: int, options: dict[str, Any]) -> BuiltEnv:
    return BuiltEnv(_pettingzoo_parallel("sisl/pursuit-v5", n_pursuers=n, **options))


def _build_pistonball(n: int, options: dict[str, Any]) -> BuiltEnv:
    image = _split_options(options, IMAGE_OPTIONS)
    env = _pettingzoo_parallel("butterfly/pistonball-v6", n_pistons=n, continuous=False, **options)
    return _image_pipeline(env, **image)


def kaz_split(n: int, num_archers: int | None, num_knights: int | None) -> tuple[int, int]:
    """Split a team of n into archers and knights: ceil(n/2) archers and floor(n/2) knights unless
    one or both counts are given (then they must add up to n).

    Raises:
        EnvConfigError: when the counts are negative or do not add up to n.
    """
    if num_archers is None and num_knights is None:
        num_archers = math.ceil(n / 2)
    if num_archers is None:
        num_archers = n - num_knights
    if num_knights is None:
        num_knights = n - num_archers
    if num_archers < 0 or num_knights < 0 or num_archers + num_knights != n:
        raise EnvConfigError(
            f"knights_archers_zombies: num_archers ({num_archers}) + num_knights ({num_knights}) "
            f"must equal the agent count {n}, both >= 0"
        )
    if max(num_archers, num_knights) > 8:
        raise EnvConfigError(
            f"knights_archers_zombies: at most 8 archers and 8 knights, "
            f"got {num_archers} archers and {num_knights} knights"
        )
    return num_archers, num_knights


def _kaz_v11_reset_spawn_timer(env: ParallelEnv) -> None:
    """knights_archers_zombies-v11's reset() leaves its zombie spawn timer where the last episode
    stopped, so the same seed replayed on a reused env gives another episode unless every earlier
    episode lasted a multiple of `spawn_delay` cycles. Restart the timer on every reset."""
    env.unwrapped.zombie_spawn_interval.reset()


def _build_kaz(n: int, options: dict[str, Any]) -> BuiltEnv:
    archers, knights = kaz_split(n, options.pop("num_archers"), options.pop("num_knights"))
    env = _pettingzoo_parallel(
        "butterfly/knights_archers_zombies-v11",
        num_archers=archers,
        num_knights=knights,
        obs_method="vector",
        **options,
    )
    return BuiltEnv(env, on_reset=_kaz_v11_reset_spawn_timer)


def multiwalker_action_table(torque_levels: int) -> np.ndarray:
    """The discrete action set of multiwalker: every combination of per-joint torque levels.

    A walker has four joints (hip and knee of each leg); each takes one of `torque_levels` evenly
    spaced torques in [-1, 1]. Action k is the k-th combination in lexicographic order, joint 0
    (first hip) most significant. With 3 levels: 81 actions, action 40 is all zeros.

    Returns:
        (torque_levels ** 4, 4) float32 array of torques.
    """
    if torque_levels < 2:
        raise EnvConfigError(f"multiwalker: torque_levels must be >= 2, got {torque_levels}")
    levels = np.linspace(-1.0, 1.0, torque_levels, dtype=np.float32)
    return np.array(list(itertools.product(levels, repeat=4)), dtype=np.float32)


def _build_multiwalker(n: int, options: dict[str, Any]) -> BuiltEnv:
    levels = options.pop("torque_levels")
    env = _pettingzoo_parallel("sisl/multiwalker-v9", n_walkers=n, **options)
    return BuiltEnv(env, multiwalker_action_table(levels), (f"discrete torques ({levels} levels)",))


def _build_waterworld(n: int, options: dict[str, Any]) -> BuiltEnv:
    return BuiltEnv(WaterworldEnv(n_pursuers=n, **options))


def _build_prison(n: int, options: dict[str, Any]) -> BuiltEnv:
    return BuiltEnv(PrisonEnv(n_prisoners=n, **options))


def ale_rom_directory() -> str:
    """The directory holding the ALE ROMs that the ale-py wheel bundles (`<dir>/roms/<game>.bin`).

    PettingZoo's Atari envs take it as `auto_rom_install_path` (their error message calls it
    `rom_path`).
    """
    try:
        import ale_py
    except ImportError as err:
        raise EnvConfigError(
            "space_invaders needs the atari extra: pip install 'marl-offline-coordination[atari]'"
        ) from err
    return os.path.dirname(ale_py.__file__)


def _build_space_invaders(n: int, options: dict[str, Any]) -> BuiltEnv:
    image = _split_options(options, IMAGE_OPTIONS + ("frame_skip", "sticky_prob"))
    max_cycles = options.pop("max_cycles")
    rom_dir = ale_rom_directory()
    if n == 2:
        env = _pettingzoo_parallel(
            "atari/space_invaders-v2", auto_rom_install_path=rom_dir, max_cycles=max_cycles
        )
    else:
        import ale_py
        import gymnasium

        gymnasium.register_envs(ale_py)
        # Frame skip and sticky actions come from the same SuperSuit chain as the two-player game,
        # so the emulator itself must do neither.
        single = gymnasium.make(
            "ALE/SpaceInvaders-v5",
            frameskip=1,
            repeat_action_probability=0.0,
            max_episode_steps=max_cycles,
        )
        env = GymnasiumParallelEnv(single, agent_id="first_0", name="space_invaders_single")
    built = _image_pipeline(env, **image)
    if n == 2:
        return built
    adapter = "GymnasiumParallelEnv(ALE/SpaceInvaders-v5, frameskip=1, repeat_action_probability=0)"
    return BuiltEnv(built.env, wrappers=(adapter, *built.wrappers))


def _build_cooperative_pong(n: int, options: dict[str, Any]) -> BuiltEnv:
    image = _split_options(options, IMAGE_OPTIONS)
    # Its observations are renders of the screen: without a render mode it warns at every step.
    env = _pettingzoo_parallel("butterfly/cooperative_pong-v6", render_mode="rgb_array", **options)
    return _image_pipeline(env, **image)


def _constructor_options(env_cls: type, exclude: tuple[str, ...]) -> dict[str, Any]:
    """The keyword options of one of our own env classes, read from its constructor."""
    return {
        name: param.default
        for name, param in inspect.signature(env_cls.__init__).parameters.items()
        if name not in ("self", *exclude) and param.default is not inspect.Parameter.empty
    }


_IMAGE_DEFAULTS = {"obs_size": 84, "grayscale": True, "frame_stack": 1}

ENV_SPECS: dict[str, EnvSpec] = {
    spec.name: spec
    for spec in [
        EnvSpec(
            name="pursuit",
            source="PettingZoo 1.27",
            pettingzoo_id="sisl/pursuit-v5",
            n_min=1,
            n_max=64,
            ladder=(2, 4, 8, 16),
            default_n=8,
            options={
                "x_size": 16,
                "y_size": 16,
                "max_cycles": 500,
                "shared_reward": True,
                "n_evaders": 30,
                "obs_range": 7,
                "n_catch": 2,
                "freeze_evaders": False,
                "tag_reward": 0.01,
                "catch_reward": 5.0,
                "urgency_reward": -0.1,
                "surround": True,
                "constraint_window": 1.0,
            },
            builder=_build_pursuit,
            notes="n = n_pursuers; evaders are caught when surrounded on every open side",
        ),
        EnvSpec(
            name="pistonball",
            source="PettingZoo 1.27",
            pettingzoo_id="butterfly/pistonball-v6",
            n_min=2,
            n_max=40,
            ladder=(3, 5, 10, 20),
            default_n=10,
            options={
                **_IMAGE_DEFAULTS,
                "time_penalty": -0.1,
                "random_drop": True,
                "random_rotate": True,
                "ball_mass": 0.75,
                "ball_friction": 0.3,
                "ball_elasticity": 1.5,
                "max_cycles": 125,
            },
            builder=_build_pistonball,
            notes="n = n_pistons; continuous=False (0 down, 1 stay, 2 up); 84x84 grayscale",
        ),
        EnvSpec(
            name="knights_archers_zombies",
            source="PettingZoo 1.27",
            pettingzoo_id="butterfly/knights_archers_zombies-v11",
            n_min=1,
            n_max=16,
            ladder=(2, 4, 8),
            default_n=4,
            options={
                "num_archers": None,
                "num_knights": None,
                "spawn_delay": 20,
                "max_zombies": 10,
                "max_arrows": 10,
                "killable_knights": True,
                "killable_archers": True,
                "line_death": False,
                "max_cycles": 900,
            },
            builder=_build_kaz,
            notes="ceil(n/2) archers + floor(n/2) knights unless set; vector obs, a row per entity",
        ),
        EnvSpec(
            name="multiwalker",
            source="PettingZoo 1.27",
            pettingzoo_id="sisl/multiwalker-v9",
            n_min=1,
            n_max=20,
            ladder=(2, 3, 4, 5),
            default_n=3,
            options={
                "torque_levels": 3,
                "position_noise": 1e-3,
                "angle_noise": 1e-3,
                "forward_reward": 1.0,
                "terminate_reward": -100.0,
                "fall_reward": -10.0,
                "shared_reward": True,
                "terminate_on_fall": True,
                "remove_on_fall": True,
                "terrain_length": 200,
                "max_cycles": 500,
            },
            builder=_build_multiwalker,
            notes="n = n_walkers; action = one of torque_levels^4 per-joint torque combinations",
        ),
        EnvSpec(
            name="waterworld",
            source="ours",
            pettingzoo_id=None,
            n_min=1,
            n_max=64,
            ladder=(2, 4, 8, 16),
            default_n=5,
            options=_constructor_options(WaterworldEnv, ("n_pursuers", "render_mode")),
            builder=_build_waterworld,
            notes="our own SISL-style waterworld; 8 thrust headings + no thrust",
        ),
        EnvSpec(
            name="prison",
            source="ours",
            pettingzoo_id=None,
            n_min=1,
            n_max=64,
            ladder=(2, 4, 8, 16),
            default_n=8,
            options=_constructor_options(PrisonEnv, ("n_prisoners", "render_mode")),
            builder=_build_prison,
            notes="our own prison (debugging env): left / stay / right, +1 per wall-to-wall walk",
        ),
        EnvSpec(
            name="space_invaders",
            source="PettingZoo 1.27 (n=2), Gymnasium ALE (n=1)",
            pettingzoo_id="atari/space_invaders-v2",
            n_min=1,
            n_max=2,
            ladder=(1, 2),
            default_n=2,
            options={
                "obs_size": 84,
                "grayscale": True,
                "frame_stack": 4,
                "frame_skip": 4,
                "sticky_prob": 0.25,
                "max_cycles": 10_000,  # frames: caps the expert (random ends by about 2,500)
            },
            builder=_build_space_invaders,
            notes="seed pipeline: sticky 0.25, frame skip 4, grayscale 84x84, stack 4",
        ),
        EnvSpec(
            name="cooperative_pong",
            source="PettingZoo 1.27",
            pettingzoo_id="butterfly/cooperative_pong-v6",
            n_min=2,
            n_max=2,
            ladder=(2,),
            default_n=2,
            options={
                **_IMAGE_DEFAULTS,
                "ball_speed": 9,
                "left_paddle_speed": 12,
                "right_paddle_speed": 12,
                "cake_paddle": True,
                "max_cycles": 900,
                "bounce_randomness": False,
                "max_reward": 100,
                "off_screen_penalty": -10,
            },
            builder=_build_cooperative_pong,
            notes="extra env, two agents; 84x84 grayscale",
        ),
    ]
}


def env_names() -> list[str]:
    """The names of every env of the suite, in the order of the suite."""
    return list(ENV_SPECS)


def get_spec(name: str) -> EnvSpec:
    """The spec of env `name`.

    Raises:
        EnvConfigError: for an unknown name, naming the valid ones.
    """
    if name not in ENV_SPECS:
        raise EnvConfigError(f"unknown env {name!r}; valid envs: {', '.join(env_names())}")
    return ENV_SPECS[name]


def check_request(name: str, n_agents: int, options: dict[str, Any]) -> EnvSpec:
    """Validate an env request without building it.

    Raises:
        EnvConfigError: an unknown env, an agent count out of range, or an unknown option.
    """
    spec = get_spec(name)
    if not isinstance(n_agents, int | np.integer) or not spec.n_min <= n_agents <= spec.n_max:
        allowed = f"{spec.n_min}" if spec.n_min == spec.n_max else f"{spec.n_min} to {spec.n_max}"
        raise EnvConfigError(f"{name} supports {allowed} agents, got {n_agents}")
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise EnvConfigError(
            f"unknown option {unknown[0]!r} for env {name}; valid options: "
            f"{', '.join(sorted(spec.options))}"
        )
    return spec


def make_env(name: str, n_agents: int, *, seed: int | None = None, **options: Any) -> ParallelEnv:
    """Build env `name` for `n_agents` agents: the one place where envs are constructed.

    Args:
        name: an env of the suite (`env_names()`).
        n_agents: the team size; see each spec's `n_min`/`n_max`.
        seed: seed for the first `reset()` called without a seed (`reset(seed=...)` still wins).
        **options: env options overriding the spec's defaults (`get_spec(name).options`).

    Returns:
        A PettingZoo ParallelEnv wrapped in `TeamEnv`: discrete actions, a fixed agent axis in
        `possible_agents` order, and `infos[agent]["alive"]` at every step.

    Raises:
        EnvConfigError: an unknown env, an agent count out of range, an unknown or invalid option.
    """
    spec = check_request(name, n_agents, options)
    merged = {**spec.options, **options}
    try:
        built = spec.builder(int(n_agents), dict(merged))  # builders pop what they consume
    except EnvConfigError:
        raise
    except (TypeError, ValueError, AssertionError) as err:
        raise EnvConfigError(f"{name}: invalid options {options}: {err}") from err
    return TeamEnv(
        built.env,
        name=name,
        seed=seed,
        action_table=built.action_table,
        wrappers=built.wrappers,
        options=merged,
        on_reset=built.on_reset,
    )
