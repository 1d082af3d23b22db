"""The environment suite: every env of the project is described and built here, and only here.

Each entry of `ENV_SPECS` says where an env comes from (a PettingZoo id, or our own implementation),
which agent counts it supports, its default agent-count ladder, and every option a user may set
with its default. `env_recipe` validates a request against the entry and says, as data, how the env
is constructed (`EnvRecipe`: a PettingZoo id and its exact kwargs or our own constructor, the
wrappers in order, the action table); `make_env` constructs it from that recipe and wraps it in
`TeamEnv` (fixed agent axis, `alive` flags, positions, float32, discrete actions). Datasets record
the recipe, so a plain script can rebuild the env without this package.

Positions and view radii. Every entry says where each agent is (`EnvSpec.positions`, read from
the env's internals, in the env's own world units) and how far an agent sees
(`EnvSpec.view_radius`, Euclidean, in the same units). They decide only which teammates may
exchange messages (the coordination graph's k nearest or those in view, `algos.coordination`):
no network reads a position as an input feature. Per env:

- pursuit: the pursuer's grid cell (x, y); radius (obs_range - 1) // 2 cells, the half-width of
  its square window (the disc inside it: teammates in the window's corners are left out).
- pistonball: the piston's centre x in screen pixels, y = 0; radius 60 px, half its observation
  crop (three pistons wide): its two neighbours (40 px away) are in view, the next ones (80 px)
  are not.
- knights_archers_zombies: the agent's centre on the 1280 x 720 screen, pixels; radius the
  screen's diagonal: the vector observation lists every entity, so everyone is in view.
- multiwalker: the walker's hull (x, y), Box2D units; radius 7, 1.5 times the spacing of
  neighbouring walkers at the start (4.67): a walker observes its left and right neighbours only.
- waterworld: the pursuer's centre in the unit square; radius `sensor_range`.
- prison: x = column * (cell_width + 1) + the prisoner's position, y = floor * (cell_width + 1);
  radius 0: a prisoner sees only its own cell.
- space_invaders: a fallback, (agent index, 0): the emulator exposes no documented player
  position; radius 1: the observation is the whole screen, so both players are in view.
- cooperative_pong: the paddle's centre on the 480 x 280 screen, pixels; radius the screen's
  diagonal: the observation is the whole screen.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from datagen.envs.batch import EnvBatch, TeamEnvBatch, VectorPursuitBatch
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
        recipe: `recipe(n_agents, options) -> EnvRecipe`: how to construct the env (it pops the
            options it consumes from its own copy).
        positions: `positions(base_env, agent_ids) -> (N, 2)` float32: each agent's position in
            the env's world units, read from the base env (`env.unwrapped`), NaN for an agent the
            env no longer holds (see the module docstring).
        view_radius: `view_radius(options) -> float`: how far an agent sees, in the units of
            `positions`, for every option (defaults included).
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
    recipe: Callable[[int, dict[str, Any]], EnvRecipe]
    positions: Callable[[Any, list[str]], np.ndarray]
    view_radius: Callable[[dict[str, Any]], float]
    notes: str = ""


def _pettingzoo_parallel(env_id: str, **kwargs: Any) -> ParallelEnv:
    """`pettingzoo.make` for parallel envs, without the registry's deprecation chatter."""
    import pettingzoo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pettingzoo.make("parallel", env_id, **kwargs)


def import_callable(name: str) -> Callable[..., Any]:
    """The callable named `"package.module.attribute"` (as recorded in dataset metadata)."""
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class EnvRecipe:
    """How one env is constructed, as data a plain script can follow (dataset metadata records
    it, see docs/dataset-format.md), plus an in-process fix-up that is not part of the record.

    Attributes:
        pettingzoo_id: the id given to `pettingzoo.make("parallel", ...)`, or None.
        pettingzoo_kwargs: exactly the keyword arguments of that call (None without an id).
        constructor: for envs that are not PettingZoo's, `{"name": "<importable callable>",
            "kwargs": {...}}`; None for PettingZoo's.
        wrappers: applied in order to the constructed env, each `{"name": "<importable
            callable>", "kwargs": {...}}`, called as `env = callable(env, **kwargs)`.
        action_table: (A, D) float32 array: discrete action k sends `action_table[k]` to the env;
            None when actions pass through unchanged.
        on_reset: a fix-up run after every reset of a reused env (a fresh env needs none).
        implementation: an importable class of ours that takes `pettingzoo_kwargs` and plays the
            very same env faster (pursuit's vectorised one), built instead of
            `pettingzoo.make`; None: PettingZoo's own.
    """

    pettingzoo_id: str | None = None
    pettingzoo_kwargs: dict[str, Any] | None = None
    constructor: dict[str, Any] | None = None
    wrappers: tuple[dict[str, Any], ...] = ()
    action_table: np.ndarray | None = None
    on_reset: Callable[[ParallelEnv], None] | None = None
    implementation: str | None = None

    def record(self) -> dict[str, Any]:
        """The JSON-ready part of the recipe, as stored in dataset metadata."""
        return _json_ready(
            {
                "pettingzoo_id": self.pettingzoo_id,
                "pettingzoo_kwargs": self.pettingzoo_kwargs,
                "implementation": self.implementation,
                "constructor": self.constructor,
                "wrappers": list(self.wrappers),
                "action_table": None if self.action_table is None else self.action_table.tolist(),
            }
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EnvRecipe:
        """The recipe a dataset's `env` block (format version 2) records."""
        table = record["action_table"]
        return cls(
            pettingzoo_id=record["pettingzoo_id"],
            pettingzoo_kwargs=record["pettingzoo_kwargs"],
            constructor=record["constructor"],
            wrappers=tuple(record["wrappers"]),
            action_table=None if table is None else np.asarray(table, dtype=np.float32),
            implementation=record.get("implementation"),
        )

    def construct(self) -> ParallelEnv:
        """Build the env the recipe describes: the constructor, then each wrapper in order."""
        if self.pettingzoo_id is not None:
            kwargs = _ale_roms_of_this_machine(self.pettingzoo_kwargs)
            if self.implementation is not None:
                env = import_callable(self.implementation)(**kwargs)
            else:
                env = _pettingzoo_parallel(self.pettingzoo_id, **kwargs)
        else:
            env = import_callable(self.constructor["name"])(**self.constructor["kwargs"])
        for wrapper in self.wrappers:
            env = import_callable(wrapper["name"])(env, **wrapper["kwargs"])
        return env


def _json_ready(value: Any) -> Any:
    """`value` as it reads back from JSON: tuples become lists, numpy scalars Python numbers."""
    return json.loads(json.dumps(value, default=lambda v: v.item()))


def _ale_roms_of_this_machine(kwargs: dict[str, Any]) -> dict[str, Any]:
    """PettingZoo's Atari envs take the ROM directory as a path, recorded as it was on the machine
    that made a dataset; elsewhere the ROMs sit in this machine's ale-py package."""
    path = kwargs.get("auto_rom_install_path")
    if path is None or os.path.isdir(path):
        return kwargs
    return {**kwargs, "auto_rom_install_path": ale_rom_directory()}


def _wrapper(name: str, **kwargs: Any) -> dict[str, Any]:
    return {"name": name, "kwargs": kwargs}


def _image_wrappers(
    *,
    obs_size: int,
    grayscale: bool,
    frame_stack: int,
    frame_skip: int = 1,
    sticky_prob: float = 0.0,
) -> tuple[dict[str, Any], ...]:
    """The seed's pixel preprocessing: sticky actions, frame skip, grayscale, resize, frame stack.

    `obs_size=0` keeps the native resolution. Observations come out (H, W, C) uint8, with C = 1 or
    3 (grayscale or colour) times `frame_stack`.
    """
    chain = []
    if sticky_prob > 0:
        chain.append(_wrapper("supersuit.sticky_actions_v0", repeat_action_probability=sticky_prob))
    if frame_skip > 1:
        chain.append(_wrapper("supersuit.frame_skip_v0", num_frames=frame_skip))
    if grayscale:
        chain.append(_wrapper("supersuit.color_reduction_v0", mode="full"))
    if obs_size:
        chain.append(_wrapper("supersuit.resize_v1", x_size=obs_size, y_size=obs_size))
    # frame_stack_v1 also gives grayscale frames their channel axis: (H, W) -> (H, W, k).
    if grayscale or frame_stack > 1:
        chain.append(_wrapper("supersuit.frame_stack_v1", stack_size=frame_stack))
    return tuple(chain)


def _split_options(options: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {key: options.pop(key) for key in names}


IMAGE_OPTIONS = ("obs_size", "grayscale", "frame_stack")


#: Pursuit's implementations: ours, vectorised with numpy (the default; bit for bit PettingZoo's,
#: see datagen/envs/pursuit.py), or PettingZoo's own.
PURSUIT_IMPLEMENTATIONS = {"vectorised": "datagen.envs.pursuit.PursuitEnv", "pettingzoo": None}


def _pursuit(n: int, options: dict[str, Any]) -> EnvRecipe:
    implementation = options.pop("implementation")
    if implementation not in PURSUIT_IMPLEMENTATIONS:
        raise EnvConfigError(
            f"unknown pursuit implementation {implementation!r}; valid implementations: "
            f"{', '.join(PURSUIT_IMPLEMENTATIONS)}"
        )
    return EnvRecipe(
        "sisl/pursuit-v5",
        {"n_pursuers": n, **options},
        implementation=PURSUIT_IMPLEMENTATIONS[implementation],
    )


def _pistonball(n: int, options: dict[str, Any]) -> EnvRecipe:
    image = _split_options(options, IMAGE_OPTIONS)
    # Its observations are crops of the screen, which PettingZoo only redraws with a render mode:
    # without one every observation is the reset frame (no ball, pistons never move).
    kwargs = {"n_pistons": n, "continuous": False, "render_mode": "rgb_array", **options}
    return EnvRecipe("butterfly/pistonball-v6", kwargs, wrappers=_image_wrappers(**image))


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


def _kaz(n: int, options: dict[str, Any]) -> EnvRecipe:
    archers, knights = kaz_split(n, options.pop("num_archers"), options.pop("num_knights"))
    kwargs = {"num_archers": archers, "num_knights": knights, "obs_method": "vector", **options}
    return EnvRecipe(
        "butterfly/knights_archers_zombies-v11", kwargs, on_reset=_kaz_v11_reset_spawn_timer
    )


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


def _multiwalker(n: int, options: dict[str, Any]) -> EnvRecipe:
    table = multiwalker_action_table(options.pop("torque_levels"))
    return EnvRecipe("sisl/multiwalker-v9", {"n_walkers": n, **options}, action_table=table)


def _ours(constructor: type, **kwargs: Any) -> EnvRecipe:
    name = f"{constructor.__module__}.{constructor.__qualname__}"
    return EnvRecipe(constructor={"name": name, "kwargs": kwargs})


def _waterworld(n: int, options: dict[str, Any]) -> EnvRecipe:
    return _ours(WaterworldEnv, n_pursuers=n, **options)


def _prison(n: int, options: dict[str, Any]) -> EnvRecipe:
    return _ours(PrisonEnv, n_prisoners=n, **options)


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


def single_player_space_invaders(max_cycles: int) -> GymnasiumParallelEnv:
    """Gymnasium's ALE Space Invaders as a one-agent parallel env (the n = 1 space_invaders).

    Frame skip and sticky actions come from the same SuperSuit chain as the two-player game, so
    the emulator itself does neither.
    """
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    single = gymnasium.make(
        "ALE/SpaceInvaders-v5",
        frameskip=1,
        repeat_action_probability=0.0,
        max_episode_steps=max_cycles,
    )
    return GymnasiumParallelEnv(single, agent_id="first_0", name="space_invaders_single")


def _space_invaders(n: int, options: dict[str, Any]) -> EnvRecipe:
    image = _split_options(options, IMAGE_OPTIONS + ("frame_skip", "sticky_prob"))
    max_cycles = options.pop("max_cycles")
    wrappers = _image_wrappers(**image)
    rom_dir = ale_rom_directory()
    if n == 2:
        kwargs = {"auto_rom_install_path": rom_dir, "max_cycles": max_cycles}
        return EnvRecipe("atari/space_invaders-v2", kwargs, wrappers=wrappers)
    recipe = _ours(single_player_space_invaders, max_cycles=max_cycles)  # type: ignore[arg-type]
    return EnvRecipe(constructor=recipe.constructor, wrappers=wrappers)


def _cooperative_pong(n: int, options: dict[str, Any]) -> EnvRecipe:
    image = _split_options(options, IMAGE_OPTIONS)
    # Its observations are renders of the screen: without a render mode it warns at every step.
    kwargs = {"render_mode": "rgb_array", **options}
    return EnvRecipe("butterfly/cooperative_pong-v6", kwargs, wrappers=_image_wrappers(**image))


def _constructor_options(env_cls: type, exclude: tuple[str, ...]) -> dict[str, Any]:
    """The keyword options of one of our own env classes, read from its constructor."""
    return {
        name: param.default
        for name, param in inspect.signature(env_cls.__init__).parameters.items()
        if name not in ("self", *exclude) and param.default is not inspect.Parameter.empty
    }


# ---------------------------------------------------------------- positions and view radii
# Each reads the base env's internals; rows follow `agent_ids` (possible_agents) order.


def _points(rows: list[Any]) -> np.ndarray:
    """(N, 2) float32 from one (x, y) or None (not in the env any more) per agent."""
    return np.array([(np.nan, np.nan) if xy is None else xy for xy in rows], dtype=np.float32)


def _pursuit_positions(base: Any, agent_ids: list[str]) -> np.ndarray:
    if hasattr(base, "engine"):  # the vectorised implementation
        return base.engine.pursuer_positions()[0].astype(np.float32)
    layer = base.env.pursuer_layer  # PettingZoo's
    return _points([tuple(layer.get_position(i)) for i in range(len(agent_ids))])


def _pistonball_positions(base: Any, agent_ids: list[str]) -> np.ndarray:
    return _points([(piston.position[0], 0.0) for piston in base.pistonList])


def _kaz_positions(base: Any, agent_ids: list[str]) -> np.ndarray:
    players = base.agent_map
    return _points([players[a].rect.center if a in players else None for a in agent_ids])


def _multiwalker_positions(base: Any, agent_ids: list[str]) -> np.ndarray:
    # A walker removed on falling has no hull left.
    hulls = [walker.hull for walker in base.env.walkers]
    return _points([None if hull is None else tuple(hull.position) for hull in hulls])


def _waterworld_positions(base: Any, agent_ids: list[str]) -> np.ndarray:
    return base._pursuer_pos.astype(np.float32)


def _prison_positions(base: Any, agent_ids: list[str]) -> np.ndarray:
    index = np.arange(len(agent_ids))
    spacing = base.cell_width + 1
    x = (index % 2) * spacing + base.positions
    return np.stack([x, (index // 2) * spacing], axis=1).astype(np.float32)


def _agent_index_positions(base: Any, agent_ids: list[str]) -> np.ndarray:
    """The fallback where the env exposes no position: (agent index, 0)."""
    return _points([(i, 0.0) for i in range(len(agent_ids))])


def _pong_positions(base: Any, agent_ids: list[str]) -> np.ndarray:
    paddles = (base.env.p0, base.env.p1)  # left, right; the cake paddle has several rects
    return _points([paddle.rects[0].unionall(paddle.rects[1:]).center for paddle in paddles])


#: knights_archers_zombies' screen (PettingZoo's constants), pixels.
KAZ_SCREEN = (1280, 720)
#: cooperative_pong's screen at PettingZoo's default render_ratio 2, pixels.
PONG_SCREEN = (480, 280)
#: multiwalker's walkers start this far apart (PettingZoo's WALKER_SEPERATION * TERRAIN_STEP).
MULTIWALKER_SPACING = 10 * 14 / 30


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
                "implementation": "vectorised",
            },
            recipe=_pursuit,
            positions=_pursuit_positions,
            view_radius=lambda options: float((options["obs_range"] - 1) // 2),
            notes="n = n_pursuers; evaders are caught when surrounded on every open side; "
            "implementation=vectorised (ours, numpy, PettingZoo's exact dynamics) or pettingzoo",
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
            recipe=_pistonball,
            positions=_pistonball_positions,
            view_radius=lambda options: 60.0,
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
            recipe=_kaz,
            positions=_kaz_positions,
            view_radius=lambda options: math.hypot(*KAZ_SCREEN),
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
            recipe=_multiwalker,
            positions=_multiwalker_positions,
            view_radius=lambda options: 1.5 * MULTIWALKER_SPACING,
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
            recipe=_waterworld,
            positions=_waterworld_positions,
            view_radius=lambda options: float(options["sensor_range"]),
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
            options={
                **_constructor_options(PrisonEnv, ("n_prisoners", "render_mode")),
                # The observation-only expert needs the last wall: a position alone cannot bounce.
                "include_last_wall": True,
            },
            recipe=_prison,
            positions=_prison_positions,
            view_radius=lambda options: 0.0,
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
            recipe=_space_invaders,
            positions=_agent_index_positions,
            view_radius=lambda options: 1.0,
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
            recipe=_cooperative_pong,
            positions=_pong_positions,
            view_radius=lambda options: math.hypot(*PONG_SCREEN),
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


def _option_kind(default: Any) -> str:
    """What an option's values must be, named after its default's type."""
    if isinstance(default, bool):
        return "a boolean (true or false)"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if default is None:  # knights_archers_zombies' num_archers / num_knights: derived when None
        return "an integer or null"
    element = _option_kind(default[0]).split(" ", 1)[1]
    return f"a list of {len(default)} {element}s"


def _fits(value: Any, default: Any) -> bool:
    """Whether `value` has the type an option with this default takes (ints pass as floats)."""
    if isinstance(default, bool):
        return isinstance(value, bool | np.bool_)
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(default, int):
        return isinstance(value, int | np.integer)
    if isinstance(default, float):
        return isinstance(value, int | float | np.integer | np.floating)
    if isinstance(default, str):
        return isinstance(value, str)
    if default is None:
        return value is None or isinstance(value, int | np.integer)
    return (
        isinstance(value, tuple | list)
        and len(value) == len(default)
        and all(_fits(v, d) for v, d in zip(value, default, strict=True))
    )


def check_request(name: str, n_agents: int, options: dict[str, Any]) -> EnvSpec:
    """Validate an env request without building it.

    Raises:
        EnvConfigError: an unknown env, an agent count out of range, an unknown option, or an
            option value of the wrong type (named with the type it must have).
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
    for key, value in options.items():
        default = spec.options[key]
        if not _fits(value, default):
            raise EnvConfigError(
                f"option {key} of env {name} must be {_option_kind(default)}, got {value!r}"
            )
    return spec


def env_recipe(name: str, n_agents: int, **options: Any) -> EnvRecipe:
    """How env `name` is constructed for `n_agents` agents with `options` (defaults filled in),
    without constructing it.

    Raises:
        EnvConfigError: an unknown env, an agent count out of range, an unknown or invalid option.
    """
    spec = check_request(name, n_agents, options)
    return spec.recipe(int(n_agents), {**spec.options, **options})  # recipes pop what they use


def env_record(name: str, n_agents: int, **options: Any) -> dict[str, Any]:
    """The `env` block of dataset metadata (format version 2): the suite's name, source and
    options (every option, defaults included), and the recipe's record: the PettingZoo id and
    exact constructor kwargs (or our constructor), the wrappers in order and the action table.

    Raises:
        EnvConfigError: as `env_recipe`.
    """
    spec = get_spec(name)
    return _record(spec, env_recipe(name, n_agents, **options), {**spec.options, **options})


def _record(spec: EnvSpec, recipe: EnvRecipe, options: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "source": spec.source,
        "options": _json_ready(options),
        **recipe.record(),
    }


def make_env(name: str, n_agents: int, *, seed: int | None = None, **options: Any) -> ParallelEnv:
    """Build env `name` for `n_agents` agents: the one place where envs are constructed.

    Args:
        name: an env of the suite (`env_names()`).
        n_agents: the team size; see each spec's `n_min`/`n_max`.
        seed: seed for the first `reset()` called without a seed (`reset(seed=...)` still wins).
        **options: env options overriding the spec's defaults (`get_spec(name).options`).

    Returns:
        A PettingZoo ParallelEnv wrapped in `TeamEnv`: discrete actions, a fixed agent axis in
        `possible_agents` order, and `infos[agent]["alive"]` at every step; its `record` is the
        `env` block of dataset metadata (`env_record`).

    Raises:
        EnvConfigError: an unknown env, an agent count out of range, an unknown or invalid option.
    """
    spec = get_spec(name)
    recipe = env_recipe(name, n_agents, **options)
    try:
        env = recipe.construct()
    except (TypeError, ValueError, AssertionError) as err:
        raise EnvConfigError(f"{name}: invalid options {options}: {err}") from err
    every_option = {**spec.options, **options}
    return TeamEnv(
        env,
        name=name,
        seed=seed,
        action_table=recipe.action_table,
        record=_record(spec, recipe, every_option),
        on_reset=recipe.on_reset,
        positions=spec.positions,
        view_radius=spec.view_radius(every_option),
    )


def make_env_batch(
    name: str,
    n_agents: int,
    n_envs: int,
    metrics: Callable[[Any], dict[str, float]] | None = None,
    **options: Any,
) -> EnvBatch:
    """Build a batch of `n_envs` episodes of env `name` played in lockstep (see
    `datagen.envs.batch`): pursuit's vectorised engine when pursuit runs on it, else `n_envs`
    envs of `make_env` stepped one after another.

    Args:
        name, n_agents, **options: as `make_env`.
        n_envs: episodes played side by side.
        metrics: the env's `episode_metrics(env)`, read when an episode ends (the vectorised
            pursuit reports evaders caught itself).

    Raises:
        EnvConfigError: as `make_env`, or `n_envs` below 1.
    """
    if n_envs < 1:
        raise EnvConfigError(f"a batch needs at least 1 env, got {n_envs}")
    recipe = env_recipe(name, n_agents, **options)
    if recipe.implementation == PURSUIT_IMPLEMENTATIONS["vectorised"]:
        from datagen.envs.pursuit import VectorPursuit

        template = make_env(name, n_agents, **options)
        engine = VectorPursuit(n_envs, **recipe.pettingzoo_kwargs)
        return VectorPursuitBatch(engine, template)
    return TeamEnvBatch([make_env(name, n_agents, **options) for _ in range(n_envs)], metrics)


def env_from_record(record: dict[str, Any]) -> ParallelEnv:
    """Build the env a dataset's `env` block records, from the record alone (the PettingZoo id
    and kwargs or our constructor, the wrappers, the action table), wrapped in `TeamEnv` like
    `make_env`'s. It carries no reset fix-up: build a fresh one per episode to replay episodes
    exactly. Its positions and view radius are the suite's for the recorded name and options.

    Raises:
        EnvConfigError: when the recorded env is not in the suite, or its constructor or a
            wrapper cannot be called.
    """
    spec = get_spec(record["name"])
    recipe = EnvRecipe.from_record(record)
    try:
        env = recipe.construct()
    except (ImportError, AttributeError, TypeError, ValueError) as err:
        raise EnvConfigError(f"cannot build the recorded env {record['name']}: {err}") from err
    return TeamEnv(
        env,
        name=record["name"],
        action_table=recipe.action_table,
        record=record,
        positions=spec.positions,
        view_radius=spec.view_radius({**spec.options, **record["options"]}),
    )
